"""Tool calls as client libraries and real models meet them: nested and recursive schemas
in every form a client sends one, tools beside response_format in every tool_choice mode,
calls cut off at every max_tokens, and logprobs under a grammar (issue 28)."""

from __future__ import annotations

import json
import math
from typing import Literal

import jsonschema
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from tests.conftest import MODEL, QWEN
from tests.support.models import PERSON_ASK as PERSON
from tests.support.models import Person
from tests.support.tools import TIME, WEATHER


class Node(BaseModel):
    """A tree: each node has a label and children, themselves nodes."""

    label: str
    children: list[Node]


class WeatherParams(BaseModel):
    city: str
    unit: Literal["celsius", "fahrenheit"]


class MathResponse(BaseModel):
    answer: int
    explanation: str


# A schema that keeps its definitions under "definitions", as older generators write it.
DEFINITIONS = {
    "type": "object",
    "properties": {"owner": {"$ref": "#/definitions/Person"}, "pets": {"type": "array", "items": {"$ref": "#/definitions/Pet"}}},
    "required": ["owner", "pets"],
    "definitions": {
        "Person": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        "Pet": {"type": "object", "properties": {"kind": {"type": "string"}}, "required": ["kind"]},
    },
}
PERSON_ASK = [{"role": "user", "content": PERSON}]


@pytest.fixture
def target(model_target):
    server, model = model_target
    return OpenAI(base_url=server.api, api_key="x", max_retries=0, timeout=300), model


def function_tool(name: str, schema: dict, strict: bool = False) -> dict:
    return {"type": "function", "function": {"name": name, "parameters": schema, "strict": strict}}


# --- nested schemas -------------------------------------------------------------------


def test_pydantic_function_tools_with_nested_models(target):
    client, model = target
    tool = openai.pydantic_function_tool(Person)
    assert "$defs" in json.dumps(tool)
    completion = client.chat.completions.parse(
        model=model, messages=PERSON_ASK, tools=[tool], tool_choice="required", temperature=0, max_tokens=300
    )
    call = completion.choices[0].message.tool_calls[0]
    assert isinstance(call.function.parsed_arguments, Person)


def test_pydantic_function_tools_with_a_recursive_model(qwen_server, client):
    # SmolLM2 nests a tree without end at temperature 0 (its own choice: the grammar
    # allows an empty list of children at every level), so it only has to be accepted.
    tool = openai.pydantic_function_tool(Node)
    ask = [{"role": "user", "content": "Record the tree: root 'a' whose children are the leaves 'b' and 'c'."}]
    cut = client.chat.completions.create(model=MODEL, messages=ask, tools=[tool], tool_choice="required", max_tokens=40)
    assert cut.choices[0].message.tool_calls[0].function.name == "Node"
    qwen = OpenAI(base_url=qwen_server.api, api_key="x", max_retries=0, timeout=300)
    completion = qwen.chat.completions.parse(
        model=QWEN, messages=ask, tools=[tool], tool_choice="required", temperature=0, max_tokens=300
    )
    call = completion.choices[0].message.tool_calls[0]
    assert isinstance(call.function.parsed_arguments, Node) and call.function.parsed_arguments.children


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("schema", ["nested", "definitions"])
def test_every_tool_form_resolves_references_against_its_own_root(target, strict, schema):
    client, model = target
    body = Person.model_json_schema() if schema == "nested" else DEFINITIONS
    if strict and schema == "definitions":
        pytest.skip("strict schemas require additionalProperties false everywhere; covered by the nested one")
    if strict:
        body = openai.pydantic_function_tool(Person)["function"]["parameters"]
    tool = function_tool("record", body, strict)
    for choice in ("required", {"type": "function", "function": {"name": "record"}}):
        r = client.chat.completions.create(model=model, messages=PERSON_ASK, tools=[tool], tool_choice=choice, max_tokens=300)
        call = r.choices[0].message.tool_calls[0]
        if r.choices[0].finish_reason != "length":
            jsonschema.validate(json.loads(call.function.arguments), body)
    # The legacy functions API and response_format take the same schema.
    r = client.chat.completions.create(
        model=model,
        messages=PERSON_ASK,
        functions=[{"name": "record", "parameters": body}],
        function_call={"name": "record"},
        max_tokens=300,
    )
    assert r.choices[0].message.function_call.name == "record"
    r = client.chat.completions.create(
        model=model,
        messages=PERSON_ASK,
        response_format={"type": "json_schema", "json_schema": {"name": "record", "schema": body, "strict": strict}},
        max_tokens=300,
    )
    if r.choices[0].finish_reason == "stop":
        jsonschema.validate(json.loads(r.choices[0].message.content), body)


