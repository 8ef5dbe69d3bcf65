"""Fidelity, through the Python SDK on both models: tool conversations keep their context,
call markup never reaches content, streams equal whole answers, OpenAI's refusals, aliases
and spellings."""

from __future__ import annotations

import json

import openai
import pytest
from openai import OpenAI

from tests.conftest import MODEL
from tests.support.tools import WEATHER

ASK = [{"role": "user", "content": "What's the weather like in Rome?"}]
CALL_ID = "call_abcdefghijklmnopqrstuvwx"
CALL = {
    "id": CALL_ID,
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"location": "Rome", "unit": "celsius"}'},
}
RESULT = {"role": "tool", "tool_call_id": CALL_ID, "content": '{"temperature": 21}'}


@pytest.fixture
def target(model_target):
    server, model = model_target
    return OpenAI(base_url=server.api, api_key="x", max_retries=0, timeout=300), model


def prompt_tokens(client, model, messages, **kwargs) -> int:
    return client.chat.completions.create(model=model, messages=messages, max_tokens=1, **kwargs).usage.prompt_tokens


# --- 1. the whole conversation reaches the prompt ---------------------------------------


def test_earlier_calls_refusals_and_names_reach_the_prompt(target):
    client, model = target
    bare = [*ASK, {"role": "assistant", "content": ""}]
    with_call = [*ASK, {"role": "assistant", "content": None, "tool_calls": [CALL]}, RESULT]
    without_call = [*ASK, {"role": "assistant", "content": ""}, {"role": "user", "content": '{"temperature": 21}'}]
    assert prompt_tokens(client, model, with_call, tools=[WEATHER]) > prompt_tokens(client, model, without_call, tools=[WEATHER])
    legacy = [*ASK, {"role": "assistant", "content": None, "function_call": CALL["function"]}]
    assert prompt_tokens(client, model, legacy) > prompt_tokens(client, model, bare)
    refused = [*ASK, {"role": "assistant", "content": None, "refusal": "I cannot help with weather."}]
    assert prompt_tokens(client, model, refused) > prompt_tokens(client, model, bare)
    named = [{"role": "user", "content": "Hi", "name": "Alexandria"}]
    assert prompt_tokens(client, model, named) > prompt_tokens(client, model, [{"role": "user", "content": "Hi"}])


# --- 2. call markup never reaches content -----------------------------------------------


def test_a_call_cut_off_by_max_tokens_is_a_call_with_what_was_written(target):
    client, model = target
    body = dict(model=model, messages=ASK, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False, seed=3)
    whole = client.chat.completions.create(**body, max_tokens=200)
    (full,) = whole.choices[0].message.tool_calls
    # Cut one token earlier at a time until the arguments are cut short.
    for max_tokens in range(whole.usage.completion_tokens - 1, 0, -1):
        choice = client.chat.completions.create(**body, max_tokens=max_tokens).choices[0]
        assert choice.finish_reason == "length"
        assert choice.message.content is None  # never the call's markup
        (call,) = choice.message.tool_calls
        if call.function.arguments != full.function.arguments:
            break
    assert call.function.name == "get_weather"
    assert full.function.arguments.startswith(call.function.arguments) and len(call.function.arguments) > 2


def test_no_call_markup_in_any_content(target):
    client, model = target
    for seed in range(8):
        for tokens in (20, 60):
            r = client.chat.completions.create(
                model=model, messages=ASK, tools=[WEATHER], seed=seed, max_tokens=tokens, temperature=1.0
            )
            content = r.choices[0].message.content or ""
            assert "<tool_call" not in content and "</tool_call" not in content, content


# --- 3. a stream is the answer, cut in pieces ------------------------------------------


def shape(message) -> tuple:
    calls = [(c.function.name, c.function.arguments) for c in message.tool_calls or []]
    return message.content, calls


def test_streams_equal_whole_answers(target):
    client, model = target
    for tool_choice in ("auto", "required", "none"):
        for seed in range(6):
            body = dict(
                model=model, messages=ASK, tools=[WEATHER], tool_choice=tool_choice, seed=seed, temperature=1.0, max_tokens=60
            )
            # Both answers start from the prompt in the prefix cache: llama.cpp's kernels round
            # a prompt's last token differently alone than at the end of a whole prompt's
            # batch, so a cold and a cached prompt may part at a near tie.
            client.chat.completions.create(**{**body, "max_tokens": 1})
            whole = client.chat.completions.create(**body)
            with client.chat.completions.stream(**body) as stream:
                try:
                    streamed = stream.get_final_completion()
                except openai.LengthFinishReasonError as cut:  # the SDK's own rule for strict tools
                    streamed = cut.completion
            assert shape(streamed.choices[0].message) == shape(whole.choices[0].message), (tool_choice, seed)
            assert streamed.choices[0].finish_reason == whole.choices[0].finish_reason


