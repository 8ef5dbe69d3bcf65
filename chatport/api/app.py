"""The ASGI application: routes, auth, error shapes and middleware around the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request

from chatport.api.errors import install_error_handlers
from chatport.api.metrics import metrics_endpoint
from chatport.api.middleware import RequestContextMiddleware
from chatport.api.responses import OrjsonResponse
from chatport.api.routes import chat, models, stored
from chatport.service.services import Services

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


def create_app(services: Services, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        yield
        await services.stop()

    app = FastAPI(title="chatport", default_response_class=OrjsonResponse, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services
    install_error_handlers(app)

    async def require_key(request: Request) -> None:
        request.state.project = await services.auth.project_for(_bearer(request))

    for router in (chat.router, stored.router, models.router):
        app.include_router(router, prefix="/v1", dependencies=[Depends(require_key)])

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route("/metrics", metrics_endpoint(services.registry), methods=["GET"], include_in_schema=False)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=max_body_bytes)
    return app


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
