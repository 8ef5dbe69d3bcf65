"""``chatport bench``: orchestrates servers, load levels, the raw baseline and the report."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chatport.bench import report
from chatport.bench.load import LevelResult, run_level, shared_prefix_ttft
from chatport.bench.servers import (
    RunningServer,
    start_chatport,
    start_llama_cpp_server,
    start_llama_server,
    wait_until_quiet,
)

console = Console(stderr=True)


@dataclass
class BenchOptions:
    base_url: str | None
    model: str
    model_path: str
    concurrency: list[int]
    requests: int
    max_tokens: int
    raw: bool
    prefix: bool
    out: str
    ctx_size: int
    constrained: bool = False
    peers: list[str] = field(default_factory=list)  # llama-server, llama-cpp-python, ray-N
    peer_bin: str | None = None
    rounds: int = 1


def _engine_seconds(base_url: str) -> tuple[float, float] | None:
    """(step seconds, decode seconds) from chatport's /metrics; None for other servers."""
    root = base_url.removesuffix("/v1")
    try:
        text = httpx.get(root + "/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    found = {}
    for name in ("chatport_step_seconds_total", "chatport_decode_seconds_total"):
        m = re.search(rf"^{name}\{{[^}}]*\}} ([0-9.e+-]+)$", text, re.M)
        if m is None:
            return None
        found[name] = float(m.group(1))
    return found["chatport_step_seconds_total"], found["chatport_decode_seconds_total"]


def _eog_bias(model_path: str) -> dict[str, int]:
    # Every request generates exactly max_tokens on every server: end-of-turn is banned.
    from chatport.engine.llama import LlamaModel

    model = LlamaModel(model_path)
    bias = {str(int(t)): -100 for t in model.eog_mask.nonzero()[0]}
    model.close()
    return bias


async def _measured_level(
    name: str, url: str, opts: BenchOptions, concurrency: int, extra_body: dict[str, Any], progress: Progress
) -> LevelResult:
    """One load level, with chatport's Python share of each step read from /metrics."""
    before = _engine_seconds(url)
    level = await run_level(
        base_url=url,
        server=name,
        model=opts.model,
        concurrency=concurrency,
        requests=max(opts.requests, concurrency),
        max_tokens=opts.max_tokens,
        extra_body=extra_body,
        progress=progress,
    )
    after = _engine_seconds(url)
    if before and after and after[0] > before[0]:
        step, decode = after[0] - before[0], after[1] - before[1]
        level.extra["python_share_of_step"] = round((step - decode) / step, 4)
    return level


async def _rounds(
    targets: list[tuple[str, str]],
    opts: BenchOptions,
    bias: dict[str, int],
    progress: Progress,
    servers: list[RunningServer],
) -> list[LevelResult]:
    """Every server at every level, round after round. Servers take turns at each level,
    in reversed order every other round (A B, B A, A B...), so drift on a shared machine
    (another process, heat, the page cache) falls on every server alike."""
    levels = []
    for number in range(1, opts.rounds + 1):
        for concurrency in opts.concurrency:
            for name, url in targets if number % 2 else targets[::-1]:
                await asyncio.to_thread(wait_until_quiet, servers)
                level = await _measured_level(name, url, opts, concurrency, {"logit_bias": bias}, progress)
                level.extra["round"] = number
                levels.append(level)
    return levels


def _start_on_ray(opts: BenchOptions, replicas: int, log_path: str) -> RunningServer:
    """chatport with its engines as ``replicas`` Ray Serve replicas sharing the cores the
    plain server uses (the ray extra)."""
    threads = max(1, (os.cpu_count() or 1) // replicas)
    return start_chatport(
        "--model", opts.model_path, "--model-id", opts.model, "--max-seqs", str(max(opts.concurrency)),
        "--ctx-size", str(opts.ctx_size), "--ray", "--replicas", str(replicas), "--threads", str(threads),
        log_path=log_path,
    )  # fmt: skip


def run(opts: BenchOptions, command: str) -> dict[str, Any]:
    results: dict[str, Any] = {"command": command, "levels": []}
    bias = _eog_bias(opts.model_path)
    servers: list[RunningServer] = []
    targets: list[tuple[str, str]] = []
    os.makedirs(opts.out, exist_ok=True)
    log_path = os.path.join(opts.out, "servers.log")
    open(log_path, "w").close()
    try:
        if opts.base_url:
            targets.append(("target", opts.base_url))
        else:
            console.print("starting chatport ...")
            srv = start_chatport(
                "--model", opts.model_path, "--model-id", opts.model, "--max-seqs", str(max(opts.concurrency)),
                "--ctx-size", str(opts.ctx_size), log_path=log_path,
            )  # fmt: skip
            servers.append(srv)
            targets.append(("chatport", srv.api))
            for peer_name in opts.peers:
                console.print(f"starting {peer_name} ...")
                if peer_name.startswith("ray-"):
                    peer = _start_on_ray(opts, int(peer_name[4:]), log_path)
                elif peer_name == "llama-server":
                    assert opts.peer_bin is not None
                    peer = start_llama_server(
                        opts.peer_bin,
                        opts.model_path,
                        opts.model,
                        ctx_size=opts.ctx_size,
                        parallel=max(opts.concurrency),
                        log_path=log_path,
                    )
                else:
                    peer = start_llama_cpp_server(opts.model_path, opts.model, ctx_size=opts.ctx_size, log_path=log_path)
                servers.append(peer)
                targets.append((peer_name, peer.api))

        levels: list[LevelResult] = []
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            if opts.constrained:
                # A fresh server decodes its first batch ~15% faster than every later one
                # (seen in the engine alone too; cause not found): warm it up first so the
                # unconstrained and constrained runs are compared in the same state.
                name, url = targets[0]
                top = max(opts.concurrency)
                asyncio.run(
                    run_level(
                        base_url=url,
                        server=f"{name} warm-up",
                        model=opts.model,
                        concurrency=top,
                        requests=top,
                        max_tokens=opts.max_tokens,
                        extra_body={"logit_bias": bias},
                        progress=progress,
                    )
                )
            measured = asyncio.run(_rounds(targets, opts, bias, progress, servers))
            results["rounds"] = report.level_rows(measured)
            levels += measured
            if opts.constrained:
                name, url = targets[0]
                body = {"logit_bias": bias, "response_format": STORY_FORMAT}
                levels.append(
                    asyncio.run(_measured_level(f"{name} + json_schema", url, opts, max(opts.concurrency), body, progress))
                )
            if opts.prefix:
                name, url = targets[0]
                results["shared_prefix"] = asyncio.run(shared_prefix_ttft(base_url=url, model=opts.model))
        results["levels"] = _medians(report.level_rows(levels))
    finally:
        for srv in servers:
            srv.stop()

    if opts.raw:
        from chatport.bench.raw import raw_decode

        results["raw"] = {}
        for batch in sorted({1, max(opts.concurrency)}):
            console.print(f"bare llama_decode loop, batch {batch} ...")
            results["raw"][str(batch)] = round(raw_decode(opts.model_path, batch, opts.max_tokens, ctx=opts.ctx_size), 1)
    results["ratios"] = _ratios(results)
    return results


# A schema whose one string runs to max_tokens (end-of-turn is banned), so constrained and
# unconstrained runs generate the same number of tokens.
STORY_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "story",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"title": {"type": "string", "maxLength": 40}, "story": {"type": "string", "minLength": 4000}},
            "required": ["title", "story"],
            "additionalProperties": False,
        },
    },
}


