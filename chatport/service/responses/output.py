"""Response objects and their output items, built from what the chat path produced.

The same item builders serve the whole response and the stream's ``output_item.done``
events, so a streamed response ends with exactly the items a whole one has.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chatport.protocol import responses as rs
from chatport.protocol.response_requests import CreateResponseRequest

# Why a chat answer stopped, as a response's status and incomplete_details.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}

PREFIXES = {"reasoning": "rs_", "message": "msg_", "function_call": "fc_", "custom_tool_call": "ctc_", "web_search_call": "ws_"}


class ItemIds:
    """Output item ids in order of appearance: those a stream already gave out, then new ones."""

    def __init__(self, given: list[str] | None = None) -> None:
        self._given: Iterator[str] = iter(given or [])

    def next(self, kind: str) -> str:
        return next(self._given, None) or rs.random_id(PREFIXES[kind], 48)


def reasoning_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "reasoning_text", "text": text}]
    return {"id": item_id, "type": "reasoning", "summary": [], "content": content, "encrypted_content": None, "status": status}


def text_part(text: str, annotations: list[dict[str, Any]], logprobs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": logprobs}


def message_item(item_id: str, parts: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "content": parts, "role": "assistant"}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed", namespace: str | None = None
) -> dict[str, Any]:
    item = {"id": item_id, "type": "function_call", "status": status, "arguments": arguments, "call_id": call_id, "name": name}
    return item | ({"namespace": namespace} if namespace is not None else {})


def custom_call_item(
    item_id: str, call_id: str, name: str, text: str, status: str = "completed", namespace: str | None = None
) -> dict[str, Any]:
    item = {"id": item_id, "type": "custom_tool_call", "status": status, "call_id": call_id, "name": name, "input": text}
    return item | ({"namespace": namespace} if namespace is not None else {})


@dataclass(frozen=True)
class Search:
    """The web search that ran before the answer (a ``web_search`` tool), as its output item shows it."""

    queries: tuple[str, ...]
    urls: tuple[str, ...]
    with_sources: bool  # include: web_search_call.action.sources

    def item(self, item_id: str, status: str = "completed") -> dict[str, Any]:
        action: dict[str, Any] = {
            "type": "search",
            "query": self.queries[0] if self.queries else "",
            "queries": list(self.queries),
        }
        if self.with_sources:
            action["sources"] = [{"type": "url", "url": url} for url in self.urls]
        return {"id": item_id, "type": "web_search_call", "status": status, "action": action}


def annotation(chat: dict[str, Any]) -> dict[str, Any]:
    """A chat ``url_citation`` annotation as a Responses one (its fields at the top)."""
    return {"type": "url_citation", **chat.get("url_citation", {})}


def item_status(finish_reason: str | None) -> str:
    return "incomplete" if finish_reason in _INCOMPLETE else "completed"


def output_items(
    choice: dict[str, Any], ids: ItemIds, search: Search | None = None, namespaces: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """A chat choice as output items: the search before it, its reasoning, its message,
    then its calls (each with its tool's namespace, if it is in one)."""
    namespaces = namespaces or {}
    message = choice["message"]
    items: list[dict[str, Any]] = [search.item(ids.next("web_search_call"))] if search is not None else []
    if message.get("reasoning_content"):
        items.append(reasoning_item(ids.next("reasoning"), message["reasoning_content"]))
    parts: list[dict[str, Any]] = []
    if message.get("content") is not None:
        logprobs = (choice.get("logprobs") or {}).get("content") or []
        parts.append(text_part(message["content"], [annotation(a) for a in message.get("annotations") or []], logprobs))
    if message.get("refusal"):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        items.append(message_item(ids.next("message"), parts))
    for call in message.get("tool_calls") or []:
        if call["type"] == "custom":
            custom = call["custom"]
            item_id, name = ids.next("custom_tool_call"), custom["name"]
            items.append(custom_call_item(item_id, call["id"], name, custom["input"], namespace=namespaces.get(name)))
        else:
            function = call["function"]
            item_id, name = ids.next("function_call"), function["name"]
            items.append(function_call_item(item_id, call["id"], name, function["arguments"], namespace=namespaces.get(name)))
    # A cut answer leaves its last item incomplete (a reasoning item is whole once it ends).
    if items and items[-1]["type"] not in ("reasoning", "web_search_call"):
        items[-1]["status"] = item_status(choice.get("finish_reason"))
    return items


def response_usage(chat: dict[str, Any]) -> dict[str, Any]:
    cached = chat["prompt_tokens_details"]["cached_tokens"]
    return {
        "input_tokens": chat["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": chat["prompt_tokens"] - cached},
        "output_tokens": chat["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": chat["completion_tokens_details"]["reasoning_tokens"]},
        "total_tokens": chat["total_tokens"],
    }


def assistant_turn(choice: dict[str, Any]) -> dict[str, Any]:
    """A chat choice as the assistant message a later turn sends back."""
    message = choice["message"]
    turn: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        turn["tool_calls"] = message["tool_calls"]
    if message.get("reasoning_content"):
        turn["reasoning_content"] = message["reasoning_content"]
    return turn


class ResponseShape:
    """The fields of one response that echo its request, and the object at each stage."""

    def __init__(
        self,
        request: CreateResponseRequest,
        response_id: str,
        created_at: int,
        *,
        store: bool,
        namespaces: dict[str, str] | None = None,
        sampling: tuple[float | None, float | None] = (None, None),
    ) -> None:
        self.request = request
        self.temperature, self.top_p = sampling  # as sampled: the request's, or the server's default
        self.id = response_id
        self.created_at = created_at
        self.store = store
        self.namespaces = namespaces or {}  # tool name -> its namespace

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        *,
        usage: dict[str, Any] | None = None,
        finish_reason: str | None = None,
        service_tier: str = "auto",
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        request = self.request
        reason = _INCOMPLETE.get(finish_reason or "")
        if status == "completed" and reason is not None:
            status = "incomplete"
        text = request.text.model_dump(by_alias=True, exclude_none=True) if request.text is not None else {}
        reasoning = request.reasoning
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": bool(request.background),
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": {"reason": reason} if status == "incomplete" else None,
            "instructions": request.instructions,
            "max_output_tokens": request.max_output_tokens,
            "max_tool_calls": request.max_tool_calls,
            "model": request.model,
            "output": output,
            "parallel_tool_calls": request.parallel_tool_calls if request.parallel_tool_calls is not None else True,
            "previous_response_id": request.previous_response_id,
            "prompt_cache_key": request.prompt_cache_key,
            "reasoning": {
                "effort": reasoning.effort if reasoning else None,
                "summary": (reasoning.summary or reasoning.generate_summary) if reasoning else None,
            },
            "safety_identifier": request.safety_identifier,
            "service_tier": service_tier,
            "store": self.store,
            "temperature": _first(request.temperature, self.temperature, 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium", **text},
            "tool_choice": _dumped(request.tool_choice) if request.tool_choice is not None else "auto",
            "tools": [_tool(t) for t in request.tools or []],
            "top_logprobs": request.top_logprobs or 0,
            "top_p": _first(request.top_p, self.top_p, 1.0),
            "truncation": request.truncation or "disabled",
            "metadata": request.metadata or {},
            "conversation": {"id": _conversation(request.conversation)} if request.conversation is not None else None,
            # The spec allows no null for these: usage comes once counted, user (deprecated) when given.
            **({"usage": usage} if usage is not None else {}),
            **({"user": request.user} if request.user is not None else {}),
        }

    def finished(self, completion: dict[str, Any], ids: ItemIds, search: Search | None = None) -> dict[str, Any]:
        """The response a finished chat completion makes."""
        choice = completion["choices"][0]
        return self.response(
            "completed",
            output_items(choice, ids, search, self.namespaces),
            usage=response_usage(completion["usage"]),
            finish_reason=choice.get("finish_reason"),
            service_tier=completion.get("service_tier") or "default",
        )


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def _conversation(conversation: str | dict[str, Any]) -> Any:
    return conversation if isinstance(conversation, str) else conversation.get("id")


def _dumped(value: Any) -> Any:
    return value if isinstance(value, str) else value.model_dump(by_alias=True, exclude_none=True)


def _tool(tool: Any) -> dict[str, Any]:
    out: dict[str, Any] = tool.model_dump(by_alias=True, exclude_none=True)
    if out["type"] == "function":
        out.setdefault("description", None)
        out.setdefault("parameters", None)
        out.setdefault("strict", None)
    return out
