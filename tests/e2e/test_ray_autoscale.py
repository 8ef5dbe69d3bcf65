"""``chatport serve --ray --autoscale 1:2``: under load Serve adds the second replica, and
both serve (a module of its own, so that its Ray instance runs alone)."""

from __future__ import annotations

import asyncio
import time

import pytest
from openai import AsyncOpenAI

from tests.conftest import MODEL, start_server, stop_server
from tests.e2e.test_ray import replicas

pytestmark = pytest.mark.ray


async def test_load_adds_a_replica_and_both_serve(tmp_path):
    server = start_server(str(tmp_path), "--ray", "--autoscale", "1:2", "--threads", "1")
    try:
        client = AsyncOpenAI(base_url=server.api, api_key="unused", max_retries=0, timeout=300)
        deadline = time.monotonic() + 30
        while len(replicas(server)) != 1:  # the first replica reports within seconds
            assert time.monotonic() < deadline, replicas(server)
            await asyncio.sleep(0.5)

        async def one(i: int) -> int:
            done = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"Story {i}"}], max_completion_tokens=100
            )
            return done.usage.completion_tokens

        # 24 requests at once keep the one replica's 8 slots over the target of 4 in flight.
        deadline = time.monotonic() + 180
        while not (len(seen := replicas(server)) == 2 and all(r["requests"] > 0 for r in seen.values())):
            assert time.monotonic() < deadline, seen
            assert all(n > 0 for n in await asyncio.gather(*(one(i) for i in range(24))))
    finally:
        stop_server(server)
