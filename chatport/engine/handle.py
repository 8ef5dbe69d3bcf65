"""The caller's side of a request: the engine thread pushes step outputs, the event loop
reads them. This is the llama.cpp engine's ``GenerationHandle``."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable

from chatport.protocol.backend import BackendFailure, ChoiceDelta, GenerationRequest

_handle_ids = itertools.count()

Outputs = list[ChoiceDelta] | BackendFailure


class RequestHandle:
    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop, on_cancel: Callable[[], None]) -> None:
        self.id = next(_handle_ids)
        self.request = request
        self.enqueued_at = time.monotonic()
        self.first_output_at: float | None = None  # set by the engine thread
        self.cancelled = False
        self._cached_tokens = 0
        self._loop = loop
        self._on_cancel = on_cancel
        self._queue: asyncio.Queue[Outputs] = asyncio.Queue()
        self._admitted: asyncio.Future[None] = loop.create_future()
        self._open = request.n  # choices that have not finished yet

    # --- GenerationHandle ------------------------------------------------------------

    @property
    def prompt_tokens(self) -> int:
        return len(self.request.prompt)

    @property
    def cached_tokens(self) -> int:
        return self._cached_tokens

    async def wait_admitted(self) -> None:
        await self._admitted

    async def __aiter__(self) -> AsyncIterator[list[ChoiceDelta]]:
        while self._open > 0:
            item = await self._queue.get()
            if isinstance(item, BackendFailure):
                raise item
            self._open -= sum(1 for delta in item if delta.finish_reason is not None)
            yield item

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._on_cancel()

    # --- engine thread ---------------------------------------------------------------

    def admitted(self, cached_tokens: int) -> None:
        self._cached_tokens = cached_tokens
        self._loop.call_soon_threadsafe(self._settle_admission, None)

    def fail(self, failure: BackendFailure) -> None:
        self._loop.call_soon_threadsafe(self._settle_admission, failure)
        self._loop.call_soon_threadsafe(self._queue.put_nowait, failure)

    def _settle_admission(self, failure: BackendFailure | None) -> None:
        if self._admitted.done():
            return
        if failure is None:
            self._admitted.set_result(None)
        else:
            self._admitted.set_exception(failure)


def deliver_step(outputs: dict[RequestHandle, list[ChoiceDelta]]) -> None:
    """Hand a whole step's outputs over with one wake-up per event loop, not one per
    request: each wake-up costs the engine thread the GIL."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue[Outputs], list[ChoiceDelta]]]] = {}
    for handle, deltas in outputs.items():
        by_loop.setdefault(handle._loop, []).append((handle._queue, deltas))
    for loop, items in by_loop.items():
        loop.call_soon_threadsafe(_put_all, items)


def _put_all(items: list[tuple[asyncio.Queue[Outputs], list[ChoiceDelta]]]) -> None:
    for queue, deltas in items:
        queue.put_nowait(deltas)
