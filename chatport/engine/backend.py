"""The llama.cpp engine behind the ``Backend`` protocol: a GGUF file, one context with a KV
stream per slot, and the engine thread that steps it."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

from chatport.engine.config import EngineConfig
from chatport.engine.constraint import Constraint
from chatport.engine.engine import Engine
from chatport.engine.handle import RequestHandle
from chatport.engine.history import AnswerHistory
from chatport.engine.llama import LlamaModel, ModelLoadError
from chatport.engine.prompt_cache import PromptCache
from chatport.engine.vision import ProjectorError, Vision
from chatport.protocol.backend import BackendFailure, BackendStats, GenerationRequest, ModelCapabilities, Vocabulary
from chatport.protocol.prompt import Image, Segment


class LlamaBackend:
    def __init__(
        self,
        path: str,
        config: EngineConfig,
        progress: Callable[[float], None] | None = None,
        *,
        mmproj: str | None = None,
    ) -> None:
        """``mmproj``: a vision projector GGUF for this model (libmtmd), for image input."""
        self.model = model = LlamaModel(path, progress=progress, repack=config.repack)
        context_length = min(config.context_length, model.n_ctx_train) if model.n_ctx_train > 0 else config.context_length
        threads = config.threads or os.cpu_count() or 1
        context = model.new_context(
            context_length=context_length,
            n_seq_max=config.max_seqs,
            n_batch=config.batch_tokens,
            n_threads=threads,
        )
        self.vision: Vision | None = None
        if mmproj is not None:
            try:
                self.vision = Vision(mmproj, model.pointer, n_threads=threads, max_batch=context.n_ubatch)
            except ProjectorError as exc:
                context.close()
                model.close()
                raise ModelLoadError(str(exc)) from None
        stat = os.stat(path)
        digest = hashlib.sha256(f"{os.path.basename(path)}:{stat.st_size}".encode()).hexdigest()
        self.prompt_cache = prompt_cache_for(config, f"{digest}:{stat.st_mtime_ns}:{context_length}")
        self.engine = Engine(
            context,
            model,
            context_length=context.context_length,
            max_seqs=config.max_seqs,
            max_waiting=config.max_waiting,
            queue_timeout=config.queue_timeout,
            prompt_cache=self.prompt_cache,
            speculation=config.speculation,
            history=AnswerHistory(total_tokens=config.draft_history_tokens) if config.draft_history_tokens else None,
        )
        self.engine.start()
        self._capabilities = ModelCapabilities(
            context_length=context.context_length,
            max_choices=config.max_seqs,
            chat_template=model.metadata.get("tokenizer.chat_template"),
            fingerprint=f"fp_{digest[:10]}",
            created=int(stat.st_mtime) or int(time.time()),
            vision=self.vision is not None,
        )
        self._vocabulary = vocabulary_of(model)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._capabilities

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocabulary

    def submit(self, request: GenerationRequest) -> RequestHandle:
        return self.engine.submit(request)

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        return self.model.tokenize(text, special=special)

    def detokenize(self, tokens: list[int]) -> str:
        return self.model.detokenize(tokens)

    def encode_image(self, image: Image) -> list[Segment]:
        if self.vision is None:
            raise BackendFailure("image input needs a vision projector (--mmproj), and none is loaded")
        return self.vision.encode(image)

    def compile_grammar(self, grammar: str) -> Constraint:
        return Constraint(self.model.lltokenizer, grammar)

    def stats(self) -> BackendStats:
        return self.engine.stats()

    def abort_all(self, failure: BackendFailure) -> None:
        self.engine.abort_all(failure)

    def close(self) -> None:
        self.engine.shutdown()
        if self.vision is not None:
            self.vision.close()
        self.model.close()


def default_cache_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "chatport", "prompt-cache")


def prompt_cache_for(config: EngineConfig, fingerprint: str) -> PromptCache | None:
    """``fingerprint``: the weights file and context size, which a saved state must match."""
    if config.cache_ram_mb <= 0 and config.cache_disk_mb <= 0:
        return None
    return PromptCache(
        config.cache_ram_mb * 1024 * 1024,
        fingerprint=fingerprint,
        disk_dir=config.cache_dir or default_cache_dir(),
        disk_bytes=config.cache_disk_mb * 1024 * 1024,
    )


def vocabulary_of(model: LlamaModel) -> Vocabulary:
    """What the service needs to know of a model's tokenizer (works on vocab-only loads)."""
    meta = model.metadata

    def special_text(key: str) -> str:
        value = meta.get(key, "")
        return model.token_text(int(value)) if value.isdigit() else ""

    special = model.special_tokens
    longest = max((len(b) for b in model.token_bytes), default=1)
    longest = max([longest, *(len(text.encode()) for text in special)])
    return Vocabulary(
        size=model.n_vocab,
        bos_id=model.bos_id,
        bos_text=special_text("tokenizer.ggml.bos_token_id"),
        eos_text=special_text("tokenizer.ggml.eos_token_id"),
        add_bos=meta.get("tokenizer.ggml.add_bos_token", "false") == "true",
        special={text: token for text, (token, _) in special.items()},
        control=frozenset(text for text, (_, control) in special.items() if control),
        max_token_bytes=max(longest, 1),
    )
