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
def step_masks(constraints: list[Constraint], n_vocab: int) -> np.ndarray:
    """The allowed-token masks of a whole step (rows x vocab, bool).

    Computed one matcher after another on the engine thread: llguidance's parallel
    executor keeps worker threads spinning, which on a 2-core machine slows the next
    llama_decode by more than the parallel masks save."""
    bitmask = allocate_token_bitmask(len(constraints), n_vocab)
    for i, constraint in enumerate(constraints):
        fill_next_token_bitmask(constraint._matcher, bitmask, i)
    bits = np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")
    return bits[:, :n_vocab].view(bool)


def tokenizer_for(model: LlamaModel) -> llg.LLTokenizer:
    """llguidance's view of the model's vocabulary (built once per model, ~0.3 s)."""
    key = id(model)
    with _lock:
        if key not in _tokenizers:
            _tokenizers[key] = llg_llamacpp.lltokenizer_from_vocab(model._vocab)
        return _tokenizers[key]


class Constraint:
    """Where one sequence stands in its grammar.

    Compiling a grammar can take from microseconds to a second, so callers compile once,
    off the engine thread, and every sequence starts from a ``clone()`` of that."""

    def __init__(self, model: LlamaModel, grammar: str) -> None:
        self._matcher = llg.LLMatcher(tokenizer_for(model), grammar, log_level=0)
        if self._matcher.is_error():
            raise ValueError(self._matcher.get_error())

    def clone(self) -> Constraint:
        copy = object.__new__(Constraint)
        copy._matcher = self._matcher.deep_copy()
        return copy

    def advance(self, token: int) -> None:
        self._matcher.consume_token(token)

    @property
    def finished(self) -> bool:
        """The grammar is complete and admits nothing more."""
        return self._matcher.is_stopped()

    @property
    def failed(self) -> str | None:
        return self._matcher.get_error() or None
