"""POST /v1/chat/completions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from chatport.api.responses import OrjsonResponse
from chatport.api.sse import encode_events
from chatport.protocol.validation import parse_json_object
from chatport.service.chat import ChatService, Meter

router = APIRouter()

CLIENT_CLOSED = 499
DROPPED_HEADER = "x-chatport-dropped-params"
SEARCH_HEADER = "x-chatport-search-results"  # how many sources a web search gave the model


@router.post("/chat/completions")
async def create_chat_completion(request: Request) -> Response:
    service: ChatService = request.app.state.services.chat
    body = parse_json_object(await request.body())
    response = await unless_client_leaves(request, _respond(service, body, request.state.project, request.state.ticket))
    return response if response is not None else Response(status_code=CLIENT_CLOSED)


async def _respond(service: ChatService, body: dict[str, Any], project: str, meter: Meter) -> Response:
    return await answer(await service.start(body, project, meter), encode_events)


class Run(Protocol):
    """What a route reads of an admitted run (``ChatRun``, ``ResponseRun``)."""

    @property
    def streams(self) -> bool: ...
    @property
    def dropped(self) -> list[str]: ...
    @property
    def search_results(self) -> int | None: ...
    def stream(self) -> AsyncIterator[dict[str, Any]]: ...
    async def complete(self) -> dict[str, Any]: ...


Encoder = Callable[[AsyncIterator[dict[str, Any]]], AsyncIterator[bytes]]


async def answer(run: Run, encode: Encoder) -> Response:
    """A run read whole, or as the stream ``encode`` frames."""
    # Parameters the server was told to accept and ignore are named, never silently lost.
    said = {DROPPED_HEADER: ", ".join(run.dropped)} if run.dropped else {}
    if run.search_results is not None:
        said[SEARCH_HEADER] = str(run.search_results)
    if run.streams:
        return StreamingResponse(
            encode(run.stream()), media_type="text/event-stream", headers={"cache-control": "no-cache", **said}
        )
    return OrjsonResponse(await run.complete(), headers=said)


async def unless_client_leaves(request: Request, work: Coroutine[Any, Any, Response]) -> Response | None:
    """Run a request's work (building its prompt, waiting for a slot, generating a whole
    completion), dropping it as soon as its client disconnects. A stream, once it has
    begun, is watched by the streaming response itself."""
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
    return None
