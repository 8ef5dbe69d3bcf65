"""The Responses API over the chat service: ``ResponsesService.start`` turns a body into a
``ResponseRun`` (the request checked, the conversation it continues loaded, its chat run
admitted), which the route reads whole or as events; stored responses are read, listed
and deleted here too, per project."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from chatport.protocol import responses as rs
from chatport.protocol.errors import APIError, InvalidRequestError, not_found_error, unsupported_parameter
from chatport.protocol.response_requests import CreateResponseRequest
from chatport.protocol.validation import validate
from chatport.service.bounds import check_sizes
from chatport.service.chat import ChatService, Meter, QueuedChat
from chatport.service.checks import check_metadata, check_storable
from chatport.service.responses.conversations import ConversationsService
from chatport.service.responses.events import Event, ResponseEvents
from chatport.service.responses.items import text_item, with_ids
from chatport.service.responses.output import ItemIds, ResponseShape, Search, assistant_turn
from chatport.service.responses.translate import Origins, chat_body, input_messages, items_to_messages, namespaces
from chatport.service.run import ChatRun, PreparedChat
from chatport.service.stored import list_object, optional, parse_limit, parse_order, reachable
from chatport.store.completions import UnknownCursor
from chatport.store.responses import ResponseStore

log = logging.getLogger("chatport.service")


def not_found(response_id: str) -> InvalidRequestError:
    return not_found_error(f"Response with id '{response_id}' not found.", param="response_id", code="not_found")


class ResponsesService:
    def __init__(self, chat: ChatService, store: ResponseStore | None, conversations: ConversationsService | None = None) -> None:
        self.chat = chat
        self.store = store
        self.conversations = conversations or ConversationsService(None)
        self._background: dict[str, asyncio.Task[None]] = {}  # background responses still running, by id

    async def stop(self) -> None:
        """Background responses still running end as cancelled (the server is stopping)."""
        tasks = list(self._background.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def start(
        self, body: dict[str, Any], project: str = "default", meter: Meter | None = None
    ) -> ResponseRun | BackgroundRun:
        """The request checked, the conversation it continues loaded, and its chat run
        admitted: every refusal comes before a response has begun."""
        named = body.get("model")
        known = self.chat.registry.find(named) if isinstance(named, str) else None
        longest = known.capabilities.context_length if known else self.chat.registry.longest_context
        check_sizes(body, max_messages=longest, messages="input")
        request = validate(CreateResponseRequest, body)
        store = request.store is not False
        if store and self.store is None:
            raise unsupported_parameter("store", "by this server: it runs without a store (send store: false)")
        if store and self.store is not None:
            with reachable():  # a store that is down is said before the answer, not after it
                await self.store.db.ping()
        if request.metadata is not None:
            check_metadata(request.metadata)
        if request.background and not store:
            raise InvalidRequestError(
                "Background responses are stored: 'background' needs 'store' left true.", param="background", code="invalid_value"
            )
        if request.background and request.stream:
            raise unsupported_parameter("stream", "with background by this server yet: poll the response instead")
        conversation = _conversation_id(request.conversation)
        if conversation is not None and request.previous_response_id is not None:
            raise InvalidRequestError(
                "Mutually exclusive parameters: Ensure you are only providing one of: 'previous_response_id' or 'conversation'.",
                param="conversation",
                code="mutually_exclusive_parameters",
            )
        if conversation is not None:
            history = items_to_messages(await self.conversations.history(project, conversation))
            chat, origins = chat_body(request, history, "conversation")
        else:
            chat, origins = chat_body(request, await self._history(project, request.previous_response_id))
        try:
            if request.truncation == "auto":
                prepared, chat, origins = await self._fitted(chat, origins, project)
            else:
                prepared = await self.chat.prepare(chat, project)
            queued = await self.chat.submit(prepared, project, meter)
        except APIError as exc:
            raise origins.rename(exc) from None
        sampled = prepared.request  # with the server's defaults where the request sent none
        shape = ResponseShape(
            request,
            rs.random_id("resp_", 48),
            int(time.time()),
            store=store,
            namespaces=namespaces(request),
            sampling=(sampled.temperature, sampled.top_p),
        )
        keep = (self.conversations, conversation) if conversation is not None else None
        saver = _Saver(self.store if store else None, keep, project, request, chat, origins) if store or keep else None
        if request.background and saver is not None:
            return BackgroundRun(queued, shape, saver, self._background)
        try:
            run = await queued.admitted()
        except APIError as exc:
            raise origins.rename(exc) from None
        return ResponseRun(run, shape, saver)

    async def _fitted(self, chat: dict[str, Any], origins: Origins, project: str) -> tuple[PreparedChat, dict[str, Any], Origins]:
        """``truncation: "auto"``: the conversation without as few of its oldest turns as
        makes it fit the context (cut only where a user turn begins, so that no tool output
        loses its call; instructions and the last turn always stay), found by bisection over
        those cuts: a few prompt renders, not one per turn."""
        try:
            return await self.chat.prepare(chat, project), chat, origins
        except InvalidRequestError as exc:
            if exc.code != "context_length_exceeded":
                raise
            too_long = exc
        messages, kept = chat["messages"], origins.of_message
        first = 1 if kept and kept[0] == "instructions" else 0
        cuts = [i for i in range(first + 1, len(messages) - 1) if messages[i]["role"] == "user"]
        best: tuple[PreparedChat, dict[str, Any], Origins] | None = None
        low, high = 0, len(cuts) - 1
        while low <= high:
            middle = (low + high) // 2
            cut = cuts[middle]
            body = {**chat, "messages": messages[:first] + messages[cut:]}
            trimmed = Origins(kept[:first] + kept[cut:], origins.of_tool)
            try:
                best = (await self.chat.prepare(body, project), body, trimmed)
                high = middle - 1  # it fits: try keeping more
            except InvalidRequestError as exc:
                if exc.code != "context_length_exceeded":
                    raise
                low = middle + 1
        if best is None:
            raise too_long
        return best

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
        if found.body.get("status") not in ("completed", "incomplete"):
            status = found.body.get("status")
            raise InvalidRequestError(
                f"Previous response with id '{previous}' is {status}: only a finished response can be continued.",
                param="previous_response_id",
                code="invalid_value",
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

    async def cancel(self, project: str, response_id: str) -> dict[str, Any]:
        """A background response stopped (its slot freed) and stored as cancelled; one that
        has finished is returned as it is."""
        found = await self.retrieve(project, response_id)
        if not found.get("background"):
            raise InvalidRequestError(
                "Only responses created with background=true can be cancelled.", param="response_id", code="invalid_value"
            )
        task = self._background.get(response_id)
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=10)
        return await self.retrieve(project, response_id)

    async def delete(self, project: str, response_id: str) -> dict[str, Any]:
        check_storable(response_id, "response_id")
        await self.retrieve(project, response_id)  # the project's own, before a running one is stopped
        task = self._background.get(response_id)
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=10)
        with reachable():
            deleted = await self._required().delete(project, response_id)
        if not deleted:
            raise not_found(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    async def input_items(self, project: str, response_id: str, query: list[tuple[str, str]]) -> dict[str, Any]:
        params = dict(query)
        limit = parse_limit(optional(params.get("limit")))
        order = parse_order(optional(params.get("order")), "desc")
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


def _conversation_id(conversation: str | dict[str, Any] | None) -> str | None:
    if conversation is None or isinstance(conversation, str):
        return conversation
    found = conversation.get("id")
    if not isinstance(found, str):
        raise InvalidRequestError(
            "Missing required parameter: 'conversation.id'.", param="conversation.id", code="missing_required_parameter"
        )
    return found


class _Saver:
    """Keeps a finished response: in the store (store: true) with the conversation it
    closes in chat form, and its input and output items in its ``conversation``, if it names one."""

    def __init__(
        self,
        store: ResponseStore | None,
        conversation: tuple[ConversationsService, str] | None,
        project: str,
        request: CreateResponseRequest,
        chat: dict[str, Any],
        origins: Origins,
    ) -> None:
        self._store = store
        self._conversation = conversation
        self._project = project
        self._items = input_items(request)  # given their ids once
        self._messages = input_messages(chat, origins)

    def _closed(self, completion: dict[str, Any] | None) -> list[dict[str, Any]]:
        return [*self._messages, assistant_turn(completion["choices"][0])] if completion is not None else []

    async def save(self, response: dict[str, Any], completion: dict[str, Any]) -> None:
        if self._store is not None:
            with reachable():
                await self._store.save(self._project, response, self._closed(completion), self._items)
        await self._append(response)

    async def start(self, response: dict[str, Any]) -> None:
        """A background response's first state (queued), with its input items."""
        if self._store is not None:
            with reachable():
                await self._store.save(self._project, response, [], self._items)

    async def update(self, response: dict[str, Any], completion: dict[str, Any] | None = None) -> None:
        """A background response's new state; with its completion, its last."""
        if self._store is not None:
            with reachable():
                await self._store.update(self._project, response, self._closed(completion))
        if completion is not None:
            await self._append(response)

    async def _append(self, response: dict[str, Any]) -> None:
        if self._conversation is not None:
            conversations, conversation_id = self._conversation
            await conversations.append(self._project, conversation_id, [*self._items, *response["output"]])


