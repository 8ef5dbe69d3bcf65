"""``chatport bench store``: list latency over many stored completions.

Rows are bulk-loaded straight into the database (the same tables the server writes),
then a real chatport server answers filtered list calls over HTTP.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
from sqlalchemy import insert

from chatport.store.database import Database
from chatport.store.keys import DEFAULT_PROJECT
from chatport.store.schema import CompletionMessage, CompletionMetadata, StoredCompletion

TENANTS = 100


def _completion(i: int, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-bench{i:09d}",
        "object": "chat.completion",
        "created": 1_700_000_000 + i,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"Answer {i}", "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    }


async def load_rows(url: str, count: int, model: str, chunk: int = 5000) -> float:
    db = Database(url)
    await db.upgrade()
    started = time.perf_counter()
    async with db.engine.begin() as conn:
        for lo in range(0, count, chunk):
            ids = range(lo, min(lo + chunk, count))
            rows = []
            for i in ids:
                meta = {"tenant": f"t{i % TENANTS}", "shard": f"s{i % 7}"}
                rows.append(
                    {
                        "id": f"chatcmpl-bench{i:09d}",
                        "project_id": DEFAULT_PROJECT,
                        "model": model,
                        "created": 1_700_000_000 + i,
                        "body": _completion(i, model),
                        "metadata": meta,
                    }
                )
            result = await conn.execute(insert(StoredCompletion).returning(StoredCompletion.seq, StoredCompletion.id), rows)
            seq_of = {row.id: row.seq for row in result}
            await conn.execute(
                insert(CompletionMetadata),
                [
                    {"completion_seq": seq_of[f"chatcmpl-bench{i:09d}"], "key": k, "value": v, "project_id": DEFAULT_PROJECT}
                    for i in ids
                    for k, v in (("tenant", f"t{i % TENANTS}"), ("shard", f"s{i % 7}"))
                ],
            )
            await conn.execute(
                insert(CompletionMessage),
                [
                    {
                        "completion_seq": seq_of[f"chatcmpl-bench{i:09d}"],
                        "position": 0,
                        "body": {"role": "user", "content": f"Question {i}"},
                    }
                    for i in ids
                ],
            )
    await db.close()
    return time.perf_counter() - started


def time_lists(base_url: str, queries: dict[str, str], rounds: int) -> dict[str, dict[str, float]]:
    out = {}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for name, query in queries.items():
            http.get("/chat/completions?" + query).raise_for_status()  # warm
            samples = []
            for _ in range(rounds):
                started = time.perf_counter()
                response = http.get("/chat/completions?" + query)
                samples.append(time.perf_counter() - started)
                response.raise_for_status()
            samples.sort()
            out[name] = {
                "p50_ms": round(statistics.median(samples) * 1000, 2),
                "p95_ms": round(samples[int(len(samples) * 0.95) - 1] * 1000, 2),
                "items": len(response.json()["data"]),
            }
    return out


QUERIES = {
    "metadata[tenant] (1% match), limit 20": "metadata[tenant]=t42&limit=20",
    "metadata[tenant]+metadata[shard], limit 20": "metadata[tenant]=t42&metadata[shard]=s3&limit=20",
    "metadata[tenant], desc, limit 100": "metadata[tenant]=t7&order=desc&limit=100",
    "no filter, limit 20": "limit=20",
}


def run_store_bench(
    urls: dict[str, str], model_path: str, model_id: str, count: int, rounds: int, log_path: str
) -> dict[str, Any]:
    from chatport.bench.servers import start_chatport

    results: dict[str, Any] = {"rows": count, "databases": {}}
    for name, url in urls.items():
        seconds = asyncio.run(load_rows(url, count, model_id))
        server = start_chatport(
            "--model", model_path, "--model-id", model_id, "--max-seqs", "1", "--ctx-size", "512", "--store", url,
            log_path=log_path,
        )  # fmt: skip
        try:
            timings = time_lists(server.api, QUERIES, rounds)
        finally:
            server.stop()
        results["databases"][name] = {"load_seconds": round(seconds, 1), "lists": timings}
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"List latency over {results['rows']:,} stored completions (HTTP, one client, after a warm-up call):",
        "",
        "| database | query | p50 ms | p95 ms | items |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for db, data in results["databases"].items():
        for query, t in data["lists"].items():
            lines.append(f"| {db} | `{query}` | {t['p50_ms']:.1f} | {t['p95_ms']:.1f} | {t['items']} |")
    return "\n".join(lines) + "\n"


def run_on_both(model: str, model_path: str, rows: int, pg_url: str, out: str) -> dict[str, Any]:
    """The bench on a fresh SQLite file in ``out`` and a fresh database on the PostgreSQL
    server of ``pg_url`` (made and dropped here); the results, also in ``out``."""
    import json
    import os
    import secrets

    import asyncpg  # type: ignore[import-untyped]

    os.makedirs(out, exist_ok=True)
    sqlite_path = os.path.join(os.path.abspath(out), "store-bench.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(sqlite_path + suffix):
            os.remove(sqlite_path + suffix)
    base, _, _ = pg_url.rpartition("/")
    name = f"chatport_bench_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        urls = {"sqlite": f"sqlite:///{sqlite_path}", "postgresql": f"{base}/{name}"}
        results = run_store_bench(urls, model_path, model, rows, 200, os.path.join(out, "servers.log"))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    with open(os.path.join(out, "store-results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results