# --- 4. arguments as they are written --------------------------------------------------


def test_argument_delta_events_fire_as_text_is_produced(target):
    client, model = target
    body = dict(
        model=model, messages=ASK, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False, max_tokens=200, seed=2
    )
    with client.chat.completions.stream(**body) as stream:
        deltas = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert len(deltas) > 3
    assert "".join(e.arguments_delta for e in deltas) == final.choices[0].message.tool_calls[0].function.arguments


# --- 5. logprobs are of content ----------------------------------------------------------


def test_logprobs_of_a_call_answer_are_of_its_content_only(target):
    client, model = target
    r = client.chat.completions.create(
        model=model, messages=ASK, tools=[WEATHER], tool_choice="required", max_tokens=80, seed=1, logprobs=True
    )
    choice = r.choices[0]
    assert choice.message.content is None and choice.message.tool_calls
    assert choice.logprobs.content == []
    plain = client.chat.completions.create(model=model, messages=ASK, max_tokens=5, logprobs=True, seed=1)
    assert "".join(t.token for t in plain.choices[0].logprobs.content) == plain.choices[0].message.content


# --- 6. what OpenAI refuses --------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "param", "text"),
    [
        ([*ASK, RESULT], "messages.[1].role", "must be a response to a preceeding message with 'tool_calls'"),
        (
            [*ASK, {"role": "assistant", "content": None, "tool_calls": [CALL]}],
            "messages.[1].role",
            "did not have response messages",
        ),
        (
            [*ASK, {"role": "assistant", "content": None, "tool_calls": [CALL]}, {**RESULT, "tool_call_id": "call_other"}],
            "messages.[2].tool_call_id",
            "not found in 'tool_calls' of previous message",
        ),
        (
            [*ASK, {"role": "assistant", "content": None, "tool_calls": [CALL]}, {"role": "user", "content": "and?"}, RESULT],
            "messages.[1].role",
            "did not have response messages",
        ),
    ],
)
def test_tool_messages_must_answer_calls(client, messages, param, text):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=messages, max_tokens=1)
    assert info.value.param == param and text in info.value.message


def test_names_must_match_openais_pattern(client):
    bad_schema = {"type": "json_schema", "json_schema": {"name": "my schema!", "schema": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=ASK, response_format=bad_schema, max_tokens=1)
    assert info.value.param == "response_format.json_schema.name" and info.value.code == "invalid_value"
    bad_tool = {"type": "function", "function": {"name": "get weather", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=ASK, tools=[bad_tool], max_tokens=1)
    assert info.value.param == "tools[0].function.name"


# --- 7. parallel calls by default, ended cleanly ----------------------------------------


def test_parallel_calls_stay_the_default_and_every_call_is_complete(target):
    client, model = target
    for seed in range(6):
        r = client.chat.completions.create(
            model=model, messages=ASK, tools=[WEATHER], tool_choice="required", seed=seed, max_tokens=300
        )
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert 1 <= len(choice.message.tool_calls) <= 4
        for call in choice.message.tool_calls:
            assert json.loads(call.function.arguments)["location"]


# --- 8-10. the seeds' spellings, aliases, service tiers ----------------------------------


def test_prompt_cache_retention_takes_both_spellings(client):
    for retention in ("in-memory", "in_memory", "24h"):
        r = client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=1, extra_body={"prompt_cache_retention": retention}
        )
        assert r.choices


def test_aliases_are_models_and_answers_carry_the_name_used(client):
    listed = {m.id for m in client.models.list()}
    assert {MODEL, "gpt-4o", "gpt-4"} <= listed
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    made = client.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=2, store=True, metadata={"alias": "yes"})
    assert made.model == "gpt-4o"
    found = client.chat.completions.list(model="gpt-4o", metadata={"alias": "yes"})
    assert made.id in [c.id for c in found]
    assert client.chat.completions.retrieve(made.id).model == "gpt-4o"
    with client.chat.completions.stream(model="gpt-4o", messages=ASK, max_tokens=2) as stream:
        assert all(e.chunk.model == "gpt-4o" for e in stream if e.type == "chunk")


@pytest.mark.parametrize(
    ("asked", "echoed"),
    [
        ("auto", "default"),
        ("default", "default"),
        ("flex", "flex"),
        ("scale", "scale"),
        ("priority", "priority"),
        ("fast", "priority"),
    ],
)
def test_every_service_tier_is_served_and_echoed_as_documented(client, asked, echoed):
    r = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=1, extra_body={"service_tier": asked})
    assert r.service_tier == echoed
