"""Everything the API layer calls, built in one place (``chatport.server``), and the
server's life around it: readiness, and the drain before shutting down."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from chatport.protocol.backend import BackendStats, ModelCapabilities, ShuttingDown
from chatport.service.auth import Authenticator
from chatport.service.chat import ChatService
from chatport.service.files import start_pdf_reader
from chatport.service.limits import RateLimiter
from chatport.service.models import ModelRegistry
from chatport.service.responses.service import ResponsesService
from chatport.service.run import shutting_down_error
from chatport.service.search.web import SearchStats
from chatport.service.stored import StoredCompletions
from chatport.store.database import Database, StoreUnavailable, redacted_url

log = logging.getLogger("chatport.service")

# An engine with work that has not stepped for this long is stuck (a step takes well under
# a second; the longest, a 512-token prefill chunk of a large model, a few seconds).
STUCK_SECONDS = 30.0
STORE_CHECK_SECONDS = 2.0


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, str]


@dataclass(frozen=True)
class ModelStatus:
    id: str
    aliases: tuple[str, ...]  # other names that reach it
    capabilities: ModelCapabilities
    stats: BackendStats  # its engines' counters, read now
    tool_format: str  # the call syntax its template speaks
    reasoning: bool  # its template thinks (takes reasoning_effort)


@dataclass(frozen=True)
class ServerStatus:
    """What /metrics, /ready and the status page show, read at once."""

    models: tuple[ModelStatus, ...]
    audio_input: bool
    audio_output: bool
    keys_required: bool
    stored_completions: bool
    draining: bool
    search: SearchStats | None = None  # the web search engine's counters (--web-search)


@dataclass
class Services:
    registry: ModelRegistry
    chat: ChatService
    stored: StoredCompletions | None
    auth: Authenticator
    limits: RateLimiter
    responses: ResponsesService
    database: Database | None = None
    draining: bool = field(default=False, init=False)

    async def start(self) -> None:
        start_pdf_reader()
        if self.database is not None:
            try:
                await self.database.ensure_ready()
            except StoreUnavailable as exc:
                # Serving goes on; stored-completion routes answer 503 until it is back.
                log.warning("completion store %s is unavailable: %s", redacted_url(self.database.url), exc)
        log.warning("auth: %s", await self.auth.decide())

    async def stop(self) -> None:
        await self.responses.stop()
        self.chat.pools.shutdown()
        self.chat.audio.close()
        self.registry.close()
        await self.limits.close()
        if self.database is not None:
            await self.database.close()

    # --- life ------------------------------------------------------------------------

    def begin_drain(self) -> None:
        """From now on new API requests are refused; running ones go on."""
        self.draining = True

    def refuse_if_draining(self) -> None:
        if self.draining:
            raise shutting_down_error("The server is shutting down and takes no new requests.")

    def cut_all(self) -> None:
        """Stop every request still generating: streams end with an error event, waiting
        and non-streamed requests are answered 503."""
        for model in self.registry.listed():
            model.backend.abort_all(ShuttingDown("the server is shutting down"))

    def status(self) -> ServerStatus:
        aliases: dict[str, list[str]] = {}
        for name, model in self.registry.names():
            if name != model.id:
                aliases.setdefault(model.id, []).append(name)
        return ServerStatus(
            models=tuple(
                ModelStatus(
                    model.id,
                    tuple(aliases.get(model.id, ())),
                    model.capabilities,
                    model.backend.stats(),
                    type(model.tool_format).__name__,
                    model.reasoning is not None,
                )
                for model in self.registry.listed()
            ),
            audio_input=self.chat.audio.transcriber is not None,
            audio_output=self.chat.audio.synthesizer is not None,
            keys_required=self.auth.keys_required,
            stored_completions=self.stored is not None,
            draining=self.draining,
            search=self.chat.search.stats if self.chat.search is not None else None,
        )

    async def readiness(self) -> Readiness:
        checks = {f"model:{model.id}": engine_state(model.stats) for model in self.status().models}
        if self.database is not None:
            checks["store"] = await self._store_state()
        checks["draining"] = "yes" if self.draining else "no"
        ready = not self.draining and all(v == "ok" for k, v in checks.items() if k != "draining")
        return Readiness(ready, checks)

    async def _store_state(self) -> str:
        """ "ok" or "unavailable"; why is logged, never shown (a driver's error names hosts and users)."""
        assert self.database is not None
        try:
            await asyncio.wait_for(self.database.ping(), STORE_CHECK_SECONDS)
        except (StoreUnavailable, TimeoutError) as exc:
            log.warning("readiness: the store is unavailable: %s", exc or f"no answer within {STORE_CHECK_SECONDS:g} s")
            return "unavailable"
        return "ok"


def engine_state(stats: BackendStats) -> str:
    """ "ok", or what is wrong with an engine, from its stats."""
    if not stats.alive:
        return "stopped: the engine thread is not running"
    if (stats.running or stats.waiting) and stats.idle_seconds > STUCK_SECONDS:
        return f"stuck: no step for {stats.idle_seconds:.0f} s with {stats.running + stats.waiting} requests"
    return "ok"
