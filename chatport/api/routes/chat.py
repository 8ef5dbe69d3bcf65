"""POST /v1/chat/completions."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from chatport.api.responses import OrjsonResponse
from chatport.api.sse import encode_events
from chatport.protocol.backend import GenerationHandle
from chatport.protocol.validation import parse_json_object
from chatport.service.chat import ChatService

router = APIRouter()

CLIENT_CLOSED = 499


@router.post("/chat/completions")
async def create_chat_completion(request: Request) -> Response:
    service: ChatService = request.app.state.services.chat
    chat = await service.prepare(parse_json_object(await request.body()))
    handle = await service.start(chat)
    if chat.request.stream:
        return StreamingResponse(
            encode_events(service.stream(chat, handle, request.state.project)),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )
    result = await _unless_client_leaves(request, service.complete(chat, handle, request.state.project), handle)
    if result is None:
        return Response(status_code=CLIENT_CLOSED)
    return OrjsonResponse(result)


async def _unless_client_leaves(
    request: Request, work: Coroutine[Any, Any, dict[str, Any]], handle: GenerationHandle
) -> dict[str, Any] | None:
    """Run a non-streamed completion, dropping it as soon as its client disconnects."""
    task = asyncio.ensure_future(work)

    async def client_gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(client_gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    handle.cancel()
    return None
