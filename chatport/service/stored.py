"""Stored completions as the API presents them: list/retrieve/update/delete/messages
with OpenAI's parameters, defaults, limits and errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from chatport.protocol.errors import APIError, InvalidRequestError, not_found_error, overloaded_error, unsupported_parameter
from chatport.service.checks import check_metadata, check_storable
from chatport.store.completions import CompletionStore, Order, Page, UnknownCursor
from chatport.store.database import StoreUnavailable

MAX_LIMIT = 100
_ORDERS: dict[str, Order] = {"asc": "asc", "desc": "desc"}
DEFAULT_LIMIT = 20


def unavailable() -> APIError:
    return overloaded_error(
        "The stored completions database is unavailable right now; requests without store=true are unaffected. "
        "Please retry later.",
        code="store_unavailable",
        retry_after=5,
    )


@contextmanager
def reachable() -> Iterator[None]:
    """The store's outages, as the API reports them."""
    try:
        yield
    except StoreUnavailable:
        raise unavailable() from None


def required(stored: StoredCompletions | None) -> StoredCompletions:
    """The completion store, or the 400 OpenAI's API gives for a feature it does not have."""
    if stored is None:
        raise unsupported_parameter("store", "by this server: it runs without a completion store")
    return stored


def not_found(completion_id: str) -> InvalidRequestError:
    return not_found_error(f"No chat completion found with id '{completion_id}'.", param="completion_id", code="not_found")


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    value = small_int(raw)
    if value is None:
        raise InvalidRequestError(
            f"Invalid type for 'limit': expected an integer, but got a string instead ('{raw}').",
            param="limit",
            code="invalid_type",
        ) from None
    if value < 1:
        raise InvalidRequestError(
            f"Invalid 'limit': integer below minimum value. Expected a value >= 1, but got {value} instead.",
            param="limit",
            code="integer_below_min_value",
        )
    if value > MAX_LIMIT:
        raise InvalidRequestError(
            f"Invalid 'limit': integer above maximum value. Expected a value <= {MAX_LIMIT}, but got {value} instead.",
            param="limit",
            code="integer_above_max_value",
        )
    return value


def small_int(raw: str) -> int | None:
    """An integer written in ASCII digits (with an optional minus) short enough for any
    database column; None otherwise. int() alone would take ' 1_0 ' and Arabic-Indic digits,
    and raise on 5,000 digits."""
    digits = raw[1:] if raw.startswith("-") else raw
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
        return None
    return int(raw)


def optional(raw: str | None, param: str | None = None) -> str | None:
    """A query parameter given empty (``after=``) is treated as not given; ``param``: the
    value is matched against stored text (checked for what cannot be stored)."""
    if raw and param is not None:
        check_storable(raw, param)
    return raw or None


def parse_order(raw: str | None, default: Order = "asc") -> Order:
    """``default``: stored completions list oldest first; response and conversation items newest first."""
    if raw is None:
        return default
    if raw in _ORDERS:
        return _ORDERS[raw]
    raise InvalidRequestError(
        f"Invalid value: '{raw}'. Supported values are: 'asc' and 'desc'.", param="order", code="invalid_value"
    )


