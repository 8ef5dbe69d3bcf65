"""Input items as they are kept and listed: each with an id (the client's, or one given
here as OpenAI gives them, by type) and a message's text as content parts."""

from __future__ import annotations

from typing import Any

from chatport.protocol import responses as rs
from chatport.protocol.response_requests import InputItem, MessageItem

_PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "custom_tool_call": "ctc_",
    "custom_tool_call_output": "ctco_",
    "reasoning": "rs_",
}


def text_item(text: str) -> dict[str, Any]:
    """A string input, as the one user message it stands for."""
    part = {"type": "input_text", "text": text}
    return {"id": rs.random_id("msg_", 48), "type": "message", "role": "user", "content": [part], "status": "completed"}


def with_ids(items: list[InputItem]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        dumped = item.model_dump(by_alias=True, exclude_none=True)
        if isinstance(item, MessageItem):
            if isinstance(item.content, str):
                kind = "output_text" if item.role == "assistant" else "input_text"
                dumped["content"] = [{"type": kind, "text": item.content}]
            dumped["status"] = "completed"
        dumped["id"] = item.id or rs.random_id(_PREFIXES.get(dumped["type"], "item_"), 48)
        out.append(dumped)
    return out
