"""Hermes-style calls, as Qwen 2.5/3 and Hermes templates write them, and chatport's
generic format (the same syntax, described in a system note) for templates without tools::

    <tool_call>
    {"name": "get_weather", "arguments": {"location": "Paris"}}
    </tool_call>

Small models often skip the tags in auto mode and answer with the bare call object,
sometimes in a ```json fence: that is recognized (and constrained) too.
"""

from __future__ import annotations

import json
from typing import Any

from chatport.service.tools.format import (
    CUSTOM_CLOSE,
    CUSTOM_OPEN,
    CallBlock,
    Literal,
    ToolCallFormat,
    Trigger,
    call_schema,
)
from chatport.service.tools.plan import FunctionSpec

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
BARE_OPENS = ('{"name"', '{\n  "name"', '{\n    "name"')
FENCES = ("```json\n", "```\n")  # a fence right before a bare call is the call's


class HermesFormat(ToolCallFormat):
    name = "hermes"

    @property
    def blocks(self) -> tuple[CallBlock, ...]:
        bare = (CallBlock(fence + o, None, keep_opener=True) for fence in ("", *FENCES) for o in BARE_OPENS)
        return (CallBlock(CALL_OPEN, CALL_CLOSE), *bare)

    def function_rules(self, functions: list[FunctionSpec], parallel: bool, literal: Literal) -> list[str]:
        alternatives = " | ".join(
            f'{json.dumps(json.dumps(f.name))} WS "," WS "\\"arguments\\"" WS ":" WS args_{i}' for i, f in enumerate(functions)
        )
        rules = [
            f"fcall: {literal(CALL_OPEN)} fcall_rest",
            f'fcall_rest: "\\n" fbody "\\n" {literal(CALL_CLOSE)} "\\n"?',
            "fbody: " + " | ".join(f"fn_{i}" for i in range(len(functions))),
            *(f"fn_{i}: %json {json.dumps(call_schema(f))}" for i, f in enumerate(functions)),
            # The rest of a bare object once '{"name"' is written.
            'bare_rest: WS ":" WS bare_call WS "}" FENCE_END?',
            f"bare_call: {alternatives}",
            "WS: /[ \\n]{0,8}/",
            "FENCE_END: /\\n{0,2}```/",
        ]
        for i, f in enumerate(functions):
            schema = dict(f.parameters)
            schema.setdefault("type", "object")
            schema["x-guidance"] = {"whitespace_pattern": "[ \\n]{0,16}", "lenient": not f.strict}
            rules.append(f"args_{i}: %json {json.dumps(schema)}")
        return rules

    def triggers(self) -> tuple[Trigger, ...]:
        return (Trigger(CALL_OPEN, "fcall_rest"), *(Trigger(o, "bare_rest", repeat=False) for o in BARE_OPENS))


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
