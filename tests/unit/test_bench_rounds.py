"""How bench turns rounds into its report: medians per server and level, counts summed,
and chatport / peer as the median of each round's back-to-back ratio."""

from __future__ import annotations

from pathlib import Path

from chatport.bench.load import LevelResult
from chatport.bench.report import level_rows, write
from chatport.bench.runner import _medians, _ratios


def row(server: str, concurrency: int, number: int, tps: float, ttft: float = 10.0) -> dict:
    return {
        "server": server,
        "concurrency": concurrency,
        "requests": 32,
        "errors": 0,
        "output_tokens": 4096,
        "tokens_per_second": tps,
        "ttft_p50_ms": ttft,
        "round": number,
    }


ROUNDS = [
    row("chatport", 16, 1, 120.0),
    row("llama-server", 16, 1, 100.0),
    row("llama-server", 16, 2, 80.0),  # a slow spell hit both servers in round 2
    row("chatport", 16, 2, 90.0),
    row("chatport", 16, 3, 130.0),
    row("llama-server", 16, 3, 140.0),
]


def test_levels_are_medians_of_rounds_with_counts_summed():
    levels = {(r["server"], r["concurrency"]): r for r in _medians(ROUNDS)}
    ours = levels[("chatport", 16)]
    assert ours["tokens_per_second"] == 120.0 and ours["rounds"] == 3
    assert ours["requests"] == 96 and ours["output_tokens"] == 3 * 4096
    assert "round" not in ours
    assert levels[("llama-server", 16)]["tokens_per_second"] == 100.0


def test_the_ratio_is_the_median_of_per_round_ratios():
    ratios = _ratios({"levels": _medians(ROUNDS), "rounds": ROUNDS})
    # Per round: 1.2, 1.125, 0.929 -> median 1.125 (the ratio of medians would say 1.2).
    assert abs(ratios["chatport / llama-server, 16 streams"] - 1.125) < 1e-9


def test_a_single_round_is_reported_as_measured():
    (only,) = _medians([row("chatport", 1, 1, 70.0)])
    assert only["tokens_per_second"] == 70.0 and "rounds" not in only and "round" not in only


def test_a_level_whose_requests_all_failed_is_reported_not_a_crash(tmp_path):
    # A server that refused every request (not up yet, a wrong model id) leaves no times:
    # the report still writes its table and its plot, with the errors counted.
    rows = level_rows([LevelResult("target", 1, 0.5, errors=32)])
    paths = write({"command": "chatport bench", "levels": rows, "rounds": rows}, str(tmp_path))
    assert "| target | 1 | 0 | 0.0 | n/a | n/a | n/a | n/a |" in Path(paths["markdown"]).read_text()
    assert rows[0]["errors"] == 32 and Path(paths["plot"]).stat().st_size > 0