def test_response_format_parse_with_a_recursive_model(qwen_server):
    qwen = OpenAI(base_url=qwen_server.api, api_key="x", max_retries=0, timeout=300)
    completion = qwen.chat.completions.parse(
        model=QWEN,
        messages=[{"role": "user", "content": "A tree: root 'a' with two leaves 'b' and 'c'."}],
        response_format=Node,
        temperature=0,
        max_tokens=200,
    )
    assert isinstance(completion.choices[0].message.parsed, Node)


# --- tools beside response_format -----------------------------------------------------

MATH_ASK = [
    {"role": "system", "content": "You are a helpful math tutor. Only use the tools you are given."},
    {"role": "user", "content": "What is 15 * 7? And what's the weather in Paris?"},
]


def test_the_seeds_parse_with_tools_and_a_response_format_returns_a_call_or_an_answer(target):
    client, model = target
    kinds = set()
    for seed in range(4):
        try:
            completion = client.chat.completions.parse(
                model=model,
                messages=MATH_ASK,
                tools=[openai.pydantic_function_tool(WeatherParams)],
                response_format=MathResponse,
                temperature=1.0,
                seed=seed,
                max_tokens=300,
            )
        except openai.LengthFinishReasonError:
            continue  # at temperature 1 SmolLM2 may ramble in "explanation" to the limit: the model's doing
        message = completion.choices[0].message
        if message.tool_calls:
            assert isinstance(message.tool_calls[0].function.parsed_arguments, WeatherParams)
            assert completion.choices[0].finish_reason == "tool_calls" and message.parsed is None
            kinds.add("call")
        else:
            assert isinstance(message.parsed, MathResponse)
            kinds.add("answer")
    assert kinds  # each run was one or the other, never an error


def test_qwen_calls_a_tool_beside_a_schema_when_asked_for_data_it_lacks(qwen_server):
    client = OpenAI(base_url=qwen_server.api, api_key="x", max_retries=0, timeout=300)
    completion = client.chat.completions.parse(
        model=QWEN,
        messages=[{"role": "user", "content": "Use the tool to get the weather in Paris in celsius."}],
        tools=[openai.pydantic_function_tool(WeatherParams)],
        response_format=MathResponse,
        temperature=0,
        max_tokens=200,
    )
    message = completion.choices[0].message
    assert message.tool_calls, message.content
    assert message.tool_calls[0].function.parsed_arguments.city


@pytest.mark.parametrize(
    "choice", ["auto", "required", "none", {"type": "function", "function": {"name": "get_weather"}}], ids=str
)
def test_tools_and_a_schema_in_every_tool_choice_mode(target, choice):
    client, model = target
    schema = MathResponse.model_json_schema()
    r = client.chat.completions.create(
        model=model,
        messages=MATH_ASK,
        tools=[WEATHER, TIME],
        tool_choice=choice,
        parallel_tool_calls=False,  # one call: a small model may otherwise call again up to max_tokens
        response_format={"type": "json_schema", "json_schema": {"name": "math", "schema": schema}},
        max_tokens=300,
        temperature=0,
    )
    message, finish = r.choices[0].message, r.choices[0].finish_reason

    def answered() -> None:
        assert not message.tool_calls and message.content.startswith("{")
        if finish == "stop":  # (SmolLM2 may repeat itself in "explanation" up to max_tokens)
            jsonschema.validate(json.loads(message.content), schema)

    if choice in ("required",) or isinstance(choice, dict):
        assert message.tool_calls and finish == "tool_calls" and message.content is None
    elif choice == "none" or not message.tool_calls:
        answered()
    else:
        assert finish == "tool_calls" and message.content is None


