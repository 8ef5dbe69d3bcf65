"""One engine replica: a ``LlamaBackend`` inside a Ray Serve replica. Requests arrive as
``GenerationRequest``s whose grammars are sources (``RemoteGrammar``); the stream answers
``Admitted`` first, then each step's deltas, or ``Failed``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

from chatport.engine.backend import LlamaBackend
from chatport.engine.config import EngineConfig
from chatport.engine.constraint import Constraint
from chatport.protocol.backend import BackendFailure, GenerationRequest, LazyGrammar, ModelCapabilities, Vocabulary
from chatport.replicas.remote import Admitted, Failed, RemoteGrammar, ReplicaReport

REPORT_SECONDS = 1.0


class EngineReplica:
    def __init__(self, path: str, config: EngineConfig, board: Any) -> None:
        """``board``: the model's ``StatsBoard`` actor handle."""
        import ray.serve

        self.backend = LlamaBackend(path, config)
        self.name = ray.serve.get_replica_context().replica_id.unique_id
        self.board = board
        self.requests = 0
        self._compiled = lru_cache(maxsize=256)(self._compile)
        self._reporter: asyncio.Task[None] | None = None

    def _compile(self, source: str) -> Constraint:
        return self.backend.compile_grammar(source)

    def model_facts(self) -> tuple[ModelCapabilities, Vocabulary]:
        return self.backend.capabilities, self.backend.vocabulary

    async def generate(self, affinity: str, request: GenerationRequest) -> AsyncIterator[Any]:
        """``affinity`` is read by the router only (the first argument of every call)."""
        del affinity
        self._start_reporting()
        self.requests += 1
        try:
            handle = self.backend.submit(self._local(request))
        except BackendFailure as failure:
            yield Failed(failure)
            return
        try:
            try:
                await handle.wait_admitted()
            except BackendFailure as failure:
                yield Failed(failure)
                return
            yield Admitted(handle.cached_tokens, self.name)
            try:
                async for step in handle:
                    yield step
            except BackendFailure as failure:
                yield Failed(failure)
        finally:
            handle.cancel()  # the front cancelled (its client left) or the stream ended: free the slots

    def _local(self, request: GenerationRequest) -> GenerationRequest:
        grammar = request.grammar
        lazy = request.lazy_grammars
        return dataclasses.replace(
            request,
            grammar=self._compiled(grammar.source) if isinstance(grammar, RemoteGrammar) else grammar,
            lazy_grammars=tuple(
                LazyGrammar(g.trigger, self._compiled(g.grammar.source)) if isinstance(g.grammar, RemoteGrammar) else g
                for g in lazy
            ),
        )

    def abort_all(self, failure: BackendFailure) -> None:
        self.backend.abort_all(failure)

    def _start_reporting(self) -> None:
        if self._reporter is None:
            self._reporter = asyncio.get_running_loop().create_task(self._report_forever())

    async def _report_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # the board may be restarting; the next report will do
                report = ReplicaReport(self.name, os.getpid(), self.backend.stats(), self.requests, time.time())
                await self.board.post.remote(report)
            await asyncio.sleep(REPORT_SECONDS)

    async def check_health(self) -> None:
        """Serve's health check: the engine thread must be alive."""
        self._start_reporting()
        if not self.backend.stats().alive:
            raise RuntimeError("the engine thread has stopped")

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.backend.close()
