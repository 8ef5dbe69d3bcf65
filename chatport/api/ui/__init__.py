"""The web UI: a playground, a stored-completions browser and a status page, served at ``/``.

No build step: the page is plain ES modules and one stylesheet in ``static/``, shipped in
the package. Everything it shows comes through the public API with the user's key, except
two helpers here: Markdown rendering (``/ui/markdown``) and the engines' status
(``/ui/status``), which ask for a key as ``/metrics`` does.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse

from chatport.api.responses import OrjsonResponse
from chatport.api.ui.markdown import code_css, render
from chatport.protocol.errors import APIError, InvalidRequestError, not_found_error
from chatport.protocol.validation import parse_json_object
from chatport.service.services import Services

STATIC = Path(__file__).parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Answers longer than this are shown as plain text.
MAX_MARKDOWN_CHARS = 512 * 1024

# Only this server's own scripts, styles and API; media from data: and blob: URLs the page
# makes itself (attachments, spoken answers); no frames, no forms posted anywhere.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-cache",
}


def ui_router(services: Services, require_any_key: Callable[[Request], Awaitable[None]]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    files = {path.name: path for path in STATIC.iterdir() if path.suffix in _TYPES}

    @router.api_route("/", methods=["GET", "HEAD"])
    async def index() -> Response:
        return _file(files["index.html"])

    @router.api_route("/ui/static/{name}", methods=["GET", "HEAD"])
    async def static(name: str) -> Response:
        path = files.get(name)
        if path is None:
            raise not_found_error(f"No UI file is called '{name}'.", code="not_found")
        return _file(path)

    @router.get("/ui/code.css")
    async def code_styles() -> Response:
        return Response(code_css(), media_type=_TYPES[".css"], headers=SECURITY_HEADERS)

    @router.post("/ui/markdown", dependencies=[Depends(require_any_key)])
    async def markdown(request: Request) -> Response:
        body = parse_json_object(await request.body())
        text = body.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError("Invalid type for 'text': expected a string.", param="text", code="invalid_type")
        if len(text) > MAX_MARKDOWN_CHARS:
            raise InvalidRequestError(
                f"'text' is too long: {len(text)} characters, at most {MAX_MARKDOWN_CHARS}.", param="text", code="invalid_value"
            )
        return OrjsonResponse({"html": render(text)}, headers=SECURITY_HEADERS)

    @router.get("/ui/status", dependencies=[Depends(require_any_key)])
    async def status() -> Response:
        return OrjsonResponse(await server_status(services), headers=SECURITY_HEADERS)

    return router


def _file(path: Path) -> Response:
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=SECURITY_HEADERS)


async def server_status(services: Services) -> dict[str, Any]:
    """What the status page shows: each model's settings and its engine's counters (the page
    takes differences between readings for recent tokens/s and time to first token)."""
    try:
        await services.auth.principal_for(None)
        keys_required = False
    except APIError:
        keys_required = True
    aliases: dict[str, list[str]] = {}
    for name, model in services.registry.names():
        if name != model.id:
            aliases.setdefault(model.id, []).append(name)
    models = []
    for model in services.registry.listed():
        caps = model.capabilities
        stats = model.backend.stats()
        models.append(
            {
                "id": model.id,
                "aliases": aliases.get(model.id, []),
                "context_length": caps.context_length,
                "slots": caps.max_choices,
                "vision": caps.vision,
                "audio_input": services.chat.audio.transcriber is not None,
                "audio_output": services.chat.audio.synthesizer is not None,
                "tool_format": type(model.tool_format).__name__,
                "reasoning": model.reasoning is not None,
                "fingerprint": caps.fingerprint,
                "running": stats.running,
                "waiting": stats.waiting,
                "steps": stats.steps,
                "tokens": stats.tokens,
                "decode_seconds": stats.decode_seconds,
                "step_seconds": stats.step_seconds,
                "first_tokens": stats.first_tokens,
                "first_token_seconds": stats.first_token_seconds,
                "alive": stats.alive,
                "replicas": [dataclasses.asdict(replica) for replica in stats.replicas],
            }
        )
    return {
        "time": time.monotonic(),
        "models": models,
        "keys_required": keys_required,
        "stored_completions": services.stored is not None,
        "draining": services.draining,
    }
