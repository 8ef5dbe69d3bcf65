import pytest

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.requests import ChatCompletionRequest
from chatport.protocol.validation import parse_json_object, validate

BASE = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def error_for(**extra):
    with pytest.raises(InvalidRequestError) as info:
        validate(ChatCompletionRequest, {**BASE, **extra})
    return info.value


@pytest.mark.parametrize(
    "extra,param,code,message",
    [
        ({"temperature": 3}, "temperature", "decimal_above_max_value", "Expected a value <= 2, but got 3 instead."),
        ({"n": 0}, "n", "integer_below_min_value", "Expected a value >= 1, but got 0 instead."),
        ({"stop": ["a"] * 5}, "stop", "array_above_max_length", "maximum length 4, but got an array with length 5"),
        ({"seed": "1"}, "seed", "invalid_type", "expected an integer, but got a string"),
        ({"logprobs": 1}, "logprobs", "invalid_type", "expected a boolean, but got an integer"),
        ({"frobnicate": 1}, "frobnicate", "unknown_parameter", "Unrecognized request argument supplied: frobnicate"),
        ({"messages": [{"role": "x", "content": "y"}]}, "messages[0].role", "invalid_value", "Invalid value: 'x'."),
        ({"messages": [{"role": "tool", "content": "y"}]}, "messages[0].tool_call_id", "missing_required_parameter", ""),
        ({"tool_choice": "sometimes"}, "tool_choice", "invalid_value", "'sometimes'"),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages[0].content[0].type", "invalid_value", ""),
    ],
)
def test_openai_style_errors(extra, param, code, message):
    err = error_for(**extra)
    assert (err.param, err.code) == (param, code)
    assert message in err.message


def test_nested_unknown_fields_are_ignored_for_sdk_round_trips():
    request = validate(
        ChatCompletionRequest,
        {**BASE, "messages": [{"role": "assistant", "content": "x", "annotations": [], "parsed": None}]},
    )
    assert request.messages[0].content == "x"


def test_ints_are_numbers_but_bools_are_not():
    assert validate(ChatCompletionRequest, {**BASE, "temperature": 1}).temperature == 1.0
    assert error_for(temperature=True).code == "invalid_type"


@pytest.mark.parametrize("raw", [b"{", b"\xff", b"[]", b'"text"', b"null"])
def test_non_object_bodies(raw):
    with pytest.raises(InvalidRequestError):
        parse_json_object(raw)