# --- calls cut off by max_tokens ------------------------------------------------------


@pytest.mark.parametrize(
    "choice",
    [
        "required",
        {"type": "function", "function": {"name": "get_time"}},
        {
            "type": "allowed_tools",
            "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "get_time"}}]},
        },
    ],
    ids=["required", "named", "allowed_tools"],
)
def test_a_forced_call_cut_at_every_max_tokens_carries_its_name_and_no_markup(target, choice):
    client, model = target
    ask = [{"role": "user", "content": "What time is it in Paris?"}]
    # One call per answer: SmolLM2 under "required" goes on writing calls up to the cap.
    body = {"model": model, "messages": ask, "tools": [WEATHER, TIME], "tool_choice": choice, "temperature": 0}
    body["parallel_tool_calls"] = False
    full = client.chat.completions.create(**body)
    length = full.usage.completion_tokens
    assert full.choices[0].message.tool_calls
    assert length < 60, length
    for max_tokens in range(1, length + 1):
        r = client.chat.completions.create(**body, max_tokens=max_tokens)
        message = r.choices[0].message
        assert message.content is None, (max_tokens, message.content)
        assert message.tool_calls, max_tokens
        names = {c.function.name for c in message.tool_calls}
        assert names <= {"get_weather", "get_time"}, names
        if choice != "required":
            assert names == {"get_time"}
        streamed = client.chat.completions.create(**body, max_tokens=max_tokens, stream=True)
        content, calls = "", {}
        for chunk in streamed:
            if chunk.choices:
                delta = chunk.choices[0].delta
                content += delta.content or ""
                for call in delta.tool_calls or []:
                    calls.setdefault(call.index, "")
                    calls[call.index] += call.function.name or ""
        assert content == "" and list(calls.values()) == [c.function.name for c in message.tool_calls], max_tokens


def test_a_second_call_cut_off_leaves_no_markup_in_content(target):
    client, model = target
    for max_tokens in range(20, 90, 7):
        r = client.chat.completions.create(
            model=model, messages=ASK_BOTH, tools=[WEATHER, TIME], tool_choice="required", temperature=0, max_tokens=max_tokens
        )
        message = r.choices[0].message
        assert message.content is None, (max_tokens, message.content)
        for call in message.tool_calls or []:
            assert "<" not in call.function.name


ASK_BOTH = [{"role": "user", "content": "What's the weather like in Paris, and what time is it there?"}]


# --- logprobs under a grammar ---------------------------------------------------------


def test_logprobs_under_a_schema_are_finite_and_only_allowed_tokens(target):
    client, model = target
    # create, not parse: what is checked is the logprobs, and SmolLM2 may write its
    # explanation past max_tokens (parse would raise before they could be read).
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is 15 * 7? Answer in JSON."}],
        response_format=openai.lib._parsing._completions.type_to_response_format_param(MathResponse),
        logprobs=True,
        top_logprobs=5,
        temperature=0,
        max_tokens=60,
    )
    entries = completion.choices[0].logprobs.content
    assert entries
    for entry in entries:
        assert math.isfinite(entry.logprob) and entry.logprob <= 0
        assert 1 <= len(entry.top_logprobs) <= 5
        for top in entry.top_logprobs:
            assert top.logprob is not None and math.isfinite(top.logprob) and top.token
        # The token picked at temperature 0 is the most likely allowed one.
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-4)
    # Under the grammar the answer opens with '{': every alternative shown opens it too.
    assert all(top.token.startswith("{") for top in entries[0].top_logprobs), entries[0].top_logprobs


def test_whitespace_after_a_colon_is_allowed_and_bounded(client):
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give a JSON object with the capital of France under 'city'."}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "capital",
                "schema": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
                    "required": ["city", "population"],
                },
            },
        },
        temperature=0,
        max_tokens=120,
    )
    assert r.choices[0].finish_reason == "stop"
    answer = json.loads(r.choices[0].message.content)
    assert abs(answer["population"]) < 10**16
    for line in r.choices[0].message.content.split("\n"):
        assert "  " not in line.lstrip(" \t"), line  # indentation after a newline, else one space
