"""Function tools and every tool_choice mode, enforced by grammar, on both models."""

from __future__ import annotations

import json
import re

import httpx
import jsonschema
import pytest
from openai import OpenAI

from tests.conftest import MODEL, QWEN
from tests.support.tools import TIME, WEATHER

SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, TIME)}
ASK = [{"role": "user", "content": "What's the weather like in Paris, and what time is it there?"}]


@pytest.fixture
def target(model_target):
    server, model = model_target
    return OpenAI(base_url=server.api, api_key="x", max_retries=0, timeout=300), model


def check_calls(message, allowed):
    assert message.tool_calls, message.content
    for call in message.tool_calls:
        assert call.type == "function" and call.id.startswith("call_")
        assert call.function.name in allowed
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def test_required_calls_always_parse_and_validate(target):
    client, model = target
    for seed in range(6):
        r = client.chat.completions.create(
            model=model, messages=ASK, tools=[WEATHER, TIME], tool_choice="required", temperature=1.0, seed=seed, max_tokens=200
        )
        # SmolLM2 sometimes goes on calling (up to five calls for two questions): a call
        # cut off by max_tokens is returned as written, as OpenAI's are; every whole one
        # parses and validates.
        choice = r.choices[0]
        assert choice.finish_reason in ("tool_calls", "length")
        complete = choice.message.tool_calls if choice.finish_reason == "tool_calls" else choice.message.tool_calls[:-1]
        check_calls(type(choice.message)(role="assistant", tool_calls=complete), {"get_weather", "get_time"})


def test_parallel_tool_calls_false_never_makes_two(target):
    client, model = target
    for seed in range(6):
        r = client.chat.completions.create(
            model=model,
            messages=ASK,
            tools=[WEATHER, TIME],
            tool_choice="required",
            parallel_tool_calls=False,
            temperature=1.0,
            seed=seed,
            max_tokens=200,
        )
        assert len(r.choices[0].message.tool_calls) == 1


def test_allowed_tools_and_named_choice_stay_in_their_set(target):
    client, model = target
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "get_time"}}]},
    }
    named = {"type": "function", "function": {"name": "get_weather"}}
    for seed in range(4):
        r = client.chat.completions.create(
            model=model, messages=ASK, tools=[WEATHER, TIME], tool_choice=allowed, temperature=1.0, seed=seed, max_tokens=200
        )
        check_calls(r.choices[0].message, {"get_time"})
        r = client.chat.completions.create(
            model=model, messages=ASK, tools=[WEATHER, TIME], tool_choice=named, temperature=1.0, seed=seed, max_tokens=200
        )
        check_calls(r.choices[0].message, {"get_weather"})
        assert len(r.choices[0].message.tool_calls) == 1


def test_tool_choice_none_makes_no_call(target):
    client, model = target
    r = client.chat.completions.create(model=model, messages=ASK, tools=[WEATHER], tool_choice="none", max_tokens=30)
    assert r.choices[0].message.tool_calls is None
    assert r.choices[0].finish_reason in ("stop", "length")


def test_qwen_calls_on_its_own_in_auto_mode_with_valid_arguments(qwen_server):
    client = OpenAI(base_url=qwen_server.api, api_key="x", max_retries=0, timeout=300)
    for seed in range(3):
        r = client.chat.completions.create(
            model=QWEN,
            messages=[{"role": "user", "content": "What's the weather in Paris? Use celsius."}],
            tools=[WEATHER],
            temperature=0.7,
            seed=seed,
            max_tokens=200,
        )
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls", choice.message.content
        check_calls(choice.message, {"get_weather"})
        assert choice.message.content is None


