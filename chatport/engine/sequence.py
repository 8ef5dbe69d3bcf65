"""Requests as the engine sees them, and the sequences (one per choice) they become."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from chatport.engine.sampler import SamplerState, SamplingParams
from chatport.engine.text import StopMatcher, Utf8Assembler

_request_ids = itertools.count()


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    bytes: list[int]
    logprob: float
    top: list[TokenLogprob] = field(default_factory=list)


@dataclass
class ChoiceDelta:
    """What one choice produced in one step."""

    index: int
    text: str = ""
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None
    completion_tokens: int = 0


class EngineFailure(Exception):
    """The engine could not finish a request (it is reported to that request only)."""


class QueueFull(EngineFailure):
    """Too many requests are already waiting for a slot."""


class QueueTimeout(EngineFailure):
    """The request waited longer than the queue timeout without getting a slot."""


@dataclass
class GenerationRequest:
    prompt: list[int]
    params: SamplingParams
    n: int = 1
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    priority: int = 1  # 0 runs first, 2 last; FIFO within a priority
    cache_key: str | None = None
    constraint: Any = None  # compiled grammar (engine.constraint.Constraint) every choice follows
    # ((trigger, constraint), ...): decode freely until the output contains a trigger, then
    # follow that trigger's grammar (the earliest trigger in the output wins)
    lazy_constraints: tuple[tuple[str, Any], ...] | None = None


class RequestHandle:
    """The caller's side of a submitted request: an async stream of step outputs."""

    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.id = next(_request_ids)
        self.request = request
        self.prompt_tokens = len(request.prompt)
        self.cached_tokens = 0
        self.cancelled = False
        self.enqueued_at = time.monotonic()
        self._loop = loop
        self._queue: asyncio.Queue[list[ChoiceDelta] | EngineFailure] = asyncio.Queue()
        self._admitted: asyncio.Future[None] = loop.create_future()
        self._on_cancel: list = []

    # Called from the engine thread.
    def mark_admitted(self) -> None:
        self._loop.call_soon_threadsafe(self._settle_admission, None)

    def _settle_admission(self, failure: EngineFailure | None) -> None:
        if self._admitted.done():
            return
        if failure is None:
            self._admitted.set_result(None)
        else:
            self._admitted.set_exception(failure)

    async def wait_admitted(self) -> None:
        """Returns once the request holds a slot; raises if it never will."""
        await self._admitted

    def deliver(self, outputs: list[ChoiceDelta] | EngineFailure) -> None:
        if isinstance(outputs, EngineFailure):
            self._loop.call_soon_threadsafe(self._settle_admission, outputs)
        self._loop.call_soon_threadsafe(self._queue.put_nowait, outputs)

    @staticmethod
    def deliver_step(outputs: list[tuple[RequestHandle, list[ChoiceDelta]]]) -> None:
        """Hand a whole step's outputs over with one wake-up per event loop, not one per
        request: each wake-up costs the engine thread the GIL."""
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for handle, deltas in outputs:
            by_loop.setdefault(handle._loop, []).append((handle._queue, deltas))
        for loop, items in by_loop.items():
            loop.call_soon_threadsafe(_put_all, items)

    async def next_outputs(self) -> list[ChoiceDelta]:
        item = await self._queue.get()
        if isinstance(item, EngineFailure):
            raise item
        return item

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            for callback in self._on_cancel:
                callback(self)


def _put_all(items: list[tuple[asyncio.Queue, list[ChoiceDelta]]]) -> None:
    for queue, deltas in items:
        queue.put_nowait(deltas)


class Phase(Enum):
    PREFILL = "prefill"
    AWAIT_FORK = "await_fork"  # choice 1..n-1: copies choice 0's prompt KV once computed
    DECODE = "decode"
    FINISHED = "finished"


