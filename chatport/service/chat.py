"""Chat completions: a request body becomes a generation on a backend, and the backend's
deltas become a chat.completion or OpenAI's exact sequence of chunks."""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chatport.protocol import responses as rs
from chatport.protocol.backend import (
    BackendFailure,
    ChoiceDelta,
    GenerationHandle,
    GenerationRequest,
    QueueFull,
    QueueTimeout,
    ShuttingDown,
)
from chatport.protocol.errors import (
    APIError,
    context_length_exceeded,
    overloaded_error,
    rate_limit_error,
    unsupported_parameter,
)
from chatport.protocol.requests import ChatCompletionRequest
from chatport.protocol.validation import validate
from chatport.service.audio import AudioService, SentenceSpeaker
from chatport.service.bounds import check_sizes
from chatport.service.checks import check_request, drop_params
from chatport.service.choices import Choices
from chatport.service.fetch import ImageFetcher
from chatport.service.generation import Heard, generation_for, service_tier
from chatport.service.images import PixelBudget
from chatport.service.models import ModelRegistry, ServedModel
from chatport.service.stored import StoredCompletions
from chatport.service.tools.plan import ToolPlan
from chatport.service.workers import WorkerPools

_OBFUSCATION_CHARS = string.ascii_letters + string.digits

Chunk = dict[str, Any]


