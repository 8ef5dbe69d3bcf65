"""Bounds on what one request may hand to code whose cost or stack depth grows with it,
checked before that code runs, each with a 400 naming the parameter (docs/security.md).

Sizes, checked on the parsed body before it is validated: at most ``MAX_TOOLS`` tools and
legacy functions (OpenAI's 128), one message per token of the model's context, at most
``MAX_CONTENT_PARTS`` content parts in all, and strings of at most ``MAX_STRING_CHARS``
characters (OpenAI's 10 MiB).

Grammars and JSON schemas (compiled by llguidance, whose compiler recurses per rule and per
schema definition), checked before anything is compiled: a custom tool's grammar holds at most
``MAX_GRAMMAR_CHARS`` characters, ``MAX_GRAMMAR_RULES`` rules and ``MAX_GRAMMAR_NESTING``
levels of brackets; a regex at most ``MAX_GRAMMAR_CHARS`` characters and
``MAX_GRAMMAR_NESTING`` levels of groups; a JSON schema at most ``MAX_SCHEMA_DEPTH``
levels and ``MAX_SCHEMA_DEFINITIONS`` definitions. The compiler's threads have a stack
sized for the deepest grammar these allow (``engine/constraint.py``).
"""

from __future__ import annotations

import re
from typing import Any

from chatport.protocol.errors import InvalidRequestError

MAX_TOOLS = 128
MAX_CONTENT_PARTS = 2048
MAX_STRING_CHARS = 10 * 1024 * 1024
MAX_GRAMMAR_CHARS = 100_000
MAX_GRAMMAR_RULES = 2_000
MAX_GRAMMAR_NESTING = 32
MAX_SCHEMA_DEPTH = 64
MAX_SCHEMA_DEFINITIONS = 1_000

# A Lark rule or terminal definition: ``name:``, ``?name:``, ``!name:``, ``NAME.2:`` at a line's start.
_RULE = re.compile(r"^[ \t]*[?!]?[A-Za-z_][A-Za-z0-9_]*(?:\.-?[0-9]+)?[ \t]*:", re.MULTILINE)
_DEFINITIONS = ("$defs", "definitions")


def check_sizes(body: dict[str, Any], *, max_messages: int, messages: str = "messages") -> None:
    """Counts and lengths of a raw request body, before any work proportional to them
    (validating 900,000 content parts took seconds of the event loop). ``messages``: the
    field holding the turns (``input`` for the Responses API, whose items may also be a
    string, and whose tool outputs are ``output`` strings or parts)."""
    for name in ("tools", "functions"):
        listed = body.get(name)
        if isinstance(listed, list) and len(listed) > MAX_TOOLS:
            raise _too_many(name, MAX_TOOLS, len(listed))
    turns = body.get(messages)
    if isinstance(turns, str):
        _check_string(turns, messages)
    if not isinstance(turns, list):
        return  # validation names what is wrong with it
    if len(turns) > max_messages:
        # Every message takes at least one token of the context.
        raise _too_many(messages, max_messages, len(turns))
    parts = 0
    for i, message in enumerate(turns):
        for key in ("content", "output"):
            content = message.get(key) if isinstance(message, dict) else None
            if isinstance(content, list):
                parts += len(content)
            _check_content(content, f"{messages}[{i}].{key}", parts, messages)


def _check_content(content: Any, param: str, parts: int, messages: str) -> None:
    if isinstance(content, str):
        _check_string(content, param)
    elif isinstance(content, list):
        if parts > MAX_CONTENT_PARTS:
            raise InvalidRequestError(
                f"Invalid '{param}': too many content parts. The {messages} may hold at most "
                f"{MAX_CONTENT_PARTS} content parts in all, but got at least {parts} instead.",
                param=param,
                code="array_above_max_length",
            )
        for j, part in enumerate(content):
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str):
                _check_string(text, f"{param}[{j}].text")


def _too_many(param: str, limit: int, actual: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid '{param}': array too long. Expected an array with maximum length {limit}, "
        f"but got an array with length {actual} instead.",
        param=param,
        code="array_above_max_length",
    )


