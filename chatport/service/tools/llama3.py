"""Llama 3.1/3.2/3.3 JSON calls, as their templates ask for them: one bare object per
answer, arguments under ``parameters``::

    {"name": "get_weather", "parameters": {"location": "Paris"}}

The templates render one call per assistant message, so answers hold one call.
"""

from __future__ import annotations

import json

from chatport.service.tools.format import CallBlock, Literal, ToolCallFormat, Trigger, call_schema, json_head
from chatport.service.tools.plan import FunctionSpec


class Llama3JsonFormat(ToolCallFormat):
    name = "llama3-json"
    repeatable = False

    def blocks(self, names: list[str]) -> tuple[CallBlock, ...]:
        return (CallBlock(json_head(names), None, keep_opener=True),)

    def function_rules(self, functions: list[FunctionSpec], parallel: bool, literal: Literal) -> list[str]:
        return [
            "fcall: " + " | ".join(f"fn_{i}" for i in range(len(functions))),
            *(f"fn_{i}: %json {json.dumps(call_schema(f, 'parameters'))}" for i, f in enumerate(functions)),
        ]

    def triggers(self, names: list[str]) -> tuple[Trigger, ...]:
        return (Trigger(f"(?P<call>{json_head(names)})", "fcall", repeat=False),)
