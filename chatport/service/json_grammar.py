"""How client JSON schemas become grammars: the whitespace a model may write between
tokens, and how long its numbers may run.

Whitespace is allowed where JSON allows it, bounded so that it cannot run away: one space,
or a newline and up to 20 spaces or tabs of indentation, between any two tokens (as
llama.cpp's schema grammars allow). Forbidding it pushed models off their own
distribution: the token most vocabularies have for a space and a quote after a colon was
banned, and at temperature 0 a model wrote ``"city":null`` rather than the city.

Numbers are bounded as llama.cpp bounds them, a little tighter after the point (what
llguidance can express): an ``integer`` has at most 16 digits, a ``number`` at most 16
digits before the point and 9 after it, without an exponent. A schema's own ``minimum``,
``maximum`` (or their exclusive forms) and ``multipleOf`` are kept as written; only the
missing ones are added. Without a bound, a small model could write the digits of a
``population`` until ``max_tokens``.

An object that lists its properties without saying ``additionalProperties`` takes only
those, as llama.cpp's schema grammars do: a small model under a non-strict schema otherwise
wrote keys of its own (``"powerSaveEnabled': true, "``) until ``max_tokens``. Values a
schema leaves open are bounded like the rest: an untyped subschema (``{}``, ``true``, one
with only a description), the extra properties of an object that allows them
(``additionalProperties: true``, or an object with no properties listed, as
``json_object``) and the items of an array without ``items`` become any JSON value whose
numbers are bounded (a recursive definition, ``#/$defs/chatport_any``, added to the
schema's root).
"""

from __future__ import annotations

from typing import Any

# Between any two JSON tokens. Call triggers (service/tools) match the same whitespace,
# so that what a model writes before a call's grammar starts is what the grammar accepts.
WHITESPACE = r"(?: |\n[ \t]{0,20})?"  # a regex, for llguidance and for Python's re alike

_LARGEST = 10**16 - 1  # 16 digits
_NUMBER_STEP = 1e-9  # 9 digits after the point
# Keywords whose values are data, not schemas.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def json_options(*, lenient: bool) -> dict[str, Any]:
    """llguidance's ``x-guidance`` options for a client schema."""
    return {"whitespace_flexible": False, "whitespace_pattern": WHITESPACE, "lenient": lenient}


_MISSING = object()
ANY_NAME = "chatport_any"
_ANY_REF = {"$ref": f"#/$defs/{ANY_NAME}"}
# Keywords that constrain a value: a subschema with none of them takes any JSON value.
_CONSTRAINING = frozenset(
    {"type", "$ref", "anyOf", "oneOf", "allOf", "not", "enum", "const", "properties", "items", "prefixItems"}
    | {"additionalProperties", "patternProperties", "required", "if", "$defs", "definitions"}
)
# Keywords whose values are subschemas (or maps or lists of them).
_ONE_SCHEMA = frozenset({"items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})


def _any_value() -> dict[str, Any]:
    number = {"type": "number", "minimum": -_LARGEST, "maximum": _LARGEST, "multipleOf": _NUMBER_STEP}
    return {
        "anyOf": [
            {"type": "string"},
            {"type": "integer", "minimum": -_LARGEST, "maximum": _LARGEST},
            number,
            {"type": "boolean"},
            {"type": "null"},
            {"type": "array", "items": _ANY_REF},
            {"type": "object", "additionalProperties": _ANY_REF},
        ]
    }


def bounded_numbers(schema: Any) -> Any:
    """``schema`` with every ``integer`` and ``number`` bounded as the module says, open
    values included (a copy; depth is bounded by ``service.bounds.check_schema`` before
    this runs)."""
    opened: list[bool] = []
    out = _bounded(schema, opened)
    if opened and isinstance(out, dict) and isinstance(out.get("$defs", {}), dict):
        out["$defs"] = {**out.get("$defs", {}), ANY_NAME: _any_value()}
    return out


def _open(schema: Any) -> bool:
    return schema is True or (isinstance(schema, dict) and not (schema.keys() & _CONSTRAINING))


def _bounded(schema: Any, opened: list[bool]) -> Any:
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DATA_KEYWORDS:
            out[key] = value
        elif key in _ONE_SCHEMA:
            out[key] = _sub(value, opened)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _sub(sub, opened) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_sub(sub, opened) for sub in value]
        else:
            out[key] = value
    kinds = out.get("type")
    kinds = {kinds} if isinstance(kinds, str) else set(kinds) if isinstance(kinds, list) else set()
    if kinds & {"integer", "number"} and all(isinstance(k, str) for k in kinds):
        if "minimum" not in out and "exclusiveMinimum" not in out:
            out["minimum"] = -_LARGEST
        if "maximum" not in out and "exclusiveMaximum" not in out:
            out["maximum"] = _LARGEST
        if "number" in kinds and "multipleOf" not in out:
            out["multipleOf"] = _NUMBER_STEP
    _close_open_members(out, kinds, opened)
    return out


def _close_open_members(out: dict[str, Any], kinds: set[str], opened: list[bool]) -> None:
    """An object's extra properties and an array's items, where the schema leaves them open."""
    is_object = "object" in kinds or "properties" in out
    extra = out.get("additionalProperties", _MISSING)
    if is_object and "patternProperties" not in out:
        if extra is _MISSING and out.get("properties"):
            out["additionalProperties"] = False  # as llama.cpp's schema grammars: listed properties only
        elif extra is True or extra is _MISSING:
            out["additionalProperties"] = _ANY_REF
            opened.append(True)
    if "array" in kinds and "items" not in out and "prefixItems" not in out:
        out["items"] = _ANY_REF
        opened.append(True)


def _sub(schema: Any, opened: list[bool]) -> Any:
    """A subschema bounded; an open one (``{}``, ``true``) becomes any bounded value."""
    if _open(schema):
        opened.append(True)
        return dict(_ANY_REF) if schema is True else {**schema, **_ANY_REF}
    return _bounded(schema, opened)


def grammar_schema(schema: dict[str, Any], *, lenient: bool) -> dict[str, Any]:
    """A client schema as it goes into a grammar (``%json`` in Lark, or on its own)."""
    out: dict[str, Any] = bounded_numbers(schema)
    out["x-guidance"] = json_options(lenient=lenient)
    return out
