"""The Responses API over the chat service: ``ResponsesService.start`` turns a body into a
``ResponseRun`` (the request checked, the conversation it continues loaded, its chat run
admitted), which the route reads whole or as events; stored responses are read, listed
and deleted here too, per project."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from chatport.protocol import responses as rs
from chatport.protocol.errors import APIError, InvalidRequestError, not_found_error, unsupported_parameter
from chatport.protocol.response_requests import CreateResponseRequest, MessageItem
from chatport.protocol.validation import validate
from chatport.service.chat import ChatService, Meter
from chatport.service.checks import check_metadata, check_storable
from chatport.service.responses.events import Event, ResponseEvents
from chatport.service.responses.output import ItemIds, ResponseShape, Search, assistant_turn
from chatport.service.responses.translate import Origins, chat_body, input_messages
from chatport.service.run import ChatRun
from chatport.service.stored import list_object, optional, parse_limit, reachable
from chatport.store.completions import Order, UnknownCursor
from chatport.store.responses import ResponseStore

# Input items get ids as OpenAI gives them, by type.
_INPUT_PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "custom_tool_call": "ctc_",
    "custom_tool_call_output": "ctco_",
    "reasoning": "rs_",
}


def not_found(response_id: str) -> InvalidRequestError:
    return not_found_error(f"Response with id '{response_id}' not found.", param="response_id", code="not_found")


class ResponsesService:
    def __init__(self, chat: ChatService, store: ResponseStore | None) -> None:
        self.chat = chat
        self.store = store

    async def start(self, body: dict[str, Any], project: str = "default", meter: Meter | None = None) -> ResponseRun:
        """The request checked, the conversation it continues loaded, and its chat run
        admitted: every refusal comes before a response has begun."""
        request = validate(CreateResponseRequest, body)
        store = request.store is not False
        if store and self.store is None:
            raise unsupported_parameter("store", "by this server: it runs without a store (send store: false)")
        if store and self.store is not None:
            with reachable():  # a store that is down is said before the answer, not after it
                await self.store.db.ping()
        if request.metadata is not None:
            check_metadata(request.metadata)
        history = await self._history(project, request.previous_response_id)
        chat, origins = chat_body(request, history)
        try:
            run = await self.chat.start(chat, project, meter)
        except APIError as exc:
            raise origins.rename(exc) from None
        shape = ResponseShape(request, rs.random_id("resp_", 48), int(time.time()), store=store)
        saver = _Saver(self.store, project, request, chat, origins) if store and self.store is not None else None
        return ResponseRun(run, shape, saver)

    async def _history(self, project: str, previous: str | None) -> list[dict[str, Any]]:
        if previous is None:
            return []
        check_storable(previous, "previous_response_id")
        with reachable():
            found = await self._required().get(project, previous)
        if found is None:
            raise InvalidRequestError(
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return found.conversation

    def _required(self) -> ResponseStore:
        if self.store is None:
            raise unsupported_parameter("previous_response_id", "by this server: it runs without a store")
        return self.store

    async def retrieve(self, project: str, response_id: str) -> dict[str, Any]:
        check_storable(response_id, "response_id")
        with reachable():
            found = await self._required().get(project, response_id)
        if found is None:
            raise not_found(response_id)
        return found.body

    async def delete(self, project: str, response_id: str) -> dict[str, Any]:
        check_storable(response_id, "response_id")
        with reachable():
            deleted = await self._required().delete(project, response_id)
        if not deleted:
            raise not_found(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    async def input_items(self, project: str, response_id: str, query: list[tuple[str, str]]) -> dict[str, Any]:
        params = dict(query)
        limit = parse_limit(optional(params.get("limit")))
        order = _order(optional(params.get("order")))
        check_storable(response_id, "response_id")
        after = optional(params.get("after"), "after")
        try:
            with reachable():
                page = await self._required().input_items(project, response_id, after=after, limit=limit, order=order)
        except UnknownCursor:
            raise InvalidRequestError(
                f"Invalid 'after': no input item of response '{response_id}' has the id '{after}'.",
                param="after",
                code="invalid_value",
            ) from None
        if page is None:
            raise not_found(response_id)
        return list_object(page)


def _order(raw: str | None) -> Order:
    """Input items come newest first unless asked otherwise, as OpenAI lists them."""
    if raw is None or raw == "desc":
        return "desc"
    if raw == "asc":
        return "asc"
    raise InvalidRequestError(
        f"Invalid value: '{raw}'. Supported values are: 'asc' and 'desc'.", param="order", code="invalid_value"
    )


class _Saver:
    """Keeps a finished response (store: true) with the conversation it closes."""

    def __init__(
        self, store: ResponseStore, project: str, request: CreateResponseRequest, chat: dict[str, Any], origins: Origins
    ) -> None:
        self._store = store
        self._project = project
        self._request = request
        self._conversation = input_messages(chat, origins)

    async def save(self, response: dict[str, Any], completion: dict[str, Any]) -> None:
        conversation = [*self._conversation, assistant_turn(completion["choices"][0])]
        with reachable():
            await self._store.save(self._project, response, conversation, input_items(self._request))


def input_items(request: CreateResponseRequest) -> list[dict[str, Any]]:
    """The request's input as the items input_items lists, each with an id."""
    if isinstance(request.input, str):
        text = {"type": "input_text", "text": request.input}
        return [{"id": rs.random_id("msg_", 48), "type": "message", "role": "user", "content": [text], "status": "completed"}]
    items = []
    for item in request.input or []:
        dumped = item.model_dump(by_alias=True, exclude_none=True)
        if isinstance(item, MessageItem):
            if isinstance(item.content, str):
                kind = "output_text" if item.role == "assistant" else "input_text"
                dumped["content"] = [{"type": kind, "text": item.content}]
            dumped["status"] = "completed"
        dumped["id"] = item.id or rs.random_id(_INPUT_PREFIXES.get(dumped["type"], "item_"), 48)
        items.append(dumped)
    return items


