"""Chat completions: a request body becomes a ``ChatRun`` (validated, its prompt built,
queued and admitted to a slot), which the route reads whole or as a stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chatport.protocol import responses as rs
from chatport.protocol.backend import BackendFailure, GenerationHandle
from chatport.protocol.errors import context_length_exceeded
from chatport.protocol.requests import ChatCompletionRequest
from chatport.protocol.validation import validate
from chatport.service.audio import AudioService
from chatport.service.bounds import check_sizes
from chatport.service.checks import check_request, drop_params
from chatport.service.fetch import UrlFetcher
from chatport.service.generation import Heard, generation_for, service_tier
from chatport.service.images import PixelBudget
from chatport.service.models import ModelRegistry, ServedModel
from chatport.service.run import ChatRun, PreparedChat, admitted, as_api_error
from chatport.service.search.queries import QueryWriter
from chatport.service.search.web import SearchContext, WebSearch
from chatport.service.stored import StoredCompletions, required
from chatport.service.workers import WorkerPools


@dataclass(frozen=True)
class SamplingDefaults:
    """The operator's sampling for requests that send none (``chatport serve --temperature/--top-p``)."""

    temperature: float | None = None
    top_p: float | None = None

    def applied(self, request: ChatCompletionRequest) -> ChatCompletionRequest:
        update: dict[str, float] = {}
        if request.temperature is None and self.temperature is not None:
            update["temperature"] = self.temperature
        if request.top_p is None and self.top_p is not None:
            update["top_p"] = self.top_p
        return request.model_copy(update=update) if update else request


