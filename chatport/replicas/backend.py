"""The front's side: ``RayBackend`` is the ``Backend`` the service sees for a model whose
engines run as Ray Serve replicas. Tokenizing, detokenizing and checking grammars happen
here, on a vocabulary-only load of the same GGUF; generation goes to a replica through a
streaming deployment handle, whose cancellation reaches the replica."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from typing import Any

from chatport.engine.constraint import Constraint
from chatport.engine.llama import LlamaModel
from chatport.protocol.backend import (
    BackendFailure,
    BackendStats,
    ChoiceDelta,
    GenerationRequest,
    LazyGrammar,
    ModelCapabilities,
    ReplicaStats,
    Vocabulary,
)
from chatport.protocol.prompt import Image, Segment
from chatport.replicas.board import STALE_SECONDS
from chatport.replicas.remote import Admitted, Failed, RemoteGrammar, ReplicaReport, affinity_key

log = logging.getLogger("chatport.replicas")

POLL_SECONDS = 1.0


class ReplicaLost(BackendFailure):
    """The replica running the request stopped (its process died, or Ray lost it)."""


class RayBackend:
    def __init__(
        self, app_name: str, handle: Any, board: Any, path: str, capabilities: ModelCapabilities, vocabulary: Vocabulary
    ) -> None:
        self.app_name = app_name
        self.handle = handle.options(stream=True)
        self.board = board
        self.model = LlamaModel(path, vocab_only=True)
        self._capabilities = dataclasses.replace(capabilities, vision=False)
        self._vocabulary = vocabulary
        self._reports: list[ReplicaReport] = []
        self._live: weakref.WeakSet[RayHandle] = weakref.WeakSet()
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="chatport-replica-stats", daemon=True)
        self._poller.start()

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._capabilities

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocabulary

    def submit(self, request: GenerationRequest) -> RayHandle:
        remote = dataclasses.replace(
            request,
            grammar=_remote(request.grammar),
            lazy_grammars=tuple(LazyGrammar(g.trigger, _remote(g.grammar)) for g in request.lazy_grammars),
        )
        handle = RayHandle(request, self.handle.generate.remote(affinity_key(request), remote))
        self._live.add(handle)
        return handle

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        return self.model.tokenize(text, special=special)

    def detokenize(self, tokens: list[int]) -> str:
        return self.model.detokenize(tokens)

    def encode_image(self, image: Image) -> list[Segment]:
        raise BackendFailure("image input is not served by Ray replicas yet")

    def compile_grammar(self, grammar: str) -> RemoteGrammar:
        """Checked here, so that a bad grammar is the caller's 400 (ValueError); each replica
        compiles the source again for itself (a compiled matcher cannot travel)."""
        Constraint(self.model.lltokenizer, grammar)
        return RemoteGrammar(grammar)

    def stats(self) -> BackendStats:
        now = time.time()
        reports = self._reports
        # A replica silent for STALE_SECONDS is down: its load no longer counts, its totals do.
        fresh = [r for r in reports if now - r.at < STALE_SECONDS]
        replicas = tuple(
            ReplicaStats(
                r.replica, r in fresh and r.stats.alive, r.stats.running, r.stats.waiting, r.stats.tokens, r.requests, r.pid
            )
            for r in reports
        )
        return BackendStats(
            running=sum(r.stats.running for r in fresh),
            waiting=sum(r.stats.waiting for r in fresh),
            steps=sum(r.stats.steps for r in reports),
            graphs=sum(r.stats.graphs for r in reports),
            tokens=sum(r.stats.tokens for r in reports),
            decode_seconds=sum(r.stats.decode_seconds for r in reports),
            step_seconds=sum(r.stats.step_seconds for r in reports),
            alive=any(r.alive for r in replicas),
            idle_seconds=min((r.stats.idle_seconds for r in fresh), default=0.0),
            first_tokens=sum(r.stats.first_tokens for r in reports),
            first_token_seconds=sum(r.stats.first_token_seconds for r in reports),
            prompt_tokens=sum(r.stats.prompt_tokens for r in reports),
            cached_tokens=sum(r.stats.cached_tokens for r in reports),
            drafted_tokens=_sum_by_source(r.stats.drafted_tokens for r in reports),
            accepted_draft_tokens=_sum_by_source(r.stats.accepted_draft_tokens for r in reports),
            replicas=replicas,
        )

    def abort_all(self, failure: BackendFailure) -> None:
        for handle in list(self._live):
            handle.fail(failure)

    def close(self) -> None:
        """The replicas stay: on a cluster other fronts may use them (``serve delete APP``
        removes them); a local Ray instance is shut down by whoever started it."""
        self._closed.set()
        self.model.close()

    def _poll(self) -> None:
        import ray

        while not self._closed.wait(POLL_SECONDS):
            try:
                self._reports = ray.get(self.board.reports.remote(), timeout=5)
            except Exception as exc:  # the board restarting: keep the last reports, which go stale
                log.debug("replica stats unavailable: %s", exc)


def _remote(grammar: Any) -> RemoteGrammar | None:
    if grammar is None:
        return None
    if isinstance(grammar, RemoteGrammar):
        return grammar
    raise TypeError(f"a grammar for Ray replicas must come from RayBackend.compile_grammar, not {type(grammar).__name__}")


class RayHandle:
    """``GenerationHandle`` over a replica's stream: ``Admitted``, then step deltas."""

    def __init__(self, request: GenerationRequest, stream: Any) -> None:
        self.request = request
        self._stream = stream
        self._cached_tokens = 0
        self._admitted = False
        self._failure: BackendFailure | None = None
        self.cancelled = False
        self.replica: str | None = None

    @property
    def prompt_tokens(self) -> int:
        return len(self.request.prompt)

    @property
    def cached_tokens(self) -> int:
        return self._cached_tokens

    async def wait_admitted(self) -> None:
        if self._admitted:
            return
        try:
            item = await self._next()
        except StopAsyncIteration:
            raise ReplicaLost("the replica ended the request before admitting it") from None
        if isinstance(item, Failed):
            raise item.failure
        if not isinstance(item, Admitted):
            raise ReplicaLost(f"the replica answered {type(item).__name__} before admitting the request")
        self._cached_tokens, self.replica, self._admitted = item.cached_tokens, item.replica, True

    async def __aiter__(self) -> AsyncIterator[list[ChoiceDelta]]:
        await self.wait_admitted()
        while True:
            try:
                item = await self._next()
            except StopAsyncIteration:
                return
            if isinstance(item, Failed):
                raise item.failure
            yield item

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._stream.cancel()

    def fail(self, failure: BackendFailure) -> None:
        """End the request with ``failure`` (drain, shutdown)."""
        self._failure = failure
        self.cancel()

    async def _next(self) -> Any:
        try:
            return await self._stream.__anext__()
        except (StopAsyncIteration, asyncio.CancelledError):
            if self._failure is not None:
                raise self._failure from None
            raise
        except BackendFailure:
            raise
        except Exception as exc:  # RayActorError, RayTaskError, ...: the replica is gone
            if self._failure is not None:
                raise self._failure from None
            log.warning("a replica stream failed: %s", exc)
            raise ReplicaLost("the engine replica running this request stopped; please retry the request") from None


def _sum_by_source(counts: Iterable[tuple[tuple[str, int], ...]]) -> tuple[tuple[str, int], ...]:
    total: dict[str, int] = {}
    for pairs in counts:
        for source, n in pairs:
            total[source] = total.get(source, 0) + n
    return tuple(sorted(total.items()))
