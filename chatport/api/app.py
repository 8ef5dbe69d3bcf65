"""The ASGI application: routes, auth, error shapes and middleware around the service."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import ORJSONResponse

from chatport.api.auth import KeyChecker
from chatport.api.errors import install_error_handlers
from chatport.api.metrics import metrics_endpoint
from chatport.api.middleware import RequestContextMiddleware
from chatport.api.routes import chat, models
from chatport.service.chat import ChatService
from chatport.service.models import ModelRegistry

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


def create_app(
    registry: ModelRegistry, *, api_keys: list[str] | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        registry.close()

    app = FastAPI(title="chatport", default_response_class=ORJSONResponse, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.registry = registry
    app.state.chat = ChatService(registry)
    install_error_handlers(app)
    require_key = Depends(KeyChecker(api_keys or []))
    app.include_router(chat.router, prefix="/v1", dependencies=[require_key])
    app.include_router(models.router, prefix="/v1", dependencies=[require_key])

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route("/metrics", metrics_endpoint(registry), methods=["GET"], include_in_schema=False)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=max_body_bytes)
    return app
