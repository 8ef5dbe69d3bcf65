"""Whether a server stays responsive while it handles something heavy: /health is asked
again and again while the heavy requests run, and the slowest answer is reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

import httpx

T = TypeVar("T")

# /health must answer within this while any one request is being handled. Before the
# bounds of issue 26 a single request held the event loop for 7 to 120 s; what remains
# (parsing a 32 MB body's JSON) is a few hundred milliseconds.
RESPONSIVE_SECONDS = 2.0


async def slowest_health_answer(base_url: str, work: Awaitable[T]) -> tuple[T, float]:
    """(what ``work`` returned, the slowest /health answer while it ran, in seconds)."""
    done = asyncio.Event()
    slowest = 0.0

    async def probe() -> None:
        nonlocal slowest
        async with httpx.AsyncClient(base_url=base_url, timeout=300) as http:
            while not done.is_set():
                began = time.perf_counter()
                response = await http.get("/health")
                assert response.status_code == 200
                slowest = max(slowest, time.perf_counter() - began)
                await asyncio.sleep(0.05)

    prober = asyncio.ensure_future(probe())
    try:
        result = await work
    finally:
        done.set()
        await prober
    return result, slowest
