"""Engine behaviour seen from the API: determinism under load, prefix reuse, admission
control, priorities, and no leaks."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from tests.conftest import MODEL, start_server, stop_server
from tests.e2e.test_cancellation import metric, running_sequences, wait_until_idle

PROMPT = [{"role": "user", "content": "Write a short poem about rivers."}]


async def test_seeded_output_is_the_same_alone_and_under_concurrent_traffic(async_client):
    async def seeded():
        r = await async_client.chat.completions.create(model=MODEL, messages=PROMPT, seed=99, temperature=1.0, max_tokens=40)
        return r.choices[0].message.content

    alone = await seeded()
    noise = [
        async_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Describe the number {i}."}], temperature=1.0, max_tokens=30 + i
        )
        for i in range(5)
    ]
    results = await asyncio.gather(seeded(), *noise, seeded())
    assert results[0] == alone
    assert results[-1] == alone


async def test_prefix_is_taken_from_a_sequence_still_running(server, async_client, eog_bias):
    system = {"role": "system", "content": "You answer questions about geography with care. " * 30}
    wait_until_idle(server)
    long_run = asyncio.ensure_future(
        async_client.chat.completions.create(
            model=MODEL,
            messages=[system, {"role": "user", "content": "Tell me about lakes."}],
            max_tokens=300,
            logit_bias=eog_bias,
        )
    )
    while running_sequences(server) == 0:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    before = metric(server, "chatport_prompt_tokens_cached_total")
    await async_client.chat.completions.create(
        model=MODEL, messages=[system, {"role": "user", "content": "And mountains?"}], max_tokens=2
    )
    # Only the running request holds this system prompt, so the reuse came from it.
    assert metric(server, "chatport_prompt_tokens_cached_total") - before > 200
    long_run.cancel()
    wait_until_idle(server)


@pytest.fixture(scope="module")
def one_slot_server(tmp_path_factory):
    srv = start_server(str(tmp_path_factory.mktemp("one")), "--max-seqs", "1", "--max-queue", "2", "--queue-timeout", "1.5")
    yield srv
    stop_server(srv)


def _client(srv):
    return openai.AsyncOpenAI(base_url=srv.api, api_key="x", max_retries=0, timeout=60)


async def test_full_queue_is_429_and_a_long_wait_is_503(one_slot_server, eog_bias):
    client = _client(one_slot_server)
    holder = await client.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=1800, logit_bias=eog_bias, stream=True)
    await holder.__anext__()  # the slot is taken
    waiters = [
        asyncio.ensure_future(client.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=1)) for _ in range(2)
    ]
    await asyncio.sleep(0.3)
    with pytest.raises(openai.RateLimitError) as full:
        await client.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=1)
    assert full.value.code == "rate_limit_exceeded"
    for waiter in waiters:
        with pytest.raises(openai.InternalServerError) as slow:
            await waiter
        assert slow.value.status_code == 503
        assert slow.value.body["code"] == "server_overloaded"
    await holder.close()
    wait_until_idle(one_slot_server)


async def test_priority_tier_is_served_before_flex(one_slot_server, eog_bias):
    client = _client(one_slot_server)
    holder = await client.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=1800, logit_bias=eog_bias, stream=True)
    await holder.__anext__()
    order = []

    async def ask(tier):
        r = await client.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=1, service_tier=tier)
        order.append(r.service_tier)

    flex = asyncio.ensure_future(ask("flex"))
    await asyncio.sleep(0.2)
    priority = asyncio.ensure_future(ask("priority"))
    await asyncio.sleep(0.2)
    await holder.close()
    await asyncio.gather(flex, priority)
    assert order == ["priority", "flex"]


def test_no_leak_over_many_requests(server):
    pid = server.process.pid

    def rss_mb():
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError

    payload = {"model": MODEL, "messages": PROMPT, "max_tokens": 2}

    async def load(count):
        async with httpx.AsyncClient(base_url=server.api, timeout=60) as http:
            sem = asyncio.Semaphore(8)

            async def one(i):
                async with sem:
                    if i % 10 == 0:  # some clients walk away mid-stream
                        async with http.stream(
                            "POST", "/chat/completions", json={**payload, "stream": True, "max_tokens": 50}
                        ) as r:
                            async for _ in r.aiter_lines():
                                break
                    else:
                        assert (await http.post("/chat/completions", json=payload)).status_code == 200

            await asyncio.gather(*(one(i) for i in range(count)))

    asyncio.run(load(100))  # warm-up: allocator pools, caches
    before = rss_mb()
    asyncio.run(load(1000))
    wait_until_idle(server)
    after = rss_mb()
    metrics = httpx.get(server.base_url + "/metrics").text
    assert 'chatport_waiting_requests{model="smollm2-135m-instruct"} 0.0' in metrics
    assert after - before < 40, f"RSS grew from {before:.0f} MB to {after:.0f} MB"


async def test_metrics_count_the_graphs_the_steps_ran_as(server, async_client, eog_bias):
    async def one(i: int) -> None:
        await async_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Count to {i}."}], max_tokens=8, logit_bias=eog_bias
        )

    await asyncio.gather(*(one(i) for i in range(4)))
    steps, graphs = metric(server, "chatport_decode_steps_total"), metric(server, "chatport_decode_graphs_total")
    assert steps >= 8 and graphs >= steps  # a step is at least one graph