class Sequence:
    """One choice of one request, living in one KV slot."""

    def __init__(self, handle: RequestHandle, index: int, slot: int, eog_check, constraint=None, lazy_start=None) -> None:
        request = handle.request
        self.handle = handle
        self.index = index
        self.slot = slot
        self.tokens = list(request.prompt)
        self.prompt_len = len(request.prompt)
        self.computed = 0
        self.phase = Phase.PREFILL if index == 0 else Phase.AWAIT_FORK
        self.sampler = SamplerState.create(request.params, index)
        self.max_tokens = request.max_tokens
        self._is_eog = eog_check
        self._utf8 = Utf8Assembler()
        self._stop = StopMatcher(request.stop)
        self._produced = 0  # characters produced so far, released or held
        self._released = 0
        self._pending_logprobs: deque[tuple[int, TokenLogprob]] = deque()
        self.finish_reason: str | None = None
        self.constraint = constraint
        self._lazy = request.lazy_constraints if lazy_start is not None else None
        self._lazy_start = lazy_start
        self._recent = ""  # output tail, searched for the lazy grammar's trigger

    @property
    def generated(self) -> int:
        return len(self.tokens) - self.prompt_len

    def next_chunk(self, budget: int) -> list[int]:
        return self.tokens[self.computed : self.computed + budget]

    def accept(self, token: int, piece: bytes, logprob: TokenLogprob | None, ctx_limit: int) -> ChoiceDelta | None:
        """Take a sampled token; returns what becomes visible now, if anything."""
        self.tokens.append(token)
        self.sampler.record(token)
        delta = ChoiceDelta(self.index)
        if self._is_eog(token):
            return self._finish(delta, "stop", flush=True)
        if self.constraint is not None:
            self.constraint.advance(token)
        text = self._utf8.feed(piece)
        if self._lazy is not None and self.constraint is None:
            self._watch_trigger(text)
        if logprob is not None:
            self._pending_logprobs.append((self._produced, logprob))
        self._produced += len(text)
        released, hit_stop = self._stop.feed(text)
        self._release(delta, released)
        if hit_stop:
            return self._finish(delta, "stop", flush=False)
        if self.constraint is not None and self.constraint.finished:
            return self._finish(delta, "stop", flush=True)
        if (self.max_tokens is not None and self.generated >= self.max_tokens) or len(self.tokens) >= ctx_limit:
            return self._finish(delta, "length", flush=True)
        return delta if (delta.text or delta.logprobs) else None

    def _watch_trigger(self, text: str) -> None:
        self._recent += text
        found = [(at, trigger, grammar) for trigger, grammar in self._lazy if (at := self._recent.find(trigger)) >= 0]
        if not found:
            longest = max(len(trigger) for trigger, _ in self._lazy)
            self._recent = self._recent[-(longest - 1) :] if longest > 1 else ""
            return
        at, trigger, grammar = min(found, key=lambda hit: hit[0])
        # The rest of the output must follow the grammar, starting right after the trigger.
        self.constraint = self._lazy_start(grammar, self._recent[at + len(trigger) :])
        self._recent = ""

    def _release(self, delta: ChoiceDelta, text: str) -> None:
        delta.text += text
        self._released += len(text)
        if self.sampler.params.logprobs:
            out = delta.logprobs if delta.logprobs is not None else []
            while self._pending_logprobs and self._pending_logprobs[0][0] < self._released:
                out.append(self._pending_logprobs.popleft()[1])
            delta.logprobs = out

    def _finish(self, delta: ChoiceDelta, reason: str, *, flush: bool) -> ChoiceDelta:
        if flush:
            tail, hit_stop = self._stop.feed(self._utf8.flush())
            if hit_stop:
                flush = False
            else:
                tail += self._stop.flush()
            self._release(delta, tail)
        if flush and self.sampler.params.logprobs:
            delta.logprobs = (delta.logprobs or []) + [lp for _, lp in self._pending_logprobs]
        self._pending_logprobs.clear()
        self.phase = Phase.FINISHED
        self.finish_reason = reason
        delta.finish_reason = reason
        delta.completion_tokens = self.generated
        return delta

    def abort(self) -> None:
        self.phase = Phase.FINISHED
