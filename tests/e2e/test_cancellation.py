"""A client that goes away has its sequence cancelled and its slot freed."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import MODEL


def metric(server, name: str) -> float:
    """The value of a per-model metric in /metrics."""
    text = httpx.get(server.base_url + "/metrics").text
    for line in text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} metric")


def reused(server, ask):
    """(what ``ask()`` returned, the prompt tokens the engine reused for it): exactly, from
    /metrics, where usage reports cached_tokens in whole blocks of 128."""
    before = metric(server, "chatport_prompt_tokens_cached_total")
    result = ask()
    return result, int(metric(server, "chatport_prompt_tokens_cached_total") - before)


def running_sequences(server) -> float:
    return metric(server, "chatport_running_sequences")


def wait_until_idle(server, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while running_sequences(server) > 0:
        assert time.monotonic() < deadline, "a sequence was left running"
        time.sleep(0.05)


@pytest.fixture
def endless(eog_bias):
    # Banning the end-of-turn token keeps the model talking until max_tokens.
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me everything about the ocean."}],
        "max_tokens": 1800,
        "logit_bias": eog_bias,
    }


def test_disconnect_mid_stream_frees_the_slot(server, endless):
    wait_until_idle(server)
    with httpx.stream("POST", server.api + "/chat/completions", json={**endless, "stream": True}, timeout=60) as r:
        lines = r.iter_lines()
        for _ in range(5):
            next(lines)
        assert running_sequences(server) == 1
    # The 1800-token generation would take many seconds; the slot must come back at once.
    wait_until_idle(server, limit=5.0)


async def test_disconnect_while_waiting_for_a_whole_completion(server, endless):
    import asyncio

    wait_until_idle(server)
    async with httpx.AsyncClient(timeout=60) as http:
        task = asyncio.ensure_future(http.post(server.api + "/chat/completions", json=endless))
        deadline = time.monotonic() + 10
        while running_sequences(server) == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    wait_until_idle(server, limit=5.0)