class Meter(Protocol):
    """The rate limiter's side of one request (``service.limits.Ticket``)."""

    async def reserve(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Hold the most tokens the request can use; raises a 429 when the project's limit cannot."""
        ...

    async def charge(self, tokens: int) -> None:
        """The tokens (prompt + completion) the finished answer used."""
        ...


@dataclass
class PreparedChat:
    request: ChatCompletionRequest
    model: ServedModel
    generation: GenerationRequest
    tools: ToolPlan | None
    raw_messages: list[dict[str, Any]]
    id: str
    created: int
    service_tier: str
    dropped: list[str]  # parameters accepted and ignored (--drop-params), said in a header
    show_reasoning: bool = True  # a think block's text is returned as reasoning_content
    voice: str | None = None  # the answer is spoken with this voice (modalities: audio)
    audio_prompt_tokens: int = 0  # prompt tokens that came from input audio (transcripts)

    def choices(self) -> Choices:
        reasoning = self.model.reasoning
        tags = (reasoning.start, reasoning.end) if reasoning is not None and self.generation.thinking else None
        return Choices(
            self.generation.n,
            logprobs=self.generation.params.logprobs,
            tools=self.tools,
            fmt=self.model.tool_format,
            think_tags=tags,
            show_reasoning=self.show_reasoning,
        )

    @property
    def model_name(self) -> str:
        """The name the client asked for (an alias stays an alias, as OpenAI echoes it)."""
        return self.request.model

    def completion(self, choices: Choices, handle: GenerationHandle) -> dict[str, Any]:
        return rs.completion(
            id=self.id,
            created=self.created,
            model=self.model_name,
            choices=choices.choice_objects(),
            usage=usage(choices, handle, self.audio_prompt_tokens, spoken=self.voice is not None),
            service_tier=self.service_tier,
            system_fingerprint=self.model.capabilities.fingerprint,
        )


# cached_tokens is reported in whole blocks of this many tokens, as OpenAI reports it: the
# prefix reused is still exact inside the engine, but the figure a client reads says no more
# than which block its prompt first differed in.
CACHED_TOKENS_BLOCK = 128


def reported_cached(tokens: int) -> int:
    return tokens - tokens % CACHED_TOKENS_BLOCK


def usage(choices: Choices, handle: GenerationHandle, audio_prompt: int = 0, *, spoken: bool = False) -> dict[str, Any]:
    """``audio_prompt``: prompt tokens from input audio. ``spoken``: the answer was spoken;
    its tokens (all but reasoning) are audio tokens, as an audio model's answer is."""
    # Rejected prediction tokens count as completion tokens, as OpenAI bills them.
    return rs.usage(
        handle.prompt_tokens,
        choices.completion_tokens + choices.rejected_prediction_tokens,
        reported_cached(handle.cached_tokens),
        accepted_prediction=choices.accepted_prediction_tokens,
        rejected_prediction=choices.rejected_prediction_tokens,
        reasoning=choices.reasoning_tokens,
        audio_prompt=audio_prompt,
        audio_completion=choices.completion_tokens - choices.reasoning_tokens if spoken else 0,
    )


class ChatService:
    def __init__(
        self,
        registry: ModelRegistry,
        stored: StoredCompletions | None = None,
        *,
        drop: frozenset[str] = frozenset(),
        show_reasoning: bool = True,
        fetcher: ImageFetcher | None = None,
        audio: AudioService | None = None,
    ) -> None:
        """``show_reasoning`` False (--reasoning-format none): reasoning is counted in usage
        but its text is not returned, as OpenAI's reasoning models do. ``fetcher``: how
        image URLs are downloaded (its policy says which addresses may be)."""
        self.fetcher = fetcher or ImageFetcher()
        # Speech in and out (Whisper, Piper); without models, audio is refused by name.
        self.audio = audio or AudioService(None, None)
        self.registry = registry
        self.stored = stored
        self.drop = drop
        self.show_reasoning = show_reasoning
        # Prompts, grammars, files and images: each in a bounded pool of its own, off the event loop.
        self.pools = WorkerPools()
        self.pixels = PixelBudget()

    async def prepare(self, body: dict[str, Any], project: str = "default") -> PreparedChat:
        """``project``: whose earlier spoken answers the messages may refer to."""
        named = body.get("model")
        known = self.registry.find(named) if isinstance(named, str) else None
        check_sizes(body, max_messages=known.capabilities.context_length if known else self.registry.longest_context)
        request = validate(ChatCompletionRequest, body)
        model = self.registry.resolve(request.model)
        # A model that reasons takes reasoning_effort: dropped only where it would be refused.
        drop = self.drop - {"reasoning_effort"} if model.reasoning is not None else self.drop
        request, dropped = drop_params(request, drop)
        check_request(
            request,
            max_choices=model.capabilities.max_choices,
            reasons=model.reasoning is not None,
        )
        voice = self.audio.check_output(request)
        heard = Heard(
            tuple(await self.audio.transcripts(request.messages, _fits(model))),
            await self.audio.history(request.messages, project),
        )
        generation, tools = await generation_for(request, model, self.pools, self.fetcher, heard, project, self.pixels)
        return PreparedChat(
            request,
            model,
            generation,
            tools,
            list(body["messages"]),
            rs.random_id("chatcmpl-"),
            int(time.time()),
            service_tier(request),
            dropped,
            self.show_reasoning,
            voice,
            sum(len(model.backend.tokenize(text, special=False)) for text in heard.transcripts),
        )

    async def start(self, chat: PreparedChat, meter: Meter | None = None) -> GenerationHandle:
        """Queue the request and wait for its slot, so that a full or slow queue (or a
        store that is down, for store=true, or a project out of tokens) is answered before
        any response has begun."""
        if chat.request.store:
            if self.stored is None:
                raise unsupported_parameter("store", "by this server: it runs without a completion store")
            await self.stored.ping()
        if meter is not None:
            generation = chat.generation
            prompt = len(generation.prompt)
            most = generation.max_tokens or chat.model.capabilities.context_length - prompt
            await meter.reserve(prompt, most * generation.n)
        try:
            handle = chat.model.backend.submit(chat.generation)
        except BackendFailure as failure:
            raise as_api_error(failure) from None
        try:
            await handle.wait_admitted()
        except BackendFailure as failure:
            raise as_api_error(failure) from None
        except asyncio.CancelledError:
            handle.cancel()  # the client left while the request waited for a slot
            raise
        return handle

    async def complete(
        self, chat: PreparedChat, handle: GenerationHandle, project: str, meter: Meter | None = None
    ) -> dict[str, Any]:
        choices = chat.choices()
        try:
            async for deltas in _outputs(handle):
                for delta in deltas:
                    choices.add(delta)
        finally:
            handle.cancel()
        completion = chat.completion(choices, handle)
        if chat.voice is not None and chat.request.audio is not None:
            for choice in completion["choices"]:
                message = choice["message"]
                if message.get("content"):
                    spoken = await self.audio.answer(message["content"], chat.voice, chat.request.audio.format, project)
                    message["audio"], message["content"] = spoken.message_audio(), None
        await self._store(chat, project, completion)
        if meter is not None:
            await meter.charge(completion["usage"]["total_tokens"])
        return completion

    async def stream(
        self, chat: PreparedChat, handle: GenerationHandle, project: str, meter: Meter | None = None
    ) -> AsyncIterator[Chunk]:
        chunks = ChunkWriter(chat)
        choices = chat.choices()
        speech = SpokenStream(self.audio, chat.voice, chunks, project) if chat.voice is not None else None
        try:
            async for deltas in _outputs(handle):
                for delta in deltas:
                    for chunk in chunks.for_delta(choices, delta):
                        if speech is None:
                            yield chunk
                        else:
                            async for out in speech.around(chunk):
                                yield out
                if speech is not None:
                    async for out in speech.ready():
                        yield out
            completion = chat.completion(choices, handle)
            await self._store(chat, project, completion)
            if meter is not None:
                await meter.charge(completion["usage"]["total_tokens"])
            if chunks.include_usage:
                yield chunks.usage(completion["usage"])
        except APIError as exc:
            yield exc.body()
        finally:
            handle.cancel()
            if speech is not None:
                speech.cancel()

    async def _store(self, chat: PreparedChat, project: str, completion: dict[str, Any]) -> None:
        # Stored before the client sees the response: what a client received is on disk.
        if chat.request.store and self.stored is not None:
            await self.stored.save(project, completion, chat.request.metadata or {}, chat.raw_messages)


def _fits(model: ServedModel) -> Callable[[str], None]:
    """Told each transcript of a request's audio: raises once they cannot fit the context."""
    limit = model.capabilities.context_length
    total = 0

    def fits(transcript: str) -> None:
        nonlocal total
        total += len(model.backend.tokenize(transcript, special=False))
        if total >= limit:
            raise context_length_exceeded(limit, total)

    return fits


class ChunkWriter:
    """chat.completion.chunk objects for one stream, with its options applied."""

    def __init__(self, chat: PreparedChat) -> None:
        options = chat.request.stream_options
        self.include_usage = bool(options and options.include_usage)
        self._obfuscate = not (options and options.include_obfuscation is False)
        self._logprobs = chat.generation.params.logprobs
        self._opened: set[int] = set()  # choices whose first delta (with the role) is sent
        self._base = {
            "id": chat.id,
            "object": "chat.completion.chunk",
            "created": chat.created,
            "model": chat.model_name,
            "service_tier": chat.service_tier,
            "system_fingerprint": chat.model.capabilities.fingerprint,
        }

    def choice(self, index: int, delta: dict[str, Any], *, logprobs: Any = None, finish_reason: str | None = None) -> Chunk:
        out = {**self._base, "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}
        if self.include_usage:
            out["usage"] = None
        if self._obfuscate:
            out["obfuscation"] = "".join(random.choices(_OBFUSCATION_CHARS, k=random.randint(1, 16)))
        return out

    def for_delta(self, choices: Choices, delta: ChoiceDelta) -> list[Chunk]:
        seen = choices.add(delta)
        out = []
        # The delta's logprobs go with its first content chunk (or a chunk of their own).
        logprobs = seen.logprobs or [] if self._logprobs else None
        pieces = seen.pieces
        if logprobs and not any(kind == "content" for kind, _ in pieces):
            pieces = [("content", ""), *pieces]
        for kind, piece in pieces:
            if kind == "reasoning":
                out += self._open(seen.index, None)
                out.append(self.choice(seen.index, {"reasoning_content": piece}))
            elif kind == "content":
                out += self._open(seen.index, None)
                out.append(self.choice(seen.index, {"content": piece}, logprobs=rs.choice_logprobs(logprobs)))
                logprobs = [] if logprobs is not None else None
            elif piece is not None:
                out += self._open(seen.index, piece) or [self.choice(seen.index, piece)]
        if seen.finish_reason:
            out += self._open(seen.index, None)
            out.append(self.choice(seen.index, {}, finish_reason=seen.finish_reason))
        return out

    def _open(self, index: int, call: dict[str, Any] | None) -> list[Chunk]:
        """A choice's first delta carries the role, as OpenAI's do: with empty content
        before text, or merged into the first call delta (content null)."""
        if index in self._opened:
            return []
        self._opened.add(index)
        if call is None:
            return [self.choice(index, {"role": "assistant", "content": "", "refusal": None})]
        return [self.choice(index, {"role": "assistant", "content": None, "refusal": None, **call})]

    def usage(self, usage: dict[str, Any]) -> Chunk:
        return {**self._base, "choices": [], "usage": usage}


class SpokenStream:
    """A stream whose answers are spoken (``modalities: ["text", "audio"]``): each choice's
    text goes out as ``delta.audio.transcript`` (the first with the answer's ``id``), its
    speech as ``delta.audio.data`` pieces of base64 pcm16 at 24 kHz as sentences are
    spoken, and ``delta.audio.expires_at`` before the choice's finish chunk."""

    def __init__(self, audio: AudioService, voice: str, writer: ChunkWriter, project: str) -> None:
        self._audio = audio
        self._voice = voice
        self._writer = writer
        self._project = project
        self._speakers: dict[int, SentenceSpeaker] = {}  # choices still speaking

    async def around(self, chunk: Chunk) -> AsyncIterator[Chunk]:
        """The chunk as a spoken stream sends it, with whatever audio must come before it."""
        (choice,) = chunk["choices"]
        index, delta = choice["index"], choice["delta"]
        if choice["finish_reason"] is not None and index in self._speakers:
            speaker = self._speakers.pop(index)
            async for piece in speaker.finish():
                yield self._writer.choice(index, {"audio": {"data": piece}})
            _, expires_at = await self._audio.remember(self._project, speaker.text, speaker.id)
            yield self._writer.choice(index, {"audio": {"expires_at": expires_at}})
        text = delta.get("content")
        if "role" in delta:
            delta["content"] = None  # an audio answer has no content
        else:
            delta.pop("content", None)
        if text:
            speaking = self._speakers.get(index)
            if speaking is None:
                speaking = self._speakers[index] = SentenceSpeaker(self._audio, self._voice)
                delta["audio"] = {"id": speaking.id, "transcript": text}
            else:
                delta["audio"] = {"transcript": text}
            speaking.feed(text)
        if delta or choice["finish_reason"] is not None or choice["logprobs"] is not None:
            yield chunk

    async def ready(self) -> AsyncIterator[Chunk]:
        for index, speaker in self._speakers.items():
            async for piece in speaker.ready():
                yield self._writer.choice(index, {"audio": {"data": piece}})

    def cancel(self) -> None:
        for speaker in self._speakers.values():
            speaker.cancel()


async def _outputs(handle: GenerationHandle) -> AsyncIterator[list[ChoiceDelta]]:
    try:
        async for deltas in handle:
            yield deltas
    except BackendFailure as failure:
        raise as_api_error(failure) from None


def as_api_error(failure: BackendFailure) -> APIError:
    if isinstance(failure, QueueFull):
        return rate_limit_error(
            "Too many requests are waiting for this model. Please retry after a brief wait.",
            code="rate_limit_exceeded",
        )
    if isinstance(failure, QueueTimeout):
        return overloaded_error(
            "The server is currently overloaded with other requests. Sorry about that! Please retry after a brief wait.",
            code="server_overloaded",
        )
    if isinstance(failure, ShuttingDown):
        return shutting_down_error("The server is shutting down and stopped this request.")
    return APIError(f"The model failed while generating: {failure}")


def shutting_down_error(what: str) -> APIError:
    return overloaded_error(f"{what} Please retry after a brief wait.", code="server_shutting_down", retry_after=5)