def test_seed_function_calling_round_trip(target):
    """The seeds' example: call, run the function, send the result back, get an answer."""
    client, model = target
    messages = [{"role": "user", "content": "What's the weather like in Paris?"}]
    response = client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER], tool_choice="required", max_tokens=200
    )
    message = response.choices[0].message
    messages.append(message)
    for call in message.tool_calls:
        args = json.loads(call.function.arguments)
        messages.append(
            {
                "tool_call_id": call.id,
                "role": "tool",
                "name": call.function.name,
                "content": json.dumps({"location": args["location"], "temperature": 21}),
            }
        )
    final = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER], max_tokens=60)
    # The call reached the prompt: it adds about as many tokens as the model wrote for it.
    # The control: the same conversation with the call taken out (its result kept as text).
    without_call = [
        {"role": "assistant", "content": ""}
        if m is message
        else {"role": "user", "content": m["content"]}
        if isinstance(m, dict) and m.get("role") == "tool"
        else m
        for m in messages
    ]
    control = client.chat.completions.create(model=model, messages=without_call, tools=[WEATHER], max_tokens=1)
    added = final.usage.prompt_tokens - control.usage.prompt_tokens
    # (Fewer than it wrote when the model spread its JSON over lines: the template writes
    # the arguments compactly. A dropped call would add nothing.)
    assert added >= 0.5 * response.usage.completion_tokens, (added, response.usage.completion_tokens)
    # The answer is a well-formed message: text, or calls that parse and validate (the
    # last one may be cut off by max_tokens, as OpenAI returns it); never the markup of a
    # call (a tag followed by something else is the model's text, and stays).
    choice = final.choices[0]
    assert not re.search(r'"name"\s*:\s*"get_weather"', choice.message.content or "")
    if choice.message.tool_calls:
        calls = choice.message.tool_calls
        complete = calls if choice.finish_reason == "tool_calls" else calls[:-1]
        assert choice.finish_reason in ("tool_calls", "length")
        check_calls(type(choice.message)(role="assistant", tool_calls=complete), {"get_weather"}) if complete else None
    elif choice.finish_reason == "stop":
        assert choice.message.content
    else:  # cut: by a call's markup before its name, content is null
        assert choice.finish_reason == "length" and choice.message.content != ""


def test_streamed_calls_have_openai_delta_shape(target):
    client, model = target
    chunks = list(
        client.chat.completions.create(
            model=model, messages=ASK, tools=[WEATHER, TIME], tool_choice="required", stream=True, seed=1, max_tokens=200
        )
    )
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    firsts = [d for d in deltas if d.id is not None]
    assert firsts and all(d.type == "function" and d.function.name and d.function.arguments == "" for d in firsts)
    by_index: dict[int, str] = {}
    for d in deltas:
        by_index[d.index] = by_index.get(d.index, "") + (d.function.arguments or "")
    for index, args in by_index.items():
        name = next(d.function.name for d in firsts if d.index == index)
        jsonschema.validate(json.loads(args), SCHEMAS[name])
        # Arguments arrive in pieces as they are generated, not in one delta at the end.
        assert sum(1 for d in deltas if d.index == index and d.id is None) > 3
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_python_stream_helper_tool_events(client):
    with client.chat.completions.stream(
        model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required", max_tokens=200, seed=2
    ) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert done and done[0].name == "get_weather"
    assert json.loads(done[0].arguments) == json.loads(final.choices[0].message.tool_calls[0].function.arguments)
    assert final.choices[0].message.tool_calls[0].function.parsed_arguments is not None  # strict tools are parsed


def test_legacy_functions_and_function_call(target):
    client, model = target
    r = client.chat.completions.create(
        model=model, messages=ASK, functions=[WEATHER["function"]], function_call={"name": "get_weather"}, max_tokens=200
    )
    choice = r.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.function_call.name == "get_weather"
    jsonschema.validate(json.loads(choice.message.function_call.arguments), SCHEMAS["get_weather"])
    assert choice.message.tool_calls is None


BASE = {"model": MODEL, "messages": ASK}


