"""response_format -> an llguidance grammar (strict schemas checked first)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import llguidance as llg

from chatport.protocol import requests as rq
from chatport.protocol.errors import InvalidRequestError
from chatport.service.bounds import check_schema
from chatport.service.json_grammar import grammar_schema
from chatport.service.strict_schema import StrictSchemaCheck, invalid_schema


def answer_schema(request: rq.ChatCompletionRequest, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The schema ``response_format`` holds the answer to, as it goes into a grammar
    (checked, numbers bounded, whitespace options set); None for text."""
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
        return grammar_schema({"type": "object"}, lenient=False)
    spec = fmt.json_schema
    name = spec.name
    schema = spec.schema_ if spec.schema_ is not None else {"type": "object"}
    check_schema(schema, "response_format", lambda detail: invalid_schema(name, detail))
    if spec.strict:
        StrictSchemaCheck(name).check(schema)
    return grammar_schema(schema, lenient=not spec.strict)


def schema_grammar(schema: dict[str, Any], error: Callable[[str], InvalidRequestError]) -> str:
    """The grammar of an answer under ``schema`` alone (from ``answer_schema``)."""
    try:
        return str(llg.LLMatcher.grammar_from_json_schema(schema))
    except ValueError as exc:
        raise error(str(exc)) from None


def schema_error(request: rq.ChatCompletionRequest) -> Callable[[str], InvalidRequestError]:
    """How a response_format grammar that does not compile is reported."""
    fmt = request.response_format
    name = fmt.json_schema.name if isinstance(fmt, rq.ResponseFormatJSONSchema) else "json_object"
    return lambda detail: invalid_schema(name, detail)
