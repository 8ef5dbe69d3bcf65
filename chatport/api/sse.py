"""Server-sent events as OpenAI sends them: ``data: {json}`` frames, then ``data: [DONE]``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from chatport.protocol.errors import APIError

log = logging.getLogger("chatport.api")

DONE = b"data: [DONE]\n\n"


async def encode_events(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield b"data: " + orjson.dumps(event) + b"\n\n"
    except Exception as exc:
        # A bug after the stream began: the status line is sent, so the error goes as the
        # last event (the SDKs raise it), never as a stream that just stops.
        log.exception("unhandled error in a stream", exc_info=exc)
        error = APIError("The server had an error while processing your request. Sorry about that!")
        yield b"data: " + orjson.dumps(error.body()) + b"\n\n"
    yield DONE


async def encode_named_events(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """The Responses API's stream: each event as ``event: TYPE`` and its ``data``, no [DONE]."""
    try:
        async for event in events:
            yield b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
    except Exception as exc:
        log.exception("unhandled error in a stream", exc_info=exc)
        error = {"type": "error", "code": "server_error", "param": None, "sequence_number": -1}
        error["message"] = "The server had an error while processing your request. Sorry about that!"
        yield b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"
