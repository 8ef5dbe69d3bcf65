"""What each choice has produced so far: content, tool calls, logprobs and finish reasons,
as the client should see them, step by step and as the final message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatport.protocol import responses as rs
from chatport.protocol.backend import ChoiceDelta, TokenLogprob
from chatport.service.tools import ToolCallFormat, tool_call_entry
from chatport.service.tools.format import CUSTOM_BLOCK
from chatport.service.tools.parser import CallParser
from chatport.service.tools.plan import ToolPlan


@dataclass
class Visible:
    """What one backend delta means for one choice, as the client should see it."""

    index: int
    content: str = ""
    logprobs: list[TokenLogprob] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None


class Choices:
    def __init__(self, n: int, *, logprobs: bool, tools: ToolPlan | None, fmt: ToolCallFormat) -> None:
        self.n = n
        self.texts = [""] * n
        self.calls: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        self.logprobs: list[list[TokenLogprob] | None] = [[] if logprobs else None for _ in range(n)]
        self.finish: list[str | None] = [None] * n
        self.completion_tokens = 0
        self.legacy = bool(tools and tools.legacy)
        active = tools is not None and tools.active
        self._parsers = [CallParser((*fmt.blocks, CUSTOM_BLOCK)) for _ in range(n)] if active else None

    @property
    def done(self) -> bool:
        return None not in self.finish

    def add(self, delta: ChoiceDelta) -> Visible:
        i = delta.index
        seen = Visible(i, logprobs=delta.logprobs)
        if self._parsers is None:
            seen.content = delta.text
        else:
            seen.content, calls = self._parsers[i].feed(delta.text)
            if delta.finish_reason:
                rest, last = self._parsers[i].finish()
                seen.content += rest
                calls += last
            seen.calls = [tool_call_entry(c) for c in calls]
            self.calls[i].extend(seen.calls)
        self.texts[i] += seen.content
        kept = self.logprobs[i]
        if delta.logprobs and kept is not None:
            kept.extend(delta.logprobs)
        if delta.finish_reason:
            reason: str = delta.finish_reason
            if self.calls[i] and reason == "stop":
                reason = "function_call" if self.legacy else "tool_calls"
            self.finish[i] = seen.finish_reason = reason
            self.completion_tokens += delta.completion_tokens
        return seen

    def message(self, i: int) -> dict[str, Any]:
        calls = self.calls[i]
        if not calls:
            return rs.assistant_message(self.texts[i])
        content = _strip_fence(self.texts[i]).strip() or None
        message = rs.assistant_message(content)
        if self.legacy:
            message["function_call"] = dict(calls[0]["function"])
        else:
            message["tool_calls"] = calls
        return message

    def choice_objects(self) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "message": self.message(i),
                "logprobs": rs.choice_logprobs(self.logprobs[i]),
                "finish_reason": self.finish[i],
            }
            for i in range(self.n)
        ]

    def call_deltas(self, index: int, call: dict[str, Any]) -> list[dict[str, Any]]:
        """OpenAI's shape for a streamed call: a first delta with id, type, name and empty
        arguments, then the arguments."""
        position = self.calls[index].index(call)
        if call["type"] == "custom":
            custom = call["custom"]
            head = {"index": position, "id": call["id"], "type": "custom", "custom": {"name": custom["name"], "input": ""}}
            return [{"tool_calls": [head]}, {"tool_calls": [{"index": position, "custom": {"input": custom["input"]}}]}]
        fn = call["function"]
        if self.legacy:
            return [{"function_call": {"name": fn["name"], "arguments": ""}}, {"function_call": {"arguments": fn["arguments"]}}]
        head = {"index": position, "id": call["id"], "type": "function", "function": {"name": fn["name"], "arguments": ""}}
        return [{"tool_calls": [head]}, {"tool_calls": [{"index": position, "function": {"arguments": fn["arguments"]}}]}]


def _strip_fence(text: str) -> str:
    """Content written ahead of a call in a ```json fence is the fence's, not an answer."""
    stripped = text.rstrip()
    for opener in ("```json", "```"):
        if stripped.endswith(opener):
            return stripped[: -len(opener)]
    return text
