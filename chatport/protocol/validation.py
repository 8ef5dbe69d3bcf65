"""Turn a raw request body into a request model, or into OpenAI's exact 400.

OpenAI names the offending parameter with a path such as ``messages[0].content[1]``
and a code such as ``integer_above_max_value``; pydantic's error locations carry
union-branch labels in between, which are stripped here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.requests import INT64_MAX, INT64_MIN

ModelT = TypeVar("ModelT", bound=BaseModel)

INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
    "contact us through our help center at help.openai.com.)"
)

_TYPE_ERRORS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "none_required": "null",
}


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(INVALID_JSON) from None
    if not isinstance(data, dict):
        raise InvalidRequestError(
            f"Invalid type for request body: expected an object, but got {kind_of(data)} instead.",
            code="invalid_type",
        )
    return data


def validate(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise to_openai_error(exc.errors(include_url=False)) from None


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def param_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _is_branch_label(part):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def _is_branch_label(part: str) -> bool:
    # Union members appear as "role=user", "str", "list[...]", "literal[...]" or a class name.
    return "=" in part or "[" in part or part in _BRANCH_NAMES or part[:1].isupper()


_BRANCH_NAMES = {"str", "int", "float", "bool", "dict", "list", "none", "function-after"}


def _is_branch_mismatch(error: Mapping[str, Any]) -> bool:
    """An error that only says 'this union member was the wrong kind of value'."""
    if not any(isinstance(p, str) and _is_branch_label(p) for p in error["loc"]):
        return False
    kind, value = error["type"], error.get("input")
    if kind in _TYPE_ERRORS:
        return True
    if kind == "literal_error":
        return not isinstance(value, str)
    if kind == "invalid_value":
        return not isinstance(value, dict)
    return False


def to_openai_error(errors: Sequence[Mapping[str, Any]]) -> InvalidRequestError:
    for error in errors:
        if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
            name = error["loc"][0]
            return InvalidRequestError(f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter")
    real = [e for e in errors if not _is_branch_mismatch(e)]
    if real:
        return _describe_error(real[0])
    # Every union member rejected the value's kind: report the kinds it accepts.
    param = param_path(errors[0]["loc"])
    same = [e for e in errors if param_path(e["loc"]) == param]
    expected = sorted({_TYPE_ERRORS.get(e["type"], "an object") for e in same})
    got = kind_of(errors[0].get("input"))
    wanted = expected[0] if len(expected) == 1 else "one of " + " or ".join(expected)
    return InvalidRequestError(
        f"Invalid type for '{param}': expected {wanted}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def _describe_error(error: Mapping[str, Any]) -> InvalidRequestError:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    loc = error["loc"]
    if kind == "invalid_value" and ": " in error["msg"]:
        field, supported = error["msg"].split(": ", 1)
        param = param_path((*loc, field))
        shown = value.get(field) if isinstance(value, dict) else value
        if shown is None:
            return _missing(param)
        return InvalidRequestError(f"Invalid value: '{shown}'. {supported}", param=param, code="invalid_value")
    param = param_path(loc)
    if kind == "missing":
        return _missing(param)
    if kind in ("int_type", "int_from_float") and isinstance(value, float) and _huge_integer(value):
        # orjson reads an integer past 64 bits as a float: it was an integer, out of range.
        above = value > 0
        return InvalidRequestError(
            f"Invalid '{param}': integer {'above maximum' if above else 'below minimum'} value. Expected a value "
            f"{'<=' if above else '>='} {INT64_MAX if above else INT64_MIN}, but got {int(value)} instead.",
            param=param,
            code=f"integer_{'above_max' if above else 'below_min'}_value",
        )
    if kind in _TYPE_ERRORS:
        return InvalidRequestError(
            f"Invalid type for '{param}': expected {_TYPE_ERRORS[kind]}, but got {kind_of(value)} instead.",
            param=param,
            code="invalid_type",
        )
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        return InvalidRequestError(
            f"Invalid value: '{value}'. Supported values are: {expected}.", param=param, code="invalid_value"
        )
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return _out_of_range(kind, param, value, ctx)
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        return _bad_length(kind, param, value, ctx)
    return InvalidRequestError(f"Invalid '{param}': {error['msg']}.", param=param, code="invalid_value")


def _huge_integer(value: float) -> bool:
    return value.is_integer() and abs(value) >= 2**63


def _missing(param: str) -> InvalidRequestError:
    return InvalidRequestError(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def _out_of_range(kind: str, param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    below = kind.startswith("greater")
    bound = next(iter(ctx.values()))
    # A float bound means the field is a number: OpenAI calls those decimals.
    number = "decimal" if isinstance(bound, float) else "integer"
    if isinstance(bound, float) and bound.is_integer():
        bound = int(bound)
    op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
    side = "below minimum" if below else "above maximum"
    return InvalidRequestError(
        f"Invalid '{param}': {number} {side} value. Expected a value {op} {bound}, but got {value} instead.",
        param=param,
        code=f"{number}_{'below_min' if below else 'above_max'}_value",
    )


def _bad_length(kind: str, param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    what = "string" if kind.startswith("string") else "array"
    short = kind.endswith("short")
    actual = ctx.get("actual_length", len(value) if hasattr(value, "__len__") else 0)
    if short and actual == 0:
        return InvalidRequestError(
            f"Invalid '{param}': empty {what}. Expected {what_a(what)} with minimum length "
            f"{ctx.get('min_length', 1)}, but got an empty {what} instead.",
            param=param,
            code=f"empty_{what}",
        )
    limit = ctx.get("min_length") if short else ctx.get("max_length")
    word = "minimum" if short else "maximum"
    return InvalidRequestError(
        f"Invalid '{param}': {what} too {'short' if short else 'long'}. Expected {what_a(what)} with "
        f"{word} length {limit}, but got {what_a(what)} with length {actual} instead.",
        param=param,
        code=f"{what}_{'below_min' if short else 'above_max'}_length",
    )


def what_a(what: str) -> str:
    return "an array" if what == "array" else "a string"
