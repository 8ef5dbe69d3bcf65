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


def bounded_numbers(schema: Any) -> Any:
    """``schema`` with every ``integer`` and ``number`` bounded as the module says (a copy;
    depth is bounded by ``service.bounds.check_schema`` before this runs)."""
    if isinstance(schema, list):
        return [bounded_numbers(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: value if key in _DATA_KEYWORDS else bounded_numbers(value) for key, value in schema.items()}
    kinds = out.get("type")
    kinds = {kinds} if isinstance(kinds, str) else set(kinds) if isinstance(kinds, list) else set()
    if kinds & {"integer", "number"} and all(isinstance(k, str) for k in kinds):
        if "minimum" not in out and "exclusiveMinimum" not in out:
            out["minimum"] = -_LARGEST
        if "maximum" not in out and "exclusiveMaximum" not in out:
            out["maximum"] = _LARGEST
        if "number" in kinds and "multipleOf" not in out:
            out["multipleOf"] = _NUMBER_STEP
    return out


def grammar_schema(schema: dict[str, Any], *, lenient: bool) -> dict[str, Any]:
    """A client schema as it goes into a grammar (``%json`` in Lark, or on its own)."""
    out: dict[str, Any] = bounded_numbers(schema)
    out["x-guidance"] = json_options(lenient=lenient)
    return out
