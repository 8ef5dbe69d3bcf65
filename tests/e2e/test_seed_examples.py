"""The seeds' basic, multi-turn, developer-role, streaming, async and error-handling
examples, run through the official openai Python SDK against the real server."""

from __future__ import annotations

import openai
import pytest

SYSTEM_AND_USER = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


def test_basic_chat_completion(client):
    response = client.chat.completions.create(model="gpt-4", messages=SYSTEM_AND_USER, max_tokens=40)
    assert response.object == "chat.completion"
    assert response.id.startswith("chatcmpl-")
    assert response.model == "gpt-4"  # the name the client used, as OpenAI echoes it
    assert response.system_fingerprint.startswith("fp_")
    assert response.service_tier == "default"
    choice = response.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.message.refusal is None
    assert choice.finish_reason in ("stop", "length")
    usage = response.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens >= 0
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_additional_parameters_example(client):
    response = client.chat.completions.create(
        model="gpt-4",
        messages=[
            {"role": "system", "content": "You are a creative writer."},
            {"role": "user", "content": "Write a short story about a robot."},
        ],
        max_tokens=150,
        temperature=0.8,
        presence_penalty=0.1,
        frequency_penalty=0.1,
    )
    assert response.usage.completion_tokens <= 150
    assert response.choices[0].message.content


def test_multi_turn_conversation(client):
    messages = [{"role": "user", "content": "My name is Ada. Remember it."}]
    first = client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=30, temperature=0)
    messages.append(first.choices[0].message)  # the SDK's own message object goes back as history
    messages.append({"role": "user", "content": "What is my name?"})
    second = client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=30, temperature=0)
    assert second.usage.prompt_tokens > first.usage.prompt_tokens + first.usage.completion_tokens - 1
    assert second.choices[0].message.content


def test_developer_role_is_accepted(client):
    response = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "developer", "content": "Answer in one word."},
            {"role": "user", "content": [{"type": "text", "text": "Name a color."}]},
        ],
        max_completion_tokens=10,
    )
    assert response.choices[0].message.content is not None


def test_streaming_example(client):
    stream = client.chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "Tell me a long story"}], stream=True, max_tokens=30
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert all(c.usage is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text


def test_streaming_with_include_usage(client):
    stream = client.chat.completions.create(
        model="gpt-4",
        messages=[{"role": "user", "content": "Hello!"}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=20,
    )
    chunks = list(stream)
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    streamed_tokens = final.usage.completion_tokens
    assert 1 <= streamed_tokens <= 20


def test_stream_chunks_carry_obfuscation_unless_disabled(server):
    import httpx
    import orjson

    def frames(options):
        body = {
            "model": "gpt-4",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
            "max_tokens": 5,
            "stream_options": options,
        }
        with httpx.stream("POST", server.api + "/chat/completions", json=body, timeout=60) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in r.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        return [orjson.loads(line[6:]) for line in lines[:-1]]

    assert all("obfuscation" in f for f in frames({"include_usage": False}))
    assert not any("obfuscation" in f for f in frames({"include_obfuscation": False}))


def test_stream_helper_events(client):
    with client.chat.completions.stream(
        model="gpt-4", messages=[{"role": "user", "content": "Say hello."}], max_tokens=300, temperature=0
    ) as stream:
        deltas = []
        for event in stream:
            if event.type == "content.delta":
                deltas.append(event.delta)
        final = stream.get_final_completion()
    assert "".join(deltas) == final.choices[0].message.content
    # The helper raises on a length finish; an unhurried greeting ends on its own.
    assert final.choices[0].finish_reason == "stop"


async def test_async_create_and_stream(async_client):
    response = await async_client.chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "Hello!"}], max_tokens=20
    )
    assert response.choices[0].message.content
    pieces = []
    async for chunk in await async_client.chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "Tell me a story"}], stream=True, max_tokens=20
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    assert pieces


async def test_async_requests_run_concurrently(async_client, eog_bias):
    """Six requests at once are decoded together: every stream has begun before any ends
    (served one after another, the second would start only after the first ended)."""
    import asyncio

    events: list[tuple[str, int]] = []

    async def one(i: int) -> str:
        stream = await async_client.chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": f"Count to {i}"}], max_tokens=48, seed=i, stream=True,
            logit_bias=eog_bias,
        )  # fmt: skip
        text = ""
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not text:
                    events.append(("first", i))
                text += chunk.choices[0].delta.content
        events.append(("last", i))
        return text

    replies = await asyncio.gather(*(one(i) for i in range(6)))
    assert all(replies)
    kinds = [kind for kind, _ in events]
    assert kinds.index("last") > max(i for i, kind in enumerate(kinds) if kind == "first"), events


def test_error_handling_example(client):
    with pytest.raises(openai.APIError) as info:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "Hello"}], temperature=3)
    err = info.value
    assert isinstance(err, openai.BadRequestError)
    assert err.status_code == 400
    assert err.param == "temperature"
    assert err.code == "decimal_above_max_value"
    assert err.type == "invalid_request_error"
