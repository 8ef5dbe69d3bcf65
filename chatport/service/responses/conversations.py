"""The Conversations API: conversations and their items, per project, with OpenAI's
parameters, limits and errors; and what a response that names a conversation reads from
it (its items, as history) and adds to it (its input and output items)."""

from __future__ import annotations

import time
from typing import Any

from chatport.protocol import responses as rs
from chatport.protocol.errors import InvalidRequestError, not_found_error, unsupported_parameter
from chatport.protocol.response_requests import AddConversationItemsRequest, CreateConversationRequest, UpdateConversationRequest
from chatport.protocol.validation import validate
from chatport.service.checks import check_metadata, check_storable
from chatport.service.responses.items import with_ids
from chatport.service.stored import list_object, optional, parse_limit, parse_order, reachable
from chatport.store.completions import Page, UnknownCursor
from chatport.store.conversations import ConversationStore


def not_found(conversation_id: str) -> InvalidRequestError:
    return not_found_error(f"Conversation with id '{conversation_id}' not found.", param="conversation_id", code="not_found")


class ConversationsService:
    def __init__(self, store: ConversationStore | None) -> None:
        self._store = store

    def _required(self, param: str = "conversation") -> ConversationStore:
        if self._store is None:
            raise unsupported_parameter(param, "by this server: it runs without a store")
        return self._store

    async def create(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        request = validate(CreateConversationRequest, body)
        metadata = request.metadata or {}
        check_metadata(metadata)
        items = with_ids(request.items or [])
        with reachable():
            return await self._required().create(project, rs.random_id("conv_", 48), int(time.time()), metadata, items)

    async def retrieve(self, project: str, conversation_id: str) -> dict[str, Any]:
        check_storable(conversation_id, "conversation_id")
        with reachable():
            found = await self._required().get(project, conversation_id)
        if found is None:
            raise not_found(conversation_id)
        return found

    async def update(self, project: str, conversation_id: str, body: dict[str, Any]) -> dict[str, Any]:
        request = validate(UpdateConversationRequest, body)
        check_metadata(request.metadata)
        check_storable(conversation_id, "conversation_id")
        with reachable():
            updated = await self._required().update_metadata(project, conversation_id, request.metadata)
        if updated is None:
            raise not_found(conversation_id)
        return updated

    async def delete(self, project: str, conversation_id: str) -> dict[str, Any]:
        check_storable(conversation_id, "conversation_id")
        with reachable():
            deleted = await self._required().delete(project, conversation_id)
        if not deleted:
            raise not_found(conversation_id)
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def add_items(self, project: str, conversation_id: str, body: dict[str, Any]) -> dict[str, Any]:
        request = validate(AddConversationItemsRequest, body)
        items = with_ids(request.items)
        check_storable(conversation_id, "conversation_id")
        with reachable():
            added = await self._required().add_items(project, conversation_id, items)
        if not added:
            raise not_found(conversation_id)
        return list_object(Page(items, False))

    async def list_items(self, project: str, conversation_id: str, query: list[tuple[str, str]]) -> dict[str, Any]:
        params = dict(query)
        limit = parse_limit(optional(params.get("limit")))
        order = parse_order(optional(params.get("order")), "desc")
        check_storable(conversation_id, "conversation_id")
        after = optional(params.get("after"), "after")
        try:
            with reachable():
                page = await self._required().page_of(project, conversation_id, after=after, limit=limit, order=order)
        except UnknownCursor:
            raise InvalidRequestError(
                f"Invalid 'after': no item of conversation '{conversation_id}' has the id '{after}'.",
                param="after",
                code="invalid_value",
            ) from None
        if page is None:
            raise not_found(conversation_id)
        return list_object(page)

    async def item(self, project: str, conversation_id: str, item_id: str) -> dict[str, Any]:
        check_storable(conversation_id, "conversation_id")
        check_storable(item_id, "item_id")
        with reachable():
            conversation = await self._required().get(project, conversation_id)
            found = await self._required().item(project, conversation_id, item_id) if conversation else None
        if conversation is None:
            raise not_found(conversation_id)
        if found is None:
            raise not_found_error(f"Item with id '{item_id}' not found.", param="item_id", code="not_found")
        return found

    async def delete_item(self, project: str, conversation_id: str, item_id: str) -> dict[str, Any]:
        conversation = await self.retrieve(project, conversation_id)
        check_storable(item_id, "item_id")
        with reachable():
            deleted = await self._required().delete_item(project, conversation_id, item_id)
        if not deleted:
            raise not_found_error(f"Item with id '{item_id}' not found.", param="item_id", code="not_found")
        return conversation

    # --- for responses ------------------------------------------------------------------

    async def history(self, project: str, conversation_id: str) -> list[dict[str, Any]]:
        """A conversation's items, oldest first, for a response that names it."""
        check_storable(conversation_id, "conversation")
        with reachable():
            items = await self._required().items(project, conversation_id)
        if items is None:
            raise InvalidRequestError(
                f"Conversation with id '{conversation_id}' not found.", param="conversation", code="not_found", status_code=404
            )
        return items

    async def append(self, project: str, conversation_id: str, items: list[dict[str, Any]]) -> None:
        """A finished response's input and output items, added to its conversation (gone
        meanwhile: nothing to add to)."""
        with reachable():
            await self._required().add_items(project, conversation_id, items)
