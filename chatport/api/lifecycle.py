"""Running the app under uvicorn, with a drain before shutting down.

On SIGTERM or SIGINT the server first drains: new API requests get 503 with Retry-After
(and /ready says "not ready", so a load balancer stops sending), running requests go on
for up to ``drain_seconds``; what is still running then is cut (a stream ends with an SSE
error event, a waiting or non-streamed request gets 503), and only then does uvicorn
close its connections and the engines stop. Whatever was answered in full has been
stored. A second signal skips the rest of the drain.
"""

from __future__ import annotations

import asyncio
import logging
from types import FrameType

import uvicorn
from fastapi import FastAPI

from chatport.api.connections import GuardedH11Protocol, default_per_address
from chatport.api.middleware import InFlight
from chatport.service.services import Services

log = logging.getLogger("chatport.api")

# After the cut, the time requests get to send their error events and close.
CUT_GRACE_SECONDS = 5


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, *, drain_seconds: float) -> None:
        super().__init__(config)
        self.services: Services = app.state.services
        self.in_flight: InFlight = app.state.in_flight
        self.drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._drain_task: asyncio.Future[None] | None = None  # kept so it is not collected mid-drain

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is None or self._draining or not self.started:
            super().handle_exit(sig, frame)  # not serving yet, or a second signal: stop now
            return
        self._draining = True
        self._captured_signals.append(sig)  # re-raised after shutdown, as uvicorn does
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain_task = asyncio.ensure_future(self.drain())

    async def drain(self) -> None:
        self.services.begin_drain()
        log.warning("draining: new requests get 503; %d running may take up to %g s", self.in_flight.count, self.drain_seconds)
        if not await self.in_flight.wait_idle(self.drain_seconds):
            log.warning("drain time is up: stopping %d requests", self.in_flight.count)
            self.services.cut_all()
            await self.in_flight.wait_idle(CUT_GRACE_SECONDS)
        log.warning("drained; shutting down")
        self.should_exit = True


def serve(
    app: FastAPI,
    *,
    host: str,
    port: int,
    drain_seconds: float,
    max_connections: int,
    header_timeout: float,
    max_per_address: int | None = None,
    trusted_proxies: list[str] | None = None,
) -> None:
    """``trusted_proxies``: addresses whose X-Forwarded-For / X-Forwarded-Proto name the
    client (a reverse proxy in front); from anyone else they are ignored, so no client can
    pass for another address (the failed-key throttle is per address)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        # asyncio's own loop whatever is installed (uvloop comes with some extras' packages;
        # measured: no gain here, docs/benchmarks.md).
        loop="asyncio",
        http=GuardedH11Protocol.configured(
            header_timeout=header_timeout,
            max_connections=max_connections,
            max_per_address=max_per_address or default_per_address(max_connections),
        ),
        timeout_graceful_shutdown=CUT_GRACE_SECONDS,
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=",".join(trusted_proxies) if trusted_proxies else None,
    )
    DrainingServer(config, app, drain_seconds=drain_seconds).run()
