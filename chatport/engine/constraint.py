"""Grammar-constrained decoding with llguidance: one matcher per sequence, a token mask
per step, applied by the sampler only to the rows that have one."""

from __future__ import annotations

import threading

import llguidance as llg
import llguidance.llamacpp as llg_llamacpp
import numpy as np
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

from chatport.engine.llama import LlamaModel

_tokenizers: dict[int, llg.LLTokenizer] = {}
_lock = threading.Lock()


def tokenizer_for(model: LlamaModel) -> llg.LLTokenizer:
    """llguidance's view of the model's vocabulary (built once per model, ~0.3 s)."""
    key = id(model)
    with _lock:
        if key not in _tokenizers:
            _tokenizers[key] = llg_llamacpp.lltokenizer_from_vocab(model._vocab)
        return _tokenizers[key]


def check_grammar(model: LlamaModel, grammar: str) -> str | None:
    """None when the grammar compiles for this model, else llguidance's message."""
    error = llg.LLMatcher.validate_grammar(grammar, tokenizer_for(model))
    return error or None


class Constraint:
    """Where one sequence stands in its grammar."""

    def __init__(self, model: LlamaModel, grammar: str) -> None:
        self._matcher = llg.LLMatcher(tokenizer_for(model), grammar, log_level=0)
        if self._matcher.is_error():
            raise ValueError(self._matcher.get_error())
        self._n_vocab = model.n_vocab
        self._bitmask = allocate_token_bitmask(1, model.n_vocab)

    def allowed(self) -> np.ndarray:
        """Boolean mask over the vocabulary of tokens the grammar allows next."""
        fill_next_token_bitmask(self._matcher, self._bitmask)
        bits = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")
        return bits[: self._n_vocab].astype(bool)

    def advance(self, token: int) -> None:
        self._matcher.consume_token(token)

    @property
    def finished(self) -> bool:
        """The grammar is complete and admits nothing more."""
        return self._matcher.is_stopped()

    @property
    def failed(self) -> str | None:
        return self._matcher.get_error() or None
