"""``chatport bench web-search``: what a search adds to time to first token. One server
answers a question without ``web_search_options`` and with each ``search_context_size``,
in alternating rounds, streamed one request at a time (each question numbered, so that no
prompt comes from the cache); the TTFT added is the engine's answer, the pages read and
the sources' prefill; the engine's own time is read from the server's counters (``chatport_web_search_seconds``),
so its share of the TTFT is measured, not inferred. By default the server is started with
a stand-in SearXNG on loopback (``latency`` seconds per search, pages served at once);
``--base-url`` benches a running server and whatever engine it was given."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import httpx

from chatport.bench.search_engine import SearchEngine
from chatport.bench.servers import start_chatport

# A new question each request (its number), so that no prompt is reused from the cache.
QUESTION = "What is the capital of France, and how tall is the Eiffel Tower? (question {n})"
SIZES = (None, "low", "medium", "high")  # None: no search


@dataclass
class Row:
    size: str  # "no search", low, medium, high
    ttft: list[float]  # seconds, per round
    search: list[float]  # the server's search seconds, per round
    prompt_tokens: int


def _search_seconds(base: str) -> tuple[float, float]:
    """(searches, seconds) summed over every engine, from /metrics."""
    searches = seconds = 0.0
    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith("chatport_web_searches_total"):
            searches += float(line.rsplit(" ", 1)[1])
        elif line.startswith("chatport_web_search_seconds_total"):
            seconds += float(line.rsplit(" ", 1)[1])
    return searches, seconds


def _one(client: httpx.Client, api: str, model: str, size: str | None, n: int) -> tuple[float, int]:
    """(TTFT, prompt tokens) of one streamed answer."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": QUESTION.format(n=n)}],
        "max_tokens": 16,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if size is not None:
        body["web_search_options"] = {"search_context_size": size}
    started = time.perf_counter()
    first = None
    prompt = 0
    with client.stream("POST", api + "/chat/completions", json=body, timeout=120) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            if first is None and '"content"' in line:
                first = time.perf_counter() - started
            if '"usage"' in line and '"prompt_tokens"' in line:
                usage = json.loads(line[6:]).get("usage") or {}
                prompt = usage.get("prompt_tokens", prompt)
    return (first if first is not None else time.perf_counter() - started), prompt


def run_web_search(model: str, model_path: str, *, base_url: str | None, rounds: int, latency: float) -> list[Row]:
    engine = server = None
    try:
        if base_url is None:
            engine = SearchEngine(latency=latency)
            log = tempfile.mktemp(prefix="chatport-bench-search-", suffix=".log")
            server = start_chatport(
                "--model", model_path, "--model-id", model, "--ctx-size", "8192", "--allow-private-urls",
                "--web-search", f"searxng+{engine.url}/searxng", log_path=log,
            )  # fmt: skip
            base = server.base_url
        else:
            base = base_url.removesuffix("/").removesuffix("/v1")
        api = base + "/v1"
        rows = {size: Row(size or "no search", [], [], 0) for size in SIZES}
        with httpx.Client() as client:
            _one(client, api, model, None, 0)  # warm: the first request loads what it loads
            for k in range(rounds):
                for j, size in enumerate(SIZES):
                    before = _search_seconds(base)
                    ttft, prompt = _one(client, api, model, size, 1 + k * len(SIZES) + j)
                    after = _search_seconds(base)
                    row = rows[size]
                    row.ttft.append(ttft)
                    row.search.append(after[1] - before[1] if size is not None else 0.0)
                    row.prompt_tokens = prompt
        return list(rows.values())
    finally:
        if server is not None:
            server.stop()
        if engine is not None:
            engine.stop()


def markdown(command: str, rows: list[Row], latency: float | None) -> str:
    engine = f"a stand-in SearXNG on loopback answering in {latency:g} s" if latency is not None else "the server's own engine"
    lines = [
        f"Command: `{command}` ({engine}; medians of {len(rows[0].ttft)} alternating rounds, 1 stream)",
        "",
        "| web search | prompt tokens | TTFT | engine's answer (server) | its share of TTFT | TTFT added |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    plain = statistics.median(rows[0].ttft)
    for row in rows:
        ttft, search = statistics.median(row.ttft), statistics.median(row.search)
        share = f"{search / ttft:.0%}" if row.search and search else "–"
        added = f"{(ttft - plain) * 1000:+.0f} ms" if row is not rows[0] else "–"
        lines.append(f"| {row.size} | {row.prompt_tokens} | {ttft * 1000:.0f} ms | {search * 1000:.0f} ms | {share} | {added} |")
    return "\n".join(lines) + "\n"