def input_items(request: CreateResponseRequest) -> list[dict[str, Any]]:
    """The request's input as the items input_items lists, each with an id."""
    return [text_item(request.input)] if isinstance(request.input, str) else with_ids(request.input or [])


def search_of(chat: PreparedChat, request: CreateResponseRequest) -> Search | None:
    """The web search that ran before the answer, as its output item shows it (None: none ran)."""
    if chat.sources is None:
        return None
    wanted = "web_search_call.action.sources" in (request.include or [])
    return Search(chat.search_queries, tuple(s.url for s in chat.sources), wanted)


class ResponseRun:
    """One admitted response: read it whole (``complete``) or as events (``stream``), once."""

    def __init__(self, run: ChatRun, shape: ResponseShape, saver: _Saver | None) -> None:
        self._run = run
        self._shape = shape
        self._saver = saver
        self._search = search_of(run.chat, shape.request)

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
        obfuscate = not (options and options.include_obfuscation is False)
        events = ResponseEvents(ItemIds(), obfuscate=obfuscate, namespaces=self._shape.namespaces)
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


class BackgroundRun:
    """A response run in the background (``background: true``): ``complete`` stores it as
    queued and answers at once; the work goes on in a task that stores each state
    (in_progress, then completed, incomplete, failed or cancelled), which clients poll."""

    streams = False

    def __init__(self, queued: QueuedChat, shape: ResponseShape, saver: _Saver, tasks: dict[str, asyncio.Task[None]]) -> None:
        self._queued = queued
        self._shape = shape
        self._saver = saver
        self._tasks = tasks

    @property
    def dropped(self) -> list[str]:
        return self._queued.chat.dropped

    @property
    def search_results(self) -> int | None:
        sources = self._queued.chat.sources
        return len(sources) if sources is not None else None

    def stream(self) -> AsyncIterator[Event]:
        raise AssertionError("a background response is not streamed (start refuses it)")

    async def complete(self) -> dict[str, Any]:
        queued = self._shape.response("queued", [])
        try:
            await self._saver.start(queued)
        except APIError:
            self._queued.cancel()
            raise
        task = asyncio.get_running_loop().create_task(self._work())
        self._tasks[self._shape.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(self._shape.id, None))
        return queued

    async def _work(self) -> None:
        shape, saver = self._shape, self._saver
        try:
            run = await self._queued.admitted()
            await saver.update(shape.response("in_progress", []))
            completion = await run.complete()
            await saver.update(shape.finished(completion, ItemIds(), search_of(run.chat, shape.request)), completion)
        except asyncio.CancelledError:
            self._queued.cancel()
            await _quietly(saver.update(shape.response("cancelled", [])))
        except APIError as exc:
            code = "rate_limit_exceeded" if exc.status_code == 429 else "server_error"
            await _quietly(saver.update(shape.response("failed", [], error={"code": code, "message": exc.message})))
        except Exception as exc:  # a bug: the response says it failed rather than staying in_progress
            log.exception("a background response failed", exc_info=exc)
            error = {"code": "server_error", "message": "The server had an error while processing your request."}
            await _quietly(saver.update(shape.response("failed", [], error=error)))


async def _quietly(work: Awaitable[None]) -> None:
    """A last state written if the store can take it (it may be down: the response then stays as it was)."""
    try:
        await work
    except APIError:
        log.warning("a background response's last state could not be stored")