@pytest.mark.parametrize(
    "extra,param",
    [
        ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"function_call": "auto"}, "function_call"),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "strict": True,
                            "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
                        },
                    }
                ]
            },
            "tools[0].function.parameters",
        ),
        (
            {
                "tools": [WEATHER],
                "tool_choice": {
                    "type": "allowed_tools",
                    "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "ghost"}}]},
                },
            },
            "tool_choice.allowed_tools.tools[0]",
        ),
        ({"tools": [WEATHER], "functions": [WEATHER["function"]]}, "functions"),
    ],
    ids=[
        "duplicate",
        "bad-name",
        "unknown-named",
        "choice-without-tools",
        "parallel-without-tools",
        "function_call-without-functions",
        "strict-not-closed",
        "allowed-unknown",
        "tools-and-functions",
    ],
)
def test_bad_tool_requests(server, extra, param):
    response = httpx.post(server.api + "/chat/completions", json={**BASE, **extra})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


TICKET = {
    "type": "custom",
    "custom": {
        "name": "open_ticket",
        "description": "Open a support ticket by id",
        "format": {"type": "grammar", "grammar": {"syntax": "regex", "definition": r"^TCK-[0-9]{4}$"}},
    },
}
SUM = {
    "type": "custom",
    "custom": {
        "name": "add",
        "description": "Add small numbers",
        "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": 'start: NUM ("+" NUM)*\nNUM: /[0-9]{1,3}/'}},
    },
}
HELP = [{"role": "user", "content": "Open a ticket for my broken printer, and add 2 and 3."}]


def test_regex_custom_tool_input_always_matches(target):
    import re

    client, model = target
    for seed in range(6):
        r = client.chat.completions.create(
            model=model,
            messages=HELP,
            tools=[TICKET, WEATHER],
            tool_choice={"type": "custom", "custom": {"name": "open_ticket"}},
            temperature=1.0,
            seed=seed,
            max_tokens=120,
        )
        calls = r.choices[0].message.tool_calls
        assert r.choices[0].finish_reason == "tool_calls" and len(calls) == 1
        assert calls[0].type == "custom" and calls[0].custom.name == "open_ticket"
        assert re.fullmatch(r"TCK-[0-9]{4}", calls[0].custom.input)


def test_lark_custom_tool_and_allowed_tools_with_customs(target):
    client, model = target
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "custom", "custom": {"name": "add"}}]},
    }
    for seed in range(4):
        r = client.chat.completions.create(
            model=model,
            messages=HELP,
            tools=[TICKET, SUM, WEATHER],
            tool_choice=allowed,
            temperature=1.0,
            seed=seed,
            max_tokens=120,
        )
        for call in r.choices[0].message.tool_calls:
            assert call.custom.name == "add"
            assert all(part.isdigit() and len(part) <= 3 for part in call.custom.input.split("+"))


def test_custom_tool_stream_deltas(server):
    body = {
        "model": MODEL,
        "messages": HELP,
        "tools": [TICKET],
        "tool_choice": "required",
        "stream": True,
        "max_tokens": 120,
        "parallel_tool_calls": False,
        "seed": 1,
    }
    with httpx.stream("POST", server.api + "/chat/completions", json=body, timeout=120) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    deltas = [d for e in events if e["choices"] for d in e["choices"][0]["delta"].get("tool_calls", [])]
    assert deltas[0]["type"] == "custom" and deltas[0]["custom"] == {"name": "open_ticket", "input": ""}
    assert deltas[0]["id"].startswith("call_")
    pieces = [d["custom"]["input"] for d in deltas[1:]]
    assert len(pieces) > 1 and all(set(d) == {"index", "custom"} for d in deltas[1:])  # as it is written
    assert "".join(pieces).startswith("TCK-")
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "grammar", "grammar": {"syntax": "lark", "definition": "start: ("}},
        {"type": "grammar", "grammar": {"syntax": "regex", "definition": "[a-z"}},
        {"type": "grammar", "grammar": {"syntax": "lark", "definition": "start: undefined_rule"}},
    ],
    ids=["lark-syntax", "regex-syntax", "lark-undefined-rule"],
)
def test_invalid_custom_grammars_are_400(server, fmt):
    tools = [WEATHER, {"type": "custom", "custom": {"name": "bad", "format": fmt}}]
    response = httpx.post(server.api + "/chat/completions", json={**BASE, "tools": tools})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "tools[1].custom.format.grammar.definition"