_COUNTS = ("requests", "errors", "output_tokens")


def _medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per server and level: the median of its rounds' figures (counts summed)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["server"], row["concurrency"]), []).append(row)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append({k: v for k, v in group[0].items() if k != "round"})
            continue
        merged: dict[str, Any] = {"server": group[0]["server"], "concurrency": group[0]["concurrency"], "rounds": len(group)}
        for key, value in group[0].items():
            if key in merged or key == "round" or not isinstance(value, int | float):
                continue
            values = [r[key] for r in group if key in r]
            merged[key] = sum(values) if key in _COUNTS else round(statistics.median(values), 4)
        out.append(merged)
    return out


def _ratios(results: dict[str, Any]) -> dict[str, float]:
    by = {(r["server"], r["concurrency"]): r["tokens_per_second"] for r in results["levels"]}
    ratios = {}
    for (server, conc), tps in by.items():
        if server.endswith("+ json_schema") and (server.split(" +")[0], conc) in by:
            ratios[f"json_schema / unconstrained, {conc} streams"] = tps / by[(server.split(" +")[0], conc)]
    # chatport / each peer: the median over rounds of each round's ratio (both measured
    # back to back), steadier than a ratio of medians.
    per_round: dict[tuple[str, int], list[float]] = {}
    ours = {
        (r["round"], r["concurrency"]): r["tokens_per_second"] for r in results.get("rounds", []) if r["server"] == "chatport"
    }
    for row in results.get("rounds", []):
        mine = ours.get((row["round"], row["concurrency"]))
        if row["server"] != "chatport" and mine and row["tokens_per_second"]:
            per_round.setdefault((row["server"], row["concurrency"]), []).append(mine / row["tokens_per_second"])
    for (peer, conc), values in per_round.items():
        ratios[f"chatport / {peer}, {conc} streams"] = statistics.median(values)
    for (server, conc), tps in by.items():
        raw = (results.get("raw") or {}).get(str(conc))
        if server == "chatport" and raw:
            ratios[f"chatport / bare llama_decode, batch {conc}"] = tps / raw
    return ratios
