"""The ASGI application: routes, auth, error shapes and middleware around the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from starlette.middleware.cors import CORSMiddleware

from chatport.api.errors import install_error_handlers
from chatport.api.guards import BrowserGuard
from chatport.api.keys import KeyCheck
from chatport.api.metrics import metrics_endpoint
from chatport.api.middleware import DEFAULT_BODY_TIMEOUT, InFlight, RequestContextMiddleware
from chatport.api.responses import OrjsonResponse
from chatport.api.routes import audio, chat, conversations, models, responses, stored
from chatport.api.ui import ui_router
from chatport.service.services import Services

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024

# What a browser client (the openai package with dangerouslyAllowBrowser) sends and reads.
# The SDKs send a varying set of x-stainless-* headers, so every requested header is allowed
# (no credentials are involved: keys travel in Authorization, which CORS must allow anyway).
_CORS_EXPOSED = [
    "x-request-id",
    "openai-processing-ms",
    "retry-after",
    *(f"x-ratelimit-{what}-{unit}" for what in ("limit", "remaining", "reset") for unit in ("requests", "tokens")),
]


def create_app(
    services: Services,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allowed_hosts: frozenset[str] | None = None,
    cors_origins: list[str] | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ui: bool = True,
) -> FastAPI:
    """``ui``: serve the web UI at ``/`` (its pages call the API like any client)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        yield
        await services.stop()

    app = FastAPI(title="chatport", default_response_class=OrjsonResponse, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services
    app.state.in_flight = InFlight()
    install_error_handlers(app)

    keys = KeyCheck(services)
    require_key = keys.for_api
    for router in (chat.router, stored.router, responses.router, conversations.router, models.router, audio.router):
        app.include_router(router, prefix="/v1", dependencies=[Depends(require_key)])

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        """Liveness: the process answers. Whether it can do work is /ready's question."""
        return {"status": "ok"}

    @app.get("/ready", include_in_schema=False)
    async def ready(request: Request) -> Response:
        """Readiness: engines alive and stepping, the store reachable, not draining. Which
        check failed (it names the models) is shown to a valid key, as /metrics is."""
        readiness = await services.readiness()
        body: dict[str, Any] = {"status": "ready" if readiness.ready else "not ready"}
        if await keys.may_read_status(request):
            body["checks"] = readiness.checks
        if readiness.ready:
            return OrjsonResponse(body)
        return OrjsonResponse(body, status_code=503, headers={"retry-after": "5"})

    app.add_api_route(
        "/metrics",
        metrics_endpoint(services),
        methods=["GET"],
        include_in_schema=False,
        dependencies=[Depends(keys.any_project)],
    )
    if ui:
        app.include_router(ui_router(services, require_key=keys.for_api, require_any_key=keys.any_project))
    app.add_middleware(BrowserGuard, allowed_hosts=allowed_hosts)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=max_body_bytes, in_flight=app.state.in_flight, body_timeout=body_timeout
    )
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],
            expose_headers=_CORS_EXPOSED,
            max_age=600,
        )
    return app
