"""What a tool-call format is: one model family's call syntax, from the prompt to the parse.

A format says where calls appear in the output (``blocks``, read by ``CallParser``),
the Lark rules a function call must follow (``function_rules``; the ``required`` mode
decodes under them from the first token), and the triggers that switch them on in
``auto`` mode. Custom tools use chatport's own ``<custom_call>`` syntax with every format.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from chatport.service.json_grammar import WHITESPACE, bounded_numbers, json_options
from chatport.service.tools.plan import CustomSpec, FunctionSpec

# Calls per answer when parallel calls are allowed. OpenAI sets no number; the grammar
# lets the model end after any call, and this bound (the most tools a request may list)
# only keeps the grammar finite.
MAX_PARALLEL_CALLS = 128

# Grammar literal for a marker: the model's own token when one token spells it, else text.
Literal = Callable[[str], str]


@dataclass(frozen=True)
class CallBlock:
    """Where calls show in the output: from text matching the regex ``opener`` to
    ``closer`` (None: to the end of the output). JSON blocks hold call objects
    ``{"name": ..., "arguments": ...}`` (or ``"parameters"``); ``keep_opener``: the
    opener is the start of the first object. Custom blocks hold
    ``<custom_call name="NAME">INPUT</custom_call>``."""

    opener: str
    closer: str | None
    keep_opener: bool = False
    custom: bool = False


@dataclass(frozen=True)
class Trigger:
    """In auto mode, output matching the regex ``pattern`` continues under rule ``rule``:
    the grammar takes the output from where the pattern's group ``call`` starts (from
    the match's end without one). ``repeat``: further calls may follow."""

    pattern: str
    rule: str
    repeat: bool = True


def names_regex(names: list[str]) -> str:
    """A regex matching exactly one of ``names`` (tool names: letters, digits, ``_``, ``-``)."""
    return "(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + ")"


def json_head(names: list[str]) -> str:
    """A regex for the start of a JSON call object up to a complete listed name: a call
    is taken as one only once the whole name of a listed tool is written (a model that
    starts a call to a tool that does not exist is not steered onto one that does).
    Its whitespace is what the call's grammar accepts (``json_grammar.WHITESPACE``)."""
    ws = WHITESPACE
    return rf'\{{{ws}"name"{ws}:{ws}"{names_regex(names)}"'


class ToolCallFormat(ABC):
    name: ClassVar[str]
    native: ClassVar[bool] = True  # the model's template renders tools and calls itself
    repeatable: ClassVar[bool] = True  # each call is a block of its own; parallel calls repeat it
    markers: ClassVar[tuple[str, ...]] = ()  # call markers that may be control tokens (shown in output)
    # The rule of calls written without the format's marker (bare JSON objects), when the
    # format reads them; beside a structured answer they are one more alternative.
    bare_rule: ClassVar[str | None] = None

    @abstractmethod
    def blocks(self, names: list[str]) -> tuple[CallBlock, ...]:
        """Where calls to the functions ``names`` show in the output."""

    @abstractmethod
    def function_rules(self, functions: list[FunctionSpec], parallel: bool, literal: Literal) -> list[str]:
        """Lark rules defining ``fcall`` (one call block, from its opener) and the rules
        its triggers name."""

    @abstractmethod
    def triggers(self, names: list[str]) -> tuple[Trigger, ...]:
        """What switches the function rules on in auto mode, for calls to ``names``."""

    def note(self, functions: list[FunctionSpec]) -> str | None:
        """A system note describing the functions, for templates that cannot show them."""
        return None

    def prepare_history(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Adapt earlier calls in the messages to what the template accepts."""
        return messages


def call_schema(fn: FunctionSpec, arguments_key: str = "arguments", *, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON schema of one call object: its name, its arguments under ``arguments_key`` (the
    function's schema, its references rewritten to resolve where it now sits)."""
    arguments = embedded_schema(bounded_numbers(fn.parameters), f"/properties/{arguments_key}")
    arguments.setdefault("type", "object")
    return {
        "type": "object",
        "properties": {"name": {"const": fn.name}, arguments_key: arguments, **(extra or {})},
        "required": ["name", arguments_key],
        "additionalProperties": False,
        "x-guidance": json_options(lenient=not fn.strict),
    }


def arguments_schema(fn: FunctionSpec) -> dict[str, Any]:
    """JSON schema of a call's arguments on their own (its references resolve from its root)."""
    schema: dict[str, Any] = bounded_numbers(fn.parameters)
    schema.setdefault("type", "object")
    schema["x-guidance"] = json_options(lenient=not fn.strict)
    return schema


# Keywords whose values are data, not schemas: a "$ref" key inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def embedded_schema(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    """A client's schema placed at JSON pointer ``pointer`` inside a larger schema: each of
    its local references (``#``, ``#/$defs/Address``, ``#/definitions/Node``, any pointer
    into it) is rewritten to resolve against its own root where it now sits, so nested
    models (Pydantic's ``$defs``) and recursive ones (a tree referring to ``#``) keep working.
    (Depth is bounded by ``service.bounds.check_schema`` before this runs.)"""

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith("#"):
                    out[key] = "#" + pointer + value[1:]
                elif key in _DATA_KEYWORDS:
                    out[key] = value
                else:
                    out[key] = rewrite(value)
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    rewritten: dict[str, Any] = rewrite(schema)
    return rewritten


# --- custom tools: <custom_call name="NAME">INPUT</custom_call>, with every format -----

CUSTOM_OPEN = "<custom_call"
CUSTOM_CLOSE = "</custom_call>"


def custom_trigger(names: list[str]) -> Trigger:
    return Trigger(rf'{re.escape(CUSTOM_OPEN)}(?P<call> name="{names_regex(names)}">)', "ccall_rest")


CUSTOM_NOTE = (
    "You can also call custom tools, whose input is plain text (not JSON). To call one, reply with exactly:\n"
    f'{CUSTOM_OPEN} name="<tool name>">input{CUSTOM_CLOSE}\n'
    "Custom tools:\n"
)


CUSTOM_BLOCK = CallBlock(re.escape(CUSTOM_OPEN), CUSTOM_CLOSE, custom=True)


def custom_rules(customs: list[CustomSpec]) -> list[str]:
    """Lark rules defining ``ccall`` (one custom call) and ``ccall_rest`` (after its opener);
    each tool's input is the sub-grammar ``input_i``."""
    return [
        f"ccall: {json.dumps(CUSTOM_OPEN)} ccall_rest",
        "ccall_rest: " + " | ".join(f"custom_{i}" for i in range(len(customs))),
        *(
            f'custom_{i}: {json.dumps(f" name={json.dumps(c.name)}>")} @input_{i} {json.dumps(CUSTOM_CLOSE)} "\\n"?'
            for i, c in enumerate(customs)
        ),
    ]


def custom_note(customs: list[CustomSpec]) -> str:
    lines = []
    for c in customs:
        shape = "free text" if c.syntax == "text" else f"text matching this {c.syntax} grammar: {c.definition}"
        lines.append(f"- {c.name}: {c.description or ''} (input: {shape})")
    return CUSTOM_NOTE + "\n".join(lines)
