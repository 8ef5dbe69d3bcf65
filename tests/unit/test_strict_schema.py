"""Every rule of OpenAI's Structured Outputs check for strict schemas, with its message."""

from __future__ import annotations

import pytest

from chatport.protocol.errors import InvalidRequestError
from chatport.service.strict_schema import MAX_ENUM_VALUES, MAX_NESTING, MAX_PROPERTIES, StrictSchemaCheck


def obj(**props) -> dict:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def error(schema) -> str:
    with pytest.raises(InvalidRequestError) as info:
        StrictSchemaCheck("answer").check(schema)
    assert info.value.param == "response_format" and info.value.status_code == 400
    return info.value.message


def test_a_valid_schema_passes():
    schema = obj(
        name={"type": "string"},
        tags={"type": "array", "items": obj(label={"type": "string"})},
        kind={"anyOf": [{"type": "string"}, {"type": "null"}]},
        ref={"$ref": "#/$defs/item"},
    )
    schema["$defs"] = {"item": obj(id={"type": "integer"})}
    StrictSchemaCheck("answer").check(schema)


def test_the_root_must_be_an_object():
    assert error({"type": "array"}) == (
        "Invalid schema for response_format 'answer': schema must be a JSON Schema of 'type: \"object\"', got 'type: \"array\"'."
    )
    assert "got 'type: \"anyOf\"'" in error({"anyOf": [obj()]})
    assert error([1]) == "Invalid schema for response_format 'answer': schema must be a JSON Schema object."


def test_additional_properties_must_be_false_everywhere():
    nested = obj(inner={"type": "object", "properties": {}, "required": []})
    assert error(nested) == (
        "Invalid schema for response_format 'answer': In context=('properties', 'inner'), "
        "'additionalProperties' is required to be supplied and to be false."
    )


def test_every_property_must_be_required():
    schema = obj(a={"type": "string"}, b={"type": "string"})
    schema["required"] = ["a"]
    assert error(schema) == (
        "Invalid schema for response_format 'answer': In context=(), 'required' is required to be supplied and to be "
        "an array including every key in properties. Missing 'b'."
    )


@pytest.mark.parametrize("keyword", ["allOf", "not", "oneOf", "patternProperties", "uniqueItems", "minProperties"])
def test_keywords_strict_mode_does_not_permit(keyword):
    assert error(obj(x={"type": "string", keyword: []})).endswith(
        f"In context=('properties', 'x'), '{keyword}' is not permitted."
    )


def test_definitions_are_checked_too():
    schema = obj()
    schema["$defs"] = {"loose": {"type": "object", "properties": {}}}
    assert "In context=('$defs', 'loose'), 'additionalProperties'" in error(schema)


def test_items_and_any_of_branches_are_walked():
    assert "In context=('properties', 'xs', 'items')" in error(obj(xs={"type": "array", "items": {"type": "object"}}))
    assert "In context=('properties', 'v', 'anyOf', '1')" in error(obj(v={"anyOf": [{"type": "string"}, {"type": "object"}]}))


def test_limits_on_nesting_properties_and_enum_values():
    deep = {"type": "string"}
    for _ in range(MAX_NESTING + 1):
        deep = obj(x=deep)
    assert f"nests more than {MAX_NESTING} levels" in error(deep)
    wide = obj(**{f"p{i}": {"type": "string"} for i in range(MAX_PROPERTIES + 1)})
    assert f"more than {MAX_PROPERTIES} object properties" in error(wide)
    enums = obj(e={"type": "string", "enum": [str(i) for i in range(MAX_ENUM_VALUES + 1)]})
    assert f"more than {MAX_ENUM_VALUES} enum values" in error(enums)
