"""A chat completion's chunks as the Responses API's semantic events.

``ResponseEvents`` reads the chunks of one chat stream (one choice) and writes what
OpenAI's stream sends for the same answer: each output item opened
(``response.output_item.added``, its content part), grown (``response.output_text.delta``,
``response.reasoning_text.delta``, ``response.function_call_arguments.delta``,
``response.custom_tool_call_input.delta``), and closed (the ``.done`` events with the
whole text, then ``response.output_item.done``), in the order the model wrote them. Every
event gets the next ``sequence_number``.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any

from chatport.service.responses import output as out

Event = dict[str, Any]
_OBFUSCATION_CHARS = string.ascii_letters + string.digits


@dataclass
class _Open:
    """The output item being written."""

    kind: str  # reasoning, message, function_call, custom_tool_call
    id: str
    index: int
    text: str = ""
    call_id: str = ""
    name: str = ""
    annotations: list[dict[str, Any]] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)


class ResponseEvents:
    def __init__(self, ids: out.ItemIds, *, obfuscate: bool = True, namespaces: dict[str, str] | None = None) -> None:
        self._ids = ids
        self._namespaces = namespaces or {}
        self._obfuscate = obfuscate
        self._sequence = 0
        self._open: _Open | None = None
        self.given: list[str] = []  # the ids of the items written, in order
        self._count = 0

    def event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def chunk(self, chunk: dict[str, Any]) -> list[Event]:
        """The events one chat chunk makes (a usage chunk makes none)."""
        events: list[Event] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                events += self._grow("reasoning", delta["reasoning_content"])
            logprobs = (choice.get("logprobs") or {}).get("content") or []
            if delta.get("content") or logprobs:
                events += self._grow("message", delta.get("content") or "", logprobs)
            for call in delta.get("tool_calls") or []:
                events += self._call(call)
            if delta.get("annotations"):
                events += self._annotations(delta["annotations"])
            if choice.get("finish_reason"):
                events += self.close(out.item_status(choice["finish_reason"]))
        return events

    def searched(self, search: out.Search) -> list[Event]:
        """The search that ran before the answer: its item, opened and done at once."""
        item_id = self._ids.next("web_search_call")
        self.given.append(item_id)
        index, self._count = self._count, self._count + 1
        where = {"output_index": index, "item_id": item_id}
        return [
            self.event("response.output_item.added", output_index=index, item=search.item(item_id, "in_progress")),
            self.event("response.web_search_call.in_progress", **where),
            self.event("response.web_search_call.searching", **where),
            self.event("response.web_search_call.completed", **where),
            self.event("response.output_item.done", output_index=index, item=search.item(item_id)),
        ]

    def error(self, body: dict[str, Any]) -> Event:
        error = body.get("error") or {}
        return self.event("error", code=error.get("code"), message=error.get("message", ""), param=error.get("param"))

    def _grow(self, kind: str, text: str, logprobs: list[dict[str, Any]] | None = None) -> list[Event]:
        events = [] if self._open is not None and self._open.kind == kind else self._start(kind)
        item = self._open
        assert item is not None
        item.text += text
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        if kind == "reasoning":
            events.append(self.event("response.reasoning_text.delta", **where, delta=text))
        else:
            item.logprobs += logprobs or []
            events.append(self.event("response.output_text.delta", **where, delta=text, logprobs=logprobs or [], **self._noise()))
        return events

    def _call(self, call: dict[str, Any]) -> list[Event]:
        custom = call.get("type") == "custom" or "custom" in call
        data = call.get("custom" if custom else "function") or {}
        events: list[Event] = []
        if call.get("id"):
            events += self._start(
                "custom_tool_call" if custom else "function_call", call_id=call["id"], name=data.get("name", "")
            )
        item = self._open
        piece = data.get("input" if custom else "arguments") or ""
        if item is None or not piece:
            return events
        item.text += piece
        kind = "response.custom_tool_call_input.delta" if custom else "response.function_call_arguments.delta"
        events.append(self.event(kind, item_id=item.id, output_index=item.index, delta=piece, **self._noise()))
        return events

    def _annotations(self, annotations: list[dict[str, Any]]) -> list[Event]:
        item = self._open
        if item is None or item.kind != "message":
            return []
        events = []
        for chat in annotations:
            added = out.annotation(chat)
            events.append(
                self.event(
                    "response.output_text.annotation.added",
                    item_id=item.id,
                    output_index=item.index,
                    content_index=0,
                    annotation_index=len(item.annotations),
                    annotation=added,
                )
            )
            item.annotations.append(added)
        return events

    def _start(self, kind: str, *, call_id: str = "", name: str = "") -> list[Event]:
        events = self.close()
        item = self._open = _Open(kind, self._ids.next(kind), self._count, call_id=call_id, name=name)
        self._count += 1
        self.given.append(item.id)
        events.append(self.event("response.output_item.added", output_index=item.index, item=self._item(item, "in_progress")))
        if kind in ("reasoning", "message"):
            part = self._part(item) if kind == "message" else {"type": "reasoning_text", "text": ""}
            events.append(
                self.event("response.content_part.added", item_id=item.id, output_index=item.index, content_index=0, part=part)
            )
        return events

    def close(self, status: str = "completed") -> list[Event]:
        """The open item's closing events (none when no item is open)."""
        item, self._open = self._open, None
        if item is None:
            return []
        where = {"item_id": item.id, "output_index": item.index}
        events = []
        if item.kind == "reasoning":
            part = {"type": "reasoning_text", "text": item.text}
            events.append(self.event("response.reasoning_text.done", **where, content_index=0, text=item.text))
            events.append(self.event("response.content_part.done", **where, content_index=0, part=part))
        elif item.kind == "message":
            events.append(
                self.event("response.output_text.done", **where, content_index=0, text=item.text, logprobs=item.logprobs)
            )
            events.append(self.event("response.content_part.done", **where, content_index=0, part=self._part(item)))
        elif item.kind == "function_call":
            events.append(self.event("response.function_call_arguments.done", **where, name=item.name, arguments=item.text))
        else:
            events.append(self.event("response.custom_tool_call_input.done", **where, input=item.text))
        # A reasoning item is whole once it ends, even when the answer after it is cut.
        done = "completed" if item.kind == "reasoning" else status
        events.append(self.event("response.output_item.done", output_index=item.index, item=self._item(item, done)))
        return events

    @staticmethod
    def _part(item: _Open) -> dict[str, Any]:
        return out.text_part(item.text, list(item.annotations), list(item.logprobs))

    def _item(self, item: _Open, status: str) -> dict[str, Any]:
        if item.kind == "reasoning":
            return (
                out.reasoning_item(item.id, item.text, status)
                if status != "in_progress"
                else {
                    "id": item.id,
                    "type": "reasoning",
                    "summary": [],
                    "content": [],
                    "encrypted_content": None,
                    "status": status,
                }
            )
        if item.kind == "message":
            return out.message_item(item.id, [self._part(item)] if status != "in_progress" else [], status)
        namespace = self._namespaces.get(item.name)
        if item.kind == "function_call":
            return out.function_call_item(item.id, item.call_id, item.name, item.text, status, namespace)
        return out.custom_call_item(item.id, item.call_id, item.name, item.text, status, namespace)

    def _noise(self) -> dict[str, str]:
        """Stream obfuscation, as OpenAI pads its delta events (off with include_obfuscation false)."""
        if not self._obfuscate:
            return {}
        return {"obfuscation": "".join(random.choices(_OBFUSCATION_CHARS, k=random.randint(1, 16)))}