class Meter(Protocol):
    """The rate limiter's side of one request (``service.limits.Ticket``)."""

    async def reserve(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Hold the most tokens the request can use; raises a 429 when the project's limit cannot."""
        ...

    async def charge(self, tokens: int) -> None:
        """The tokens (prompt + completion) the finished answer used."""
        ...


class ChatService:
    def __init__(
        self,
        registry: ModelRegistry,
        stored: StoredCompletions | None = None,
        *,
        drop: frozenset[str] = frozenset(),
        show_reasoning: bool = True,
        fetcher: UrlFetcher | None = None,
        audio: AudioService | None = None,
        search: WebSearch | None = None,
        sampling: SamplingDefaults | None = None,
    ) -> None:
        """``show_reasoning`` False (--reasoning-format none): reasoning is counted in usage
        but its text is not returned, as OpenAI's reasoning models do. ``fetcher``: how
        image URLs are downloaded (its policy says which addresses may be). ``search``:
        the engine that answers ``web_search_options`` (None: they are refused).
        ``sampling``: what a request that sends no temperature or top_p gets."""
        self.search = search
        self.sampling = sampling or SamplingDefaults()
        self.fetcher = fetcher or UrlFetcher()
        # Speech in and out (Whisper, Piper); without models, audio is refused by name.
        self.audio = audio or AudioService(None, None)
        self.registry = registry
        self.stored = stored
        self.drop = drop
        self.show_reasoning = show_reasoning
        # Prompts, grammars, files and images: each in a bounded pool of its own, off the event loop.
        self.pools = WorkerPools()
        self.pixels = PixelBudget()

    async def start(self, body: dict[str, Any], project: str = "default", meter: Meter | None = None) -> ChatRun:
        """The request validated, its prompt built, queued and admitted: a full or slow
        queue, a store that is down (for store=true) or a project out of tokens is answered
        before any response has begun. ``project``: whose cached prompts and earlier spoken
        answers the request may use."""
        queued = await self.submit(await self.prepare(body, project), project, meter)
        return await queued.admitted()

    async def submit(self, chat: PreparedChat, project: str = "default", meter: Meter | None = None) -> QueuedChat:
        """A prepared request queued for a slot (its tokens reserved): a full queue, a store
        that is down (for store=true) or a project out of tokens is refused here."""
        if chat.request.store:
            await required(self.stored).ping()
        if meter is not None:
            generation = chat.generation
            prompt = len(generation.prompt)
            most = generation.max_tokens or chat.model.capabilities.context_length - prompt
            await meter.reserve(prompt, most * generation.n)
        try:
            handle = chat.model.backend.submit(chat.generation)
        except BackendFailure as failure:
            raise as_api_error(failure) from None
        return QueuedChat(chat, handle, lambda: ChatRun(chat, handle, self.audio, project, self._finished(project, meter)))

    async def prepare(self, body: dict[str, Any], project: str = "default") -> PreparedChat:
        named = body.get("model")
        known = self.registry.find(named) if isinstance(named, str) else None
        check_sizes(body, max_messages=known.capabilities.context_length if known else self.registry.longest_context)
        request = validate(ChatCompletionRequest, body)
        model = self.registry.resolve(request.model)
        # A model that reasons takes reasoning_effort: dropped only where it would be refused.
        drop = self.drop - {"reasoning_effort"} if model.reasoning is not None else self.drop
        request, dropped = drop_params(request, drop)
        request = self.sampling.applied(request)
        check_request(
            request,
            max_choices=model.capabilities.max_choices,
            reasons=model.reasoning is not None,
            searches=self.search is not None,
        )
        if request.store:
            required(self.stored)
        voice = self.audio.check_output(request)
        audio_tokens = _TranscriptTokens(model, self.pools)
        heard = Heard(
            tuple(await self.audio.transcripts(request.messages, audio_tokens.count)),
            await self.audio.history(request.messages, project),
        )
        searched = await self._search(request, model, project)
        generation, tools, decoding = await generation_for(
            request, model, self.pools, self.fetcher, heard, project, self.pixels, searched.block if searched else None
        )
        return PreparedChat(
            request=request,
            model=model,
            generation=generation,
            tools=tools,
            decoding=decoding,
            raw_messages=list(body["messages"]),
            id=rs.random_id("chatcmpl-"),
            created=int(time.time()),
            service_tier=service_tier(request),
            dropped=dropped,
            show_reasoning=self.show_reasoning,
            voice=voice,
            audio_prompt_tokens=audio_tokens.total,
            sources=searched.sources if searched else None,
            search_queries=searched.queries if searched else (),
        )

    async def _search(self, request: ChatCompletionRequest, model: ServedModel, project: str) -> SearchContext | None:
        """One search before generation, when the request asks for it."""
        if request.web_search_options is None or self.search is None:
            return None
        return await self.search.gather(
            request.web_search_options,
            request.messages,
            pages_pool=self.pools.pages,
            tokens_pool=self.pools.prompt,
            tokenize=lambda text: model.backend.tokenize(text, special=False),
            context_length=model.capabilities.context_length,
            write_queries=QueryWriter(model, self.pools, project),
        )

    def _finished(self, project: str, meter: Meter | None) -> Callable[[PreparedChat, dict[str, Any]], Awaitable[None]]:
        async def finished(chat: PreparedChat, completion: dict[str, Any]) -> None:
            # Stored before the client sees the response: what a client received is on disk.
            if chat.request.store and self.stored is not None:
                await self.stored.save(project, completion, chat.request.metadata or {}, chat.raw_messages)
            if meter is not None:
                await meter.charge(completion["usage"]["total_tokens"])

        return finished


class QueuedChat:
    """A request waiting for its slots: ``admitted()`` waits for them and gives its run."""

    def __init__(self, chat: PreparedChat, handle: GenerationHandle, run: Callable[[], ChatRun]) -> None:
        self.chat = chat
        self._handle = handle
        self._run = run

    async def admitted(self) -> ChatRun:
        await admitted(self._handle)
        return self._run()

    def cancel(self) -> None:
        self._handle.cancel()


class _TranscriptTokens:
    """Counts the tokens of a request's transcripts as they come (in the prompt pool): the
    prompt's audio tokens, and a refusal once they alone cannot fit the context."""

    def __init__(self, model: ServedModel, pools: WorkerPools) -> None:
        self._model = model
        self._pool = pools.prompt
        self.total = 0

    async def count(self, transcript: str) -> None:
        tokenize = self._model.backend.tokenize
        tokens = await asyncio.get_running_loop().run_in_executor(self._pool, lambda: tokenize(transcript, special=False))
        self.total += len(tokens)
        limit = self._model.capabilities.context_length
        if self.total >= limit:
            raise context_length_exceeded(limit, self.total)
