"""The ASGI application: routes, auth, error shapes and middleware around the service."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from chatport.api.responses import OrjsonResponse

from chatport.api.auth import Authenticator
from chatport.api.errors import install_error_handlers
from chatport.api.metrics import metrics_endpoint
from chatport.api.middleware import RequestContextMiddleware
from chatport.api.routes import chat, models, stored
from chatport.service.chat import ChatService
from chatport.service.models import ModelRegistry
from chatport.service.stored import StoredCompletions
from chatport.store.completions import CompletionStore
from chatport.store.database import Database, StoreUnavailable, describe
from chatport.store.keys import KeyStore

log = logging.getLogger("chatport.api")

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


def create_app(
    registry: ModelRegistry,
    *,
    api_keys: list[str] | None = None,
    database: Database | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if database is not None:
            try:
                await database.ensure_ready()
            except StoreUnavailable as exc:
                # Serving goes on; stored-completion routes answer 503 until it is back.
                log.warning("completion store %s is unavailable: %s", describe(database.url), exc)
        yield
        registry.close()
        if database is not None:
            await database.close()

    app = FastAPI(title="chatport", default_response_class=OrjsonResponse, lifespan=lifespan, docs_url=None, redoc_url=None)
    stored_service = StoredCompletions(CompletionStore(database)) if database is not None else None
    app.state.registry = registry
    app.state.stored = stored_service
    app.state.chat = ChatService(registry, stored_service)
    install_error_handlers(app)
    authenticate = Authenticator(api_keys or [], KeyStore(database) if database is not None else None)

    async def require_key(request: Request) -> None:
        request.state.project = await authenticate(request)

    for router in (chat.router, stored.router, models.router):
        app.include_router(router, prefix="/v1", dependencies=[Depends(require_key)])

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route("/metrics", metrics_endpoint(registry), methods=["GET"], include_in_schema=False)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=max_body_bytes)
    return app
