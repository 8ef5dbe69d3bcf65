"""Bench results as JSON, a Markdown table and a PNG plot."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from chatport.bench.load import LevelResult


def _cell(value: float, spec: str) -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def _ms(seconds: float) -> str:
    return _cell(seconds * 1000, ".0f")


def level_rows(levels: list[LevelResult]) -> list[dict[str, Any]]:
    rows = []
    for lv in levels:
        rows.append(
            {
                "server": lv.server,
                "concurrency": lv.concurrency,
                "requests": len(lv.records),
                "errors": lv.errors,
                "output_tokens": lv.output_tokens,
                "tokens_per_second": round(lv.tokens_per_second, 1),
                "ttft_p50_ms": round(lv.ttft(50) * 1000, 1),
                "ttft_p95_ms": round(lv.ttft(95) * 1000, 1),
                "itl_p50_ms": round(lv.itl(50) * 1000, 1),
                "itl_p95_ms": round(lv.itl(95) * 1000, 1),
                **lv.extra,
            }
        )
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [f"Command: `{results['command']}`", ""]
    rows = results.get("levels", [])
    n_rounds = max((r.get("rounds", 1) for r in rows), default=1)
    if n_rounds > 1:
        lines += [f"Medians of {n_rounds} rounds; servers took turns at each level, in reversed order every other round.", ""]
    if rows:
        lines += [
            "| server | concurrency | requests | output tok/s | TTFT p50 ms | TTFT p95 ms | ITL p50 ms | ITL p95 ms | Python share of step | errors |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in rows:
            share = r.get("python_share_of_step")
            lines.append(
                f"| {r['server']} | {r['concurrency']} | {r['requests']} | {r['tokens_per_second']:.1f} | "
                f"{_cell(r['ttft_p50_ms'], '.0f')} | {_cell(r['ttft_p95_ms'], '.0f')} | "
                f"{_cell(r['itl_p50_ms'], '.1f')} | {_cell(r['itl_p95_ms'], '.1f')} | "
                f"{'n/a' if share is None else f'{share:.1%}'} | {r['errors']} |"
            )
    raw = results.get("raw")
    if raw:
        lines += ["", "| bare llama_decode greedy loop: batch | tok/s |", "| ---: | ---: |"]
        lines += [f"| {b} | {v:.1f} |" for b, v in sorted(raw.items(), key=lambda kv: int(kv[0]))]
    ratios = results.get("ratios")
    if ratios:
        lines += ["", "| ratio | value |", "| --- | ---: |"]
        lines += [f"| {name} | {value:.2f} |" for name, value in ratios.items()]
    prefix = results.get("shared_prefix")
    if prefix:
        lines += [
            "",
            "| 1,000-token shared system prompt | TTFT ms | cached_tokens |",
            "| --- | ---: | ---: |",
            f"| first request | {_ms(prefix['cold_ttft'])} | {prefix['cold_cached_tokens']} |",
            f"| repeated | {_ms(prefix['warm_ttft'])} | {prefix['warm_cached_tokens']} |",
            f"| speed-up | {prefix['cold_ttft'] / prefix['warm_ttft']:.1f}x | |",
        ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results.get("levels", [])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for server in dict.fromkeys(r["server"] for r in rows):
        mine = [r for r in rows if r["server"] == server]
        xs = [r["concurrency"] for r in mine]
        left.plot(xs, [r["tokens_per_second"] for r in mine], marker="o", label=server)
        # A level whose requests all failed has no TTFT (NaN): left out of the log scale.
        timed = [r for r in mine if r["ttft_p50_ms"] > 0]
        right.plot([r["concurrency"] for r in timed], [r["ttft_p50_ms"] for r in timed], marker="o", label=f"{server} p50")
        right.plot(
            [r["concurrency"] for r in timed],
            [r["ttft_p95_ms"] for r in timed],
            marker="x",
            linestyle="--",
            label=f"{server} p95",
        )
    raw = results.get("raw") or {}
    if raw:
        xs = sorted(int(b) for b in raw)
        left.plot(xs, [raw[str(b)] for b in xs], marker="s", linestyle=":", color="gray", label="bare llama_decode")
    left.set(title="Aggregate output tokens/s", xlabel="concurrent streams", ylabel="tokens/s")
    right.set(title="Time to first token", xlabel="concurrent streams", ylabel="ms (log scale)")
    if any(r["ttft_p50_ms"] > 0 for r in rows):
        right.set_yscale("log")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict[str, Any], out_dir: str) -> dict[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        "json": os.path.join(out_dir, "results.json"),
        "markdown": os.path.join(out_dir, "results.md"),
        "plot": os.path.join(out_dir, "results.png"),
    }
    with open(paths["json"], "w") as f:
        json.dump(results, f, indent=2)
    with open(paths["markdown"], "w") as f:
        f.write(markdown(results))
    plot(results, paths["plot"])
    return paths