class ResponseRun:
    """One admitted response: read it whole (``complete``) or as events (``stream``), once."""

    def __init__(self, run: ChatRun, shape: ResponseShape, saver: _Saver | None) -> None:
        self._run = run
        self._shape = shape
        self._saver = saver
        chat = run.chat
        sources = chat.sources
        wanted = "web_search_call.action.sources" in (shape.request.include or [])
        urls = tuple(s.url for s in sources or ())
        self._search = Search(chat.search_queries, urls, wanted) if sources is not None else None

    @property
    def streams(self) -> bool:
        return bool(self._shape.request.stream)

    @property
    def dropped(self) -> list[str]:
        return self._run.dropped

    @property
    def search_results(self) -> int | None:
        return self._run.search_results

    def cancel(self) -> None:
        self._run.cancel()

    async def complete(self) -> dict[str, Any]:
        completion = await self._run.complete()
        response = self._shape.finished(completion, ItemIds(), self._search)
        if self._saver is not None:
            await self._saver.save(response, completion)
        return response

    async def stream(self) -> AsyncIterator[Event]:
        options = self._shape.request.stream_options
        events = ResponseEvents(ItemIds(), obfuscate=not (options and options.include_obfuscation is False))
        yield events.event("response.created", response=self._shape.response("in_progress", []))
        yield events.event("response.in_progress", response=self._shape.response("in_progress", []))
        for event in events.searched(self._search) if self._search is not None else []:
            yield event
        try:
            async for chunk in self._run.stream():
                if "error" in chunk:
                    yield events.error(chunk)
                    return
                for event in events.chunk(chunk):
                    yield event
            for event in events.close():
                yield event
            completion = self._run.result
            assert completion is not None, "a chat stream that ended has its completion"
            response = self._shape.finished(completion, ItemIds(events.given), self._search)
            if self._saver is not None:
                await self._saver.save(response, completion)
            kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
            yield events.event(kind, response=response)
        except APIError as exc:
            yield events.error(exc.body())
        finally:
            self._run.cancel()
