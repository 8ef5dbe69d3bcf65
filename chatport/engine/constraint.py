"""Grammar-constrained decoding with llguidance: one matcher per sequence, a token mask
per step, applied by the sampler only to the rows that have one."""

from __future__ import annotations

import llguidance as llg
import numpy as np
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

from chatport.protocol.backend import LazyGrammar


class Constraint:
    """Where one sequence stands in its grammar.

    Compiling a grammar can take from microseconds to a second, so callers compile once,
    off the engine thread, and every sequence starts from a ``clone()`` of that."""

    def __init__(self, tokenizer: llg.LLTokenizer, grammar: str) -> None:
        self._matcher = llg.LLMatcher(tokenizer, grammar, log_level=0)
        if self._matcher.is_error():
            raise ValueError(self._matcher.get_error())

    def clone(self) -> Constraint:
        copy = object.__new__(Constraint)
        copy._matcher = self._matcher.deep_copy()
        return copy

    def advance(self, token: int) -> None:
        self._matcher.consume_token(token)

    def rollback(self, n_tokens: int) -> None:
        """Forget the last ``n_tokens`` consumed."""
        if n_tokens:
            self._matcher.rollback(n_tokens)

    @property
    def finished(self) -> bool:
        """The grammar is complete and admits nothing more."""
        return bool(self._matcher.is_stopped())


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


class TriggerWatch:
    """Watches a choice's output for the first trigger of its lazy grammars."""

    def __init__(self, lazy: tuple[LazyGrammar, ...]) -> None:
        self._lazy = lazy
        self._longest = max(len(g.trigger) for g in lazy)
        self._recent = ""  # output tail that may still contain the start of a trigger

    def feed(self, text: str) -> tuple[LazyGrammar, str] | None:
        """The lazy grammar whose trigger the output now contains (the earliest one) and
        the text already written after that trigger; None while there is none."""
        self._recent += text
        found = [(at, g) for g in self._lazy if (at := self._recent.find(g.trigger)) >= 0]
        if not found:
            keep = self._longest - 1
            self._recent = self._recent[-keep:] if keep else ""
            return None
        at, lazy = min(found, key=lambda hit: hit[0])
        after = self._recent[at + len(lazy.trigger) :]
        self._recent = ""
        return lazy, after
