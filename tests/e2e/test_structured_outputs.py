"""response_format json_object / json_schema: outputs match by construction (llguidance)."""

from __future__ import annotations

import asyncio
import json

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from tests.conftest import MODEL, QWEN

# Bounded strings and arrays: a 135M model at temperature 1 will otherwise happily write
# one string until max_tokens, and a cut-off answer (finish_reason "length") is not JSON.
COLOR = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 30},
        "hex": {"type": "string", "pattern": "^#[0-9a-f]{6}$"},
        "rating": {"type": "integer", "minimum": 0, "maximum": 10},
        "warm": {"type": "boolean"},
        "tone": {"type": "string", "enum": ["light", "dark"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 4},
    },
    "required": ["name", "hex", "rating", "warm", "tone", "tags"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "Describe a color."}]


def schema_format(schema, strict=True, name="color"):
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


@pytest.fixture
def any_model(model_target):
    server, model = model_target
    return openai.AsyncOpenAI(base_url=server.api, api_key="x", max_retries=0, timeout=600), model


async def test_fifty_strict_requests_at_temperature_one_all_validate(any_model):
    client, model = any_model
    # No more in flight than the servers have slots: none waits in the queue, so a slow
    # machine makes the test slower, never a 503 from the queue timeout.
    slots = asyncio.Semaphore(4)

    async def one(i):
        async with slots:
            r = await client.chat.completions.create(
                model=model, messages=ASK, temperature=1.0, seed=i, max_tokens=400, response_format=schema_format(COLOR)
            )
        return r.choices[0]

    choices = await asyncio.gather(*(one(i) for i in range(50)))
    for choice in choices:
        assert choice.finish_reason == "stop", choice.message.content
        jsonschema.validate(json.loads(choice.message.content), COLOR)


def test_parse_with_a_pydantic_model(qwen_server):
    client = openai.OpenAI(base_url=qwen_server.api, api_key="x", max_retries=0, timeout=300)

    class Color(BaseModel):
        name: str
        hex: str

    class ColorList(BaseModel):
        colors: list[Color]

    parsed = client.chat.completions.parse(
        model=QWEN,
        messages=[{"role": "user", "content": "List 3 colors and their hex codes"}],
        response_format=ColorList,
        max_tokens=400,
        temperature=0,
    )
    message = parsed.choices[0].message
    assert isinstance(message.parsed, ColorList)
    assert message.refusal is None


def test_json_object_mode(client):
    r = client.chat.completions.create(
        model=MODEL,
        # A short answer asked for, greedy: SmolLM2 asked "about a cat" at temperature 0.8
        # writes nested objects until max_tokens (the model's; the grammar ends it nowhere).
        messages=[{"role": "user", "content": "Reply in JSON with a cat's name and age."}],
        response_format={"type": "json_object"},
        max_tokens=400,
        temperature=0,
    )
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_json_object_needs_the_word_json(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=ASK, response_format={"type": "json_object"})
    assert info.value.param == "messages"


def test_streamed_structured_output_validates(client):
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=ASK, response_format=schema_format(COLOR), stream=True, max_tokens=400, seed=11
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    jsonschema.validate(json.loads(text), COLOR)


def test_logit_bias_cannot_break_the_schema(client, vocab):
    (word,) = vocab.tokenize(" hello", special=False)
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, response_format=schema_format(COLOR), logit_bias={str(word): 100}, max_tokens=400, seed=4
    )
    jsonschema.validate(json.loads(r.choices[0].message.content), COLOR)


def test_non_strict_schema_is_still_constrained(client):
    loose = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 30}},
        "required": ["city"],
        "patternProperties": {"^x": {}},  # not supported: ignored, the rest still holds
    }
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, response_format=schema_format(loose, strict=False), max_tokens=300, seed=2
    )
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content)["city"], str)


@pytest.mark.parametrize(
    "schema,fragment",
    [
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, "'additionalProperties' is required"),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "Missing 'b'",
        ),
        ({"type": "array", "items": {"type": "string"}}, "schema must be a JSON Schema of 'type: \"object\"'"),
        (
            {
                "type": "object",
                "properties": {"a": {"allOf": [{"type": "string"}]}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "'allOf' is not permitted",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"$ref": "#/$defs/missing"}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "missing",
        ),
    ],
    ids=["no-additionalProperties", "not-all-required", "root-array", "allOf", "unknown-ref"],
)
def test_invalid_strict_schemas_are_400(server, schema, fragment):
    body = {"model": MODEL, "messages": ASK, "response_format": schema_format(schema, name="bad_one")}
    response = httpx.post(server.api + "/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "response_format"
    assert error["message"].startswith("Invalid schema for response_format 'bad_one': ")
    assert fragment in error["message"]
