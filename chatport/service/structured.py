"""response_format -> an llguidance grammar (strict schemas checked first)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import llguidance as llg

from chatport.protocol import requests as rq
from chatport.protocol.errors import InvalidRequestError
from chatport.service.bounds import check_schema
from chatport.service.strict_schema import StrictSchemaCheck, invalid_schema

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions


# Compact JSON: no free whitespace between tokens, so a small model cannot wander off
# into endless spaces or newlines while staying inside the grammar.
def _options(*, lenient: bool) -> JsonCompileOptions:
    return {"whitespace_flexible": False, "lenient": lenient}


def grammar_for(request: rq.ChatCompletionRequest, messages: list[dict[str, Any]]) -> str | None:
    fmt = request.response_format
    if fmt is None or isinstance(fmt, rq.ResponseFormatText):
        return None
    if isinstance(fmt, rq.ResponseFormatJSONObject):
        if not any("json" in str(m.get("content", "")).lower() for m in messages):
            raise InvalidRequestError(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                param="messages",
                code=None,
            )
        return llg.LLMatcher.grammar_from_json_schema({"type": "object"}, defaults=_options(lenient=False))
    spec = fmt.json_schema
    name = spec.name
    schema = spec.schema_ if spec.schema_ is not None else {"type": "object"}
    check_schema(schema, "response_format", lambda detail: invalid_schema(name, detail))
    if spec.strict:
        StrictSchemaCheck(name).check(schema)
    try:
        return llg.LLMatcher.grammar_from_json_schema(schema, defaults=_options(lenient=not spec.strict))
    except ValueError as exc:
        raise invalid_schema(name, str(exc)) from None


def schema_error(request: rq.ChatCompletionRequest) -> Callable[[str], InvalidRequestError]:
    """How a response_format grammar that does not compile is reported."""
    fmt = request.response_format
    name = fmt.json_schema.name if isinstance(fmt, rq.ResponseFormatJSONSchema) else "json_object"
    return lambda detail: invalid_schema(name, detail)
