"""Llama 3.1/3.2/3.3 JSON calls, as their templates ask for them: one bare object per
answer, arguments under ``parameters``::

    {"name": "get_weather", "parameters": {"location": "Paris"}}

The templates render one call per assistant message, so answers hold one call.
"""

from __future__ import annotations

import json

from chatport.service.tools.format import CallBlock, Literal, ToolCallFormat, Trigger, call_schema
from chatport.service.tools.plan import FunctionSpec

OPEN = '{"name"'


class Llama3JsonFormat(ToolCallFormat):
    name = "llama3-json"
    repeatable = False

    @property
    def blocks(self) -> tuple[CallBlock, ...]:
        return (CallBlock(OPEN, None, keep_opener=True),)

    def function_rules(self, functions: list[FunctionSpec], parallel: bool, literal: Literal) -> list[str]:
        schemas = [call_schema(f, "parameters") for f in functions]
        rest = " | ".join(
            f'{json.dumps(json.dumps(f.name))} ", \\"parameters\\": " params_{i} "}}"' for i, f in enumerate(functions)
        )
        rules = [
            "fcall: " + " | ".join(f"fn_{i}" for i in range(len(functions))),
            *(f"fn_{i}: %json {json.dumps(s)}" for i, s in enumerate(schemas)),
            f'object_rest: ": " ({rest})',
        ]
        # After the opener the arguments are a schema of their own: references resolve from its root.
        rules += [f"params_{i}: %json {json.dumps({'type': 'object', **f.parameters})}" for i, f in enumerate(functions)]
        return rules

    def triggers(self) -> tuple[Trigger, ...]:
        return (Trigger(OPEN, "object_rest", repeat=False),)
