"""How an answer is constrained (``service/decoding.py``), without a model: neither tools nor
a schema, a schema only, required tools with a schema, optional tools with a schema, and
each again for a thinking model, whose think block's tags stay visible."""

from __future__ import annotations

import json
import re

import pytest

from chatport.protocol.backend import Vocabulary
from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.requests import ChatCompletionRequest
from chatport.service.decoding import plan_decoding
from chatport.service.structured import answer_schema, schema_error
from chatport.service.tools.hermes import CALL_OPEN, HermesFormat
from chatport.service.tools.mistral import MistralFormat
from chatport.service.tools.plan import plan_tools, tools_error
from tests.support.tools import WEATHER

VOCAB = Vocabulary(
    size=1000,
    bos_id=-1,
    bos_text="",
    eos_text="",
    add_bos=False,
    special={"[TOOL_CALLS]": 9, "<think>": 7, "</think>": 8},
    control=frozenset({"[TOOL_CALLS]"}),
    max_token_bytes=16,
)
THINK_TAGS = frozenset({7, 8})
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False},
    },
}


def plan(*, tools: bool = False, choice=None, schema: bool = False, thinking: bool = False, fmt=None):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if tools:
        body["tools"] = [WEATHER]
    if choice is not None:
        body["tool_choice"] = choice
    if schema:
        body["response_format"] = SCHEMA
    request = ChatCompletionRequest.model_validate(body)
    return plan_decoding(
        answer_schema(request, body["messages"]),
        schema_error(request),
        plan_tools(request),
        fmt or HermesFormat(),
        json.dumps,
        VOCAB,
        THINK_TAGS if thinking else frozenset(),
    )


@pytest.fixture(params=[False, True], ids=["answering", "thinking first"])
def thinking(request) -> bool:
    return request.param


def test_neither_tools_nor_a_schema_is_free_text(thinking):
    decoding = plan(thinking=thinking)
    assert decoding.grammar is None and decoding.lazy == ()
    assert decoding.visible == (THINK_TAGS if thinking else frozenset())


def test_a_schema_alone_holds_from_the_first_token(thinking):
    decoding = plan(schema=True, thinking=thinking)
    assert decoding.grammar is not None and decoding.lazy == ()
    error = decoding.grammar_error("bad")
    assert isinstance(error, InvalidRequestError) and "response_format 'answer'" in error.message


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_required_tools_beside_a_schema_decode_the_call(thinking, choice):
    decoding = plan(tools=True, choice=choice, schema=True, thinking=thinking)
    assert decoding.grammar is not None and "get_weather" in decoding.grammar
    assert decoding.grammar_error is tools_error and decoding.lazy == ()


def test_optional_tools_alone_wait_for_a_listed_name(thinking):
    decoding = plan(tools=True, thinking=thinking)
    assert decoding.grammar is None
    triggers = [trigger for trigger, _ in decoding.lazy]
    assert any(t.startswith(re.escape(CALL_OPEN)) for t in triggers)
    assert all("get_weather" in t for t in triggers) and all("get_weather" in grammar for _, grammar in decoding.lazy)
    assert any(b.keep_opener for b in decoding.blocks)  # bare calls are read too
    assert decoding.forced == ()


def test_optional_tools_beside_a_schema_answer_or_call(thinking):
    decoding = plan(tools=True, schema=True, thinking=thinking)
    assert decoding.grammar is not None and "get_weather" in decoding.grammar and '"a"' in decoding.grammar
    assert decoding.lazy == () and decoding.grammar_error is tools_error
    # Bare calls are read too: only an object naming a listed tool with arguments is one.
    assert any(b.keep_opener for b in decoding.blocks)
    # The schema is compiled on its own first, so that a bad one is reported as response_format's.
    (_, error), *_ = decoding.checks
    assert "response_format 'answer'" in error("bad").message
    assert decoding.visible == (THINK_TAGS if thinking else frozenset())


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_required_call_knows_what_it_may_be(choice):
    decoding = plan(tools=True, choice=choice)
    assert [c.name for c in decoding.forced] == ["get_weather"]


def test_tool_choice_none_is_as_if_no_tools(thinking):
    none, without = plan(tools=True, choice="none", thinking=thinking), plan(thinking=thinking)
    assert (none.grammar, none.lazy, none.visible) == (without.grammar, without.lazy, without.visible)


def test_a_formats_control_token_markers_stay_visible(thinking):
    decoding = plan(tools=True, fmt=MistralFormat(), thinking=thinking)
    assert decoding.visible == frozenset({9}) | (THINK_TAGS if thinking else frozenset())
