"""Grammar-constrained decoding with llguidance: one matcher per sequence, a token mask
per step, applied by the sampler only to the rows that have one."""

from __future__ import annotations

import functools
import queue
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

import llguidance as llg
import numpy as np
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

from chatport.protocol.backend import TRIGGER_WINDOW, LazyGrammar

T = TypeVar("T")

# llguidance's compiler recurses once per rule a grammar reaches through another: a chain
# of ~2,500 Lark rules, or ~1,100 JSON-schema definitions each referring to the next,
# overflows a default 8 MiB thread stack and kills the whole process (measured with
# llguidance 1.9.1: ~3.3 KiB of stack per Lark rule, ~8 KiB per schema definition). The
# service bounds what a request may send (service/bounds.py: 2,000 rules, 1,000
# definitions, 100,000 characters of grammar); compiling runs on threads with this much
# stack, at least 24 times what the largest allowed grammar needs. Only touched pages are
# committed, so the reservation costs address space, not memory.
COMPILE_STACK_BYTES = 256 << 20
COMPILE_WORKERS = 2


class DeepStackWorkers:
    """A few threads with a large stack that run blocking calls into native code."""

    def __init__(self, workers: int, stack_bytes: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = queue.SimpleQueue()
        with _STACK_SIZE_LOCK:  # threading.stack_size is process-wide: set it only around our own starts
            previous = threading.stack_size(stack_bytes)
            try:
                for i in range(workers):
                    threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()
            finally:
                threading.stack_size(previous)

    def run(self, call: Callable[[], T]) -> T:
        """``call()`` on one of the threads; blocks until it returns (or raises)."""
        done: Future[object] = Future()
        self._jobs.put((call, done))
        return done.result()  # type: ignore[return-value]

    def _work(self) -> None:
        while True:
            call, done = self._jobs.get()
            try:
                done.set_result(call())
            except BaseException as exc:  # handed to the caller, whatever it is
                done.set_exception(exc)


_STACK_SIZE_LOCK = threading.Lock()


@functools.cache
def _compiler() -> DeepStackWorkers:
    return DeepStackWorkers(COMPILE_WORKERS, COMPILE_STACK_BYTES, "chatport-grammar")


def compile_on_deep_stack(call: Callable[[], T]) -> T:
    """Run a call into llguidance's compiler on a thread whose stack fits the allowed grammars."""
    return _compiler().run(call)


class Constraint:
    """Where one sequence stands in its grammar.

    Compiling a grammar can take from microseconds to a second, so callers compile once,
    off the engine thread, and every sequence starts from a ``clone()`` of that."""

    def __init__(self, tokenizer: llg.LLTokenizer, grammar: str) -> None:
        self._matcher = compile_on_deep_stack(lambda: llg.LLMatcher(tokenizer, grammar, log_level=0))
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


def step_masks(constraints: list[Constraint], ends: np.ndarray) -> np.ndarray:
    """The allowed-token masks of a whole step (rows x vocab, bool). ``ends``: the model's
    end-of-generation tokens (a bool per vocabulary entry).

    llguidance knows one end token and allows it where the grammar may end; a model has
    several (Qwen ends a turn with ``<|im_end|>`` or ``<|endoftext|>``, and after a tool
    call prefers the second), so wherever one is allowed, every one is. Masking the one the
    model wants made Qwen write call after call instead of stopping.

    Computed one matcher after another on the engine thread: llguidance's parallel
    executor keeps worker threads spinning, which on a 2-core machine slows the next
    llama_decode by more than the parallel masks save."""
    n_vocab = len(ends)
    bitmask = allocate_token_bitmask(len(constraints), n_vocab)
    for i, constraint in enumerate(constraints):
        fill_next_token_bitmask(constraint._matcher, bitmask, i)
    bits = np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")
    rows = bits[:, :n_vocab].view(bool)
    may_end = (rows & ends).any(axis=1)
    rows[may_end] |= ends
    return rows


class TriggerWatch:
    """Watches a choice's output for the first trigger of its lazy grammars."""

    def __init__(self, lazy: tuple[LazyGrammar, ...]) -> None:
        self._lazy = [(re.compile(g.trigger), g) for g in lazy]
        self._recent = ""  # output tail that may still hold the start of a match

    def feed(self, text: str) -> tuple[LazyGrammar, str] | None:
        """The lazy grammar whose trigger the output now matches (the earliest match) and
        the text from where that grammar starts; None while there is none."""
        self._recent += text
        found = [(m.start(), m, g) for pattern, g in self._lazy if (m := pattern.search(self._recent))]
        if not found:
            self._recent = self._recent[-TRIGGER_WINDOW:]
            return None
        _, match, lazy = min(found, key=lambda hit: hit[0])
        start = match.start("call") if "call" in match.re.groupindex else match.end()
        after = self._recent[start:]
        self._recent = ""
        return lazy, after
