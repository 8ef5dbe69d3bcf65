"""The models being served: each a loaded GGUF, its engine and its chat template,
reachable by id or by alias."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from chatport.engine.engine import Engine, EngineConfig
from chatport.engine.llama import LlamaModel
from chatport.protocol.errors import model_not_found
from chatport.service.template import CHATML, ChatTemplate


@dataclass
class ServedModel:
    id: str
    llama: LlamaModel
    engine: Engine
    template: ChatTemplate
    created: int
    fingerprint: str
    add_bos: bool
    owned_by: str = "chatport"

    @property
    def context_limit(self) -> int:
        return self.engine.ctx_limit

    def tokenize_prompt(self, text: str) -> list[int]:
        tokens = self.llama.tokenize(text)
        if self.add_bos and self.llama.bos_id >= 0 and (not tokens or tokens[0] != self.llama.bos_id):
            tokens.insert(0, self.llama.bos_id)
        return tokens


def load_served_model(
    path: str, model_id: str, config: EngineConfig, progress: Callable[[float], None] | None = None
) -> ServedModel:
    llama = LlamaModel(path, progress=progress)
    meta = llama.metadata

    def special(key: str) -> str:
        value = meta.get(key)
        return llama.token_text(int(value)) if value and value.lstrip("-").isdigit() and int(value) >= 0 else ""

    template = ChatTemplate(
        meta.get("tokenizer.chat_template") or CHATML,
        bos_token=special("tokenizer.ggml.bos_token_id"),
        eos_token=special("tokenizer.ggml.eos_token_id"),
    )
    stat = os.stat(path)
    digest = hashlib.sha256(f"{os.path.basename(path)}:{stat.st_size}:{model_id}".encode()).hexdigest()
    return ServedModel(
        id=model_id,
        llama=llama,
        engine=Engine(llama, config),
        template=template,
        created=int(stat.st_mtime) or int(time.time()),
        fingerprint=f"fp_{digest[:10]}",
        add_bos=meta.get("tokenizer.ggml.add_bos_token", "false") == "true",
    )


class ModelRegistry:
    def __init__(self) -> None:
        self._models: dict[str, ServedModel] = {}
        self._aliases: dict[str, str] = {}

    def add(self, model: ServedModel) -> None:
        self._models[model.id] = model

    def alias(self, name: str, target: str) -> None:
        if target not in self._models:
            raise KeyError(target)
        self._aliases[name] = target

    def resolve(self, name: str) -> ServedModel:
        model = self._models.get(self._aliases.get(name, name))
        if model is None:
            raise model_not_found(name)
        return model

    def listed(self) -> list[ServedModel]:
        return list(self._models.values())

    def close(self) -> None:
        for model in self._models.values():
            model.engine.shutdown()
            model.llama.close()