def _check_string(text: str, param: str) -> None:
    if len(text) > MAX_STRING_CHARS:
        raise InvalidRequestError(
            f"Invalid '{param}': string too long. Expected a string with maximum length {MAX_STRING_CHARS}, "
            f"but got a string with length {len(text)} instead.",
            param=param,
            code="string_above_max_length",
        )


def check_lark(definition: str, param: str, tool: str) -> None:
    """A custom tool's Lark grammar: size, rules and bracket nesting."""
    _check_length(definition, param)
    rules = len(_RULE.findall(definition))
    if rules > MAX_GRAMMAR_RULES:
        raise _grammar_error(tool, "lark", f"it defines {rules} rules; at most {MAX_GRAMMAR_RULES} are accepted", param)
    depth = lark_nesting(definition)
    if depth > MAX_GRAMMAR_NESTING:
        raise _grammar_error(tool, "lark", f"it nests {depth} levels of brackets; at most {MAX_GRAMMAR_NESTING}", param)


def check_regex(definition: str, param: str, tool: str) -> None:
    """A custom tool's regex: size and group nesting."""
    _check_length(definition, param)
    depth = regex_nesting(definition)
    if depth > MAX_GRAMMAR_NESTING:
        raise _grammar_error(tool, "regex", f"it nests {depth} levels of groups; at most {MAX_GRAMMAR_NESTING}", param)


def check_schema(schema: Any, param: str, error: Any = None) -> None:
    """A JSON schema's depth and definitions, walked without recursion. ``error(detail)``
    makes the 400 (default: one naming ``param``)."""
    make = error or (lambda detail: InvalidRequestError(f"Invalid '{param}': {detail}", param=param, code="invalid_value"))
    definitions = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            raise make(f"the schema nests more than {MAX_SCHEMA_DEPTH} levels.")
        if isinstance(node, dict):
            for key in _DEFINITIONS:
                found = node.get(key)
                if isinstance(found, dict):
                    definitions += len(found)
            if definitions > MAX_SCHEMA_DEFINITIONS:
                raise make(f"the schema has more than {MAX_SCHEMA_DEFINITIONS} definitions ($defs) in all.")
            stack.extend((value, depth + 1) for value in node.values() if isinstance(value, (dict, list)))
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node if isinstance(value, (dict, list)))


def lark_nesting(text: str) -> int:
    """The deepest nesting of ( [ { in a Lark grammar, outside its string and regex literals."""
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or (c == "/" and _regex_starts(text, i)):
            i = _literal_end(text, i, c)
            continue
        if c == "/" and text.startswith("//", i):  # a comment, to the end of the line
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in ")]}":
            depth = max(depth - 1, 0)
        i += 1
    return deepest


def regex_nesting(pattern: str) -> int:
    """The deepest nesting of groups in a regex, outside escapes and character classes."""
    depth = deepest = 0
    in_class = False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif c == ")":
            depth = max(depth - 1, 0)
        i += 1
    return deepest


def _regex_starts(text: str, at: int) -> bool:
    """Whether a ``/`` opens a regex literal (not a ``//`` comment)."""
    return not text.startswith("//", at)


def _literal_end(text: str, start: int, quote: str) -> int:
    """Just past the literal opened at ``start`` (escapes skipped; an unclosed one runs to
    the end of its line, where Lark would refuse it)."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == quote or c == "\n":
            return i + 1
        i += 1
    return n


def _check_length(definition: str, param: str) -> None:
    if len(definition) > MAX_GRAMMAR_CHARS:
        raise InvalidRequestError(
            f"Invalid '{param}': string too long. Expected a string with maximum length {MAX_GRAMMAR_CHARS}, "
            f"but got a string with length {len(definition)} instead.",
            param=param,
            code="string_above_max_length",
        )


def _grammar_error(tool: str, syntax: str, why: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid {syntax} grammar for custom tool '{tool}': {why}.", param=param, code="invalid_grammar")
