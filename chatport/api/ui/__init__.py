"""The web UI: a playground, a stored-completions browser and a status page, served at ``/``.

No build step: the page is plain ES modules and one stylesheet in ``static/``, shipped in
the package. Everything it shows comes through the public API with the user's key, except
two helpers here: Markdown rendering (``/ui/markdown``) and the engines' status
(``/ui/status``), which ask for a key as ``/metrics`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse

from chatport.api.responses import OrjsonResponse
from chatport.api.ui.markdown import code_css, render
from chatport.protocol.errors import InvalidRequestError, not_found_error, overloaded_error
from chatport.protocol.validation import parse_json_object
from chatport.service.services import Services
from chatport.service.workers import LowPriorityProcess, WorkStopped

STATIC = Path(__file__).parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Answers longer than this are shown as plain text: markdown-it's link and emphasis parsing
# is quadratic on some inputs (512 KB of "[" took 21 s; 64 KB, the worst found, ~1 s of a
# low-priority child process, never of the event loop or the server's interpreter).
MAX_MARKDOWN_CHARS = 64 * 1024
# Renders waiting for the one renderer thread; more are answered 503 with Retry-After.
MAX_MARKDOWN_WAITING = 4
MARKDOWN_SECONDS = 30.0  # a bounded render (~1 CPU-s at most) that a busy server runs slowly

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


Dependency = Callable[[Request], Awaitable[None]]


def ui_router(services: Services, *, require_key: Dependency, require_any_key: Dependency) -> APIRouter:
    """``require_key``: the API's own check (key, rate limits, drain), for work done on a
    project's behalf; ``require_any_key``: a key of any project, for reading the status."""
    router = APIRouter(include_in_schema=False)
    files = {path.name: path for path in STATIC.iterdir() if path.suffix in _TYPES}
    # Rendering is pure Python: it runs in a child process at the lowest priority (one in
    # this server's own interpreter slowed every stream), waited for by one thread.
    renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatport-markdown")
    child = LowPriorityProcess("markdown")
    child.start()
    waiting = asyncio.Semaphore(MAX_MARKDOWN_WAITING + 1)

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

    @router.post("/ui/markdown", dependencies=[Depends(require_key)])
    async def markdown(request: Request) -> Response:
        body = parse_json_object(await request.body())
        text = body.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError("Invalid type for 'text': expected a string.", param="text", code="invalid_type")
        if len(text) > MAX_MARKDOWN_CHARS:
            raise InvalidRequestError(
                f"'text' is too long: {len(text)} characters, at most {MAX_MARKDOWN_CHARS}.", param="text", code="invalid_value"
            )
        if waiting.locked():
            raise overloaded_error("Too many Markdown renders are waiting. Please retry after a brief wait.", code="ui_busy")
        async with waiting:
            try:
                html = await asyncio.get_running_loop().run_in_executor(
                    renderer, lambda: child.call(render, text, timeout=MARKDOWN_SECONDS)
                )
            except WorkStopped:
                raise overloaded_error("The answer could not be rendered in time. Please retry.", code="ui_busy") from None
        return OrjsonResponse({"html": html}, headers=SECURITY_HEADERS)

    @router.get("/ui/status", dependencies=[Depends(require_any_key)])
    async def status() -> Response:
        return OrjsonResponse(server_status(services), headers=SECURITY_HEADERS)

    return router


def _file(path: Path) -> Response:
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=SECURITY_HEADERS)


def server_status(services: Services) -> dict[str, Any]:
    """What the status page shows: each model's settings and its engine's counters (the page
    takes differences between readings for recent tokens/s and time to first token)."""
    status = services.status()
    models = []
    for model in status.models:
        caps, stats = model.capabilities, model.stats
        models.append(
            {
                "id": model.id,
                "aliases": list(model.aliases),
                "context_length": caps.context_length,
                "slots": caps.max_choices,
                "vision": caps.vision,
                "audio_input": status.audio_input,
                "audio_output": status.audio_output,
                "web_search": status.search.backend if status.search is not None else None,
                "tool_format": model.tool_format,
                "reasoning": model.reasoning,
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
        "keys_required": status.keys_required,
        "stored_completions": status.stored_completions,
        "draining": status.draining,
    }