def parse_metadata_filter(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``metadata[key]=value`` query pairs (every pair must match)."""
    out: dict[str, str] = {}
    for name, value in items:
        if name == "metadata":
            raise InvalidRequestError(
                "Invalid type for 'metadata': expected an object, written as metadata[key]=value query parameters.",
                param="metadata",
                code="invalid_type",
            )
        if not name.startswith("metadata["):
            continue
        if not name.endswith("]") or len(name) <= len("metadata[]"):
            raise InvalidRequestError(
                f"Invalid metadata filter '{name}': expected metadata[key]=value.", param="metadata", code="invalid_value"
            )
        key = name[len("metadata[") : -1]
        if key in out:
            raise InvalidRequestError(
                f"Invalid metadata filter: key '{key}' is given twice.", param=f"metadata[{key}]", code="invalid_value"
            )
        out[key] = value
    check_metadata(out)
    return out


def list_object(page: Page) -> dict[str, Any]:
    """A page as OpenAI's list object; ``first_id`` and ``last_id`` are strings, as the API
    reference requires, empty when the page is."""
    items = page.items
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else "",
        "last_id": items[-1]["id"] if items else "",
        "has_more": page.has_more,
    }


def stored_message(message: dict[str, Any]) -> dict[str, Any]:
    """A request message as messages.list returns it; content parts are kept as sent."""
    content = message.get("content")
    parts = None
    if isinstance(content, list):
        parts = content
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        content = "\n".join(texts) if texts else None
    out: dict[str, Any] = {
        "role": message.get("role"),
        "content": content,
        "refusal": message.get("refusal"),
        "content_parts": parts,
    }
    for key in ("name", "tool_calls", "tool_call_id", "function_call", "audio"):
        if message.get(key) is not None:
            out[key] = message[key]
    return out


class StoredCompletions:
    def __init__(self, store: CompletionStore) -> None:
        self.store = store

    async def ping(self) -> None:
        with reachable():
            await self.store.db.ping()

    async def save(
        self, project: str, completion: dict[str, Any], metadata: dict[str, str], messages: list[dict[str, Any]]
    ) -> None:
        with reachable():
            await self.store.save(project, completion, metadata, [stored_message(m) for m in messages])

    async def list_completions(self, project: str, query: list[tuple[str, str]]) -> dict[str, Any]:
        params = dict(query)
        limit = parse_limit(optional(params.get("limit")))
        order = parse_order(optional(params.get("order")))
        metadata = parse_metadata_filter(query)
        after = optional(params.get("after"), "after")
        model = optional(params.get("model"), "model")
        try:
            with reachable():
                result = await self.store.page_of(project, model=model, metadata=metadata, after=after, limit=limit, order=order)
        except UnknownCursor:
            raise InvalidRequestError(
                f"Invalid 'after': no stored chat completion has the id '{after}'.", param="after", code="invalid_value"
            ) from None
        return list_object(result)

    async def retrieve(self, project: str, completion_id: str) -> dict[str, Any]:
        check_storable(completion_id, "completion_id")
        with reachable():
            found = await self.store.get(project, completion_id)
        if found is None:
            raise not_found(completion_id)
        return found

    async def update(self, project: str, completion_id: str, body: dict[str, Any]) -> dict[str, Any]:
        for name in body:
            if name != "metadata":
                raise InvalidRequestError(
                    f"Unrecognized request argument supplied: {name}. Only 'metadata' can be updated.",
                    param=name,
                    code="unknown_parameter",
                )
        if "metadata" not in body:
            raise InvalidRequestError(
                "Missing required parameter: 'metadata'.", param="metadata", code="missing_required_parameter"
            )
        metadata = body["metadata"]
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise InvalidRequestError(
                "Invalid type for 'metadata': expected an object of string values.", param="metadata", code="invalid_type"
            )
        check_metadata(metadata)
        check_storable(completion_id, "completion_id")
        with reachable():
            updated = await self.store.update_metadata(project, completion_id, metadata)
        if updated is None:
            raise not_found(completion_id)
        return updated

    async def delete(self, project: str, completion_id: str) -> dict[str, Any]:
        check_storable(completion_id, "completion_id")
        with reachable():
            deleted = await self.store.delete(project, completion_id)
        if not deleted:
            raise not_found(completion_id)
        return {"object": "chat.completion.deleted", "id": completion_id, "deleted": True}

    async def messages(self, project: str, completion_id: str, query: list[tuple[str, str]]) -> dict[str, Any]:
        params = dict(query)
        limit = parse_limit(optional(params.get("limit")))
        order = parse_order(optional(params.get("order")))
        check_storable(completion_id, "completion_id")
        after = optional(params.get("after"), "after")
        position = None
        if after is not None:
            head, _, tail = after.rpartition("-")
            position = small_int(tail) if head == completion_id else None
            if position is None or position < 0:
                raise InvalidRequestError(
                    f"Invalid 'after': '{after}' is not a message id of chat completion '{completion_id}'.",
                    param="after",
                    code="invalid_value",
                )
        with reachable():
            result = await self.store.messages(project, completion_id, after=position, limit=limit, order=order)
        if result is None:
            raise not_found(completion_id)
        return list_object(result)
