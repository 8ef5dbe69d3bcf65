"""Hermes-style calls, as Qwen 2.5/3 and Hermes templates write them, and chatport's
generic format (the same syntax, described in a system note) for templates without tools::

    <tool_call>
    {"name": "get_weather", "arguments": {"location": "Paris"}}
    </tool_call>

Small models often skip the tags in auto mode and answer with the bare call object (or
several, or an array of them), sometimes in a ```json fence: that is recognized (and
constrained) too, once a listed tool's name is written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chatport.service.json_grammar import WHITESPACE
from chatport.service.tools.format import (
    CUSTOM_CLOSE,
    CUSTOM_OPEN,
    MAX_PARALLEL_CALLS,
    CallBlock,
    Literal,
    ToolCallFormat,
    Trigger,
    call_schema,
    json_head,
)
from chatport.service.tools.plan import FunctionSpec

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
FENCE = r"(?:```(?:json)?\n)?"  # a fence right before a bare call is the call's
CALL_SPACE = "[ \\n]{0,8}"  # between the tags and the call object


class HermesFormat(ToolCallFormat):
    name = "hermes"

    bare_rule = "bare_calls"

    def blocks(self, names: list[str]) -> tuple[CallBlock, ...]:
        tagged = CallBlock(re.escape(CALL_OPEN), CALL_CLOSE)
        # A bare object, or an array of them, once the first one's name is a listed tool's.
        bare = CallBlock(f"{FENCE}(?:\\[{WHITESPACE})?{json_head(names)}", None, keep_opener=True)
        return (tagged, bare)

    def function_rules(self, functions: list[FunctionSpec], parallel: bool, literal: Literal) -> list[str]:
        repeat = f"{{0,{MAX_PARALLEL_CALLS - 1}}}"
        more = f" (BARE_SEP fbody){repeat}" if parallel else ""
        more_in_array = f' (WS "," WS fbody){repeat}' if parallel else ""
        return [
            f"fcall: {literal(CALL_OPEN)} fcall_rest",
            f'fcall_rest: CALL_SPACE fbody CALL_SPACE {literal(CALL_CLOSE)} "\\n"?',
            "fbody: " + " | ".join(f"fn_{i}" for i in range(len(functions))),
            *(f"fn_{i}: %json {json.dumps(call_schema(f))}" for i, f in enumerate(functions)),
            # Bare calls (the model skipped the tags): one object, several each in its own
            # fence, or an array of them. Not one after another on plain new lines: after
            # a bare call and a newline Qwen writes the tool's result it imagines (`{"temp`),
            # and a grammar that read `{"` as the next call's start forced call after call.
            f'bare_calls: (fbody{more} | "[" WS fbody{more_in_array} WS "]") BARE_END?',
            f"CALL_SPACE: /{CALL_SPACE}/",
            f"WS: /{WHITESPACE}/",
            "BARE_SEP: /\\n{0,2}```\\n{1,2}```(json)?\\n/",
            "BARE_END: /[ \\n]{1,4}|\\n{0,2}```\\n{0,2}/",
        ]

    def triggers(self, names: list[str]) -> tuple[Trigger, ...]:
        head = json_head(names)
        return (
            Trigger(f"{re.escape(CALL_OPEN)}(?P<call>{CALL_SPACE}{head})", "fcall_rest"),
            Trigger(f"(?P<call>(?:\\[{WHITESPACE})?{head})", "bare_calls", repeat=False),
        )


GENERIC_NOTE = (
    "You can call functions to help answer. To call one, reply with exactly:\n"
    f'{CALL_OPEN}\n{{"name": "<function name>", "arguments": {{<arguments as JSON>}}}}\n{CALL_CLOSE}\n'
    "Available functions:\n"
)


class GenericFormat(HermesFormat):
    """For templates that know no tools: the functions are listed in a system note."""

    name = "generic"
    native = False

    def note(self, functions: list[FunctionSpec]) -> str | None:
        listed = "\n".join(
            json.dumps({"name": f.name, "description": f.description or "", "parameters": f.parameters}, ensure_ascii=False)
            for f in functions
        )
        return GENERIC_NOTE + listed

    def prepare_history(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The template knows no calls: earlier ones are written into the assistant's
        content in the syntax the note asks for, so the model sees what it called."""
        out = []
        for message in messages:
            calls = message.get("tool_calls")
            if message["role"] != "assistant" or not calls:
                out.append(message)
                continue
            written = "\n".join(_written(call) for call in calls)
            content = message.get("content") or ""
            rest = {k: v for k, v in message.items() if k != "tool_calls"}
            out.append({**rest, "content": f"{content}\n{written}" if content else written})
        return out


def _written(call: dict[str, Any]) -> str:
    if call["type"] == "custom":
        return f'{CUSTOM_OPEN} name="{call["custom"]["name"]}">{call["custom"]["input"]}{CUSTOM_CLOSE}'
    fn = call["function"]
    body = json.dumps({"name": fn["name"], "arguments": fn["arguments"]}, ensure_ascii=False)
    return f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}"
