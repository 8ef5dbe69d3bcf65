"""Server-sent events as OpenAI sends them: ``data: {json}`` frames, then ``data: [DONE]``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


async def encode_events(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for event in events:
        yield b"data: " + orjson.dumps(event) + b"\n\n"
    yield DONE
