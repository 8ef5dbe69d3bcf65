"""Mistral calls (Mistral 7B v0.3, Nemo, Small): one ``[TOOL_CALLS]`` block holding a JSON
array of calls::

    [TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}}]

``[TOOL_CALLS]`` is a control token, shown in the output so that calls can be found.
Mistral's templates require call ids of nine letters and digits: earlier calls' ids are
mapped to such ids (the same id always to the same one) before rendering.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from typing import Any

from chatport.service.json_grammar import WHITESPACE
from chatport.service.tools import format as fmt
from chatport.service.tools.format import CallBlock, ToolCallFormat, Trigger
from chatport.service.tools.plan import FunctionSpec

OPEN = "[TOOL_CALLS]"
_ID_ALPHABET = string.ascii_letters + string.digits
_ID = {"type": "string", "pattern": "^[a-zA-Z0-9]{9}$"}


def mistral_id(call_id: str) -> str:
    """A nine-character id standing for ``call_id``."""
    value = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    out = ""
    for _ in range(9):
        value, digit = divmod(value, len(_ID_ALPHABET))
        out += _ID_ALPHABET[digit]
    return out


class MistralFormat(ToolCallFormat):
    name = "mistral"
    repeatable = False
    markers = (OPEN,)

    def blocks(self, names: list[str]) -> tuple[CallBlock, ...]:
        return (CallBlock(re.escape(OPEN), None),)

    def function_rules(self, functions: list[FunctionSpec], parallel: bool, literal: fmt.Literal) -> list[str]:
        more = f' (WS "," WS fbody){{0,{fmt.MAX_PARALLEL_CALLS - 1}}}' if parallel else ""
        return [
            f"fcall: {literal(OPEN)} fcall_rest",
            f'fcall_rest: "[" WS fbody{more} WS "]"',
            "fbody: " + " | ".join(f"fn_{i}" for i in range(len(functions))),
            *(f"fn_{i}: %json {json.dumps(fmt.call_schema(f, extra={'id': _ID}))}" for i, f in enumerate(functions)),
            f"WS: /{WHITESPACE}/",
        ]

    def triggers(self, names: list[str]) -> tuple[Trigger, ...]:
        return (Trigger(f"{re.escape(OPEN)}(?P<call>\\[{WHITESPACE}{fmt.json_head(names)})", "fcall_rest", repeat=False),)

    def prepare_history(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for message in messages:
            adapted = dict(message)
            if "tool_calls" in adapted:
                adapted["tool_calls"] = [{**c, "id": mistral_id(c["id"])} for c in adapted["tool_calls"]]
            if "tool_call_id" in adapted:
                adapted["tool_call_id"] = mistral_id(adapted["tool_call_id"])
            out.append(adapted)
        return out
