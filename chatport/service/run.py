"""One chat completion while it runs: ``ChatRun`` owns the generation handle, the choices
as they grow, and the writer that turns each step into what the client reads (a whole
``chat.completion``, or OpenAI's exact sequence of chunks).

A stream's chunks come from a writer: ``TextWriter`` for text answers (role first, logprobs
with the content they belong to, a call's head then its argument pieces, finish, usage),
``SpokenWriter`` for answers spoken as they are generated (transcript deltas, audio data as
each sentence is spoken, ``expires_at`` before the finish). Shapes are built by the small
builders of ``protocol.responses``: plain dicts, nothing per token beyond the chunk itself.
"""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

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
from chatport.protocol.errors import APIError, overloaded_error, rate_limit_error
from chatport.protocol.requests import ChatCompletionRequest
from chatport.service.audio import AudioService, SentenceSpeaker
from chatport.service.choices import Choices, ChoiceUpdate
from chatport.service.decoding import DecodingPlan
from chatport.service.models import ServedModel
from chatport.service.search.sources import Source
from chatport.service.tools.plan import ToolPlan

Chunk = dict[str, Any]
_OBFUSCATION_CHARS = string.ascii_letters + string.digits
# cached_tokens is reported in whole blocks of this many tokens, as OpenAI reports it: the
# prefix reused is still exact inside the engine, but the figure a client reads says no more
# than which block its prompt first differed in.
CACHED_TOKENS_BLOCK = 128


def reported_cached(tokens: int) -> int:
    return tokens - tokens % CACHED_TOKENS_BLOCK


@dataclass(frozen=True)
class PreparedChat:
    """A validated request and everything decided about it before it is queued."""

    request: ChatCompletionRequest
    model: ServedModel
    generation: GenerationRequest
    tools: ToolPlan | None
    decoding: DecodingPlan
    raw_messages: list[dict[str, Any]]  # as sent, for the store
    id: str
    created: int
    service_tier: str
    dropped: list[str] = field(default_factory=list)  # parameters accepted and ignored (--drop-params)
    show_reasoning: bool = True  # a think block's text is returned as reasoning_content
    voice: str | None = None  # the answer is spoken with this voice (modalities: audio)
    audio_prompt_tokens: int = 0  # prompt tokens that came from input audio (transcripts)
    sources: tuple[Source, ...] | None = None  # what a web search gave the model (web_search_options)
    search_queries: tuple[str, ...] = ()  # what that search asked

    @property
    def model_name(self) -> str:
        """The name the client asked for (an alias stays an alias, as OpenAI echoes it)."""
        return self.request.model

    def choices(self) -> Choices:
        reasoning = self.model.reasoning
        tags = (reasoning.start, reasoning.end) if reasoning is not None and self.generation.thinking else None
        return Choices(
            self.generation.n,
            logprobs=self.generation.params.logprobs,
            tools=self.tools,
            blocks=self.decoding.blocks,
            forced=self.decoding.forced,
            think_tags=tags,
            show_reasoning=self.show_reasoning,
            sources=self.sources if self.cites else None,
        )

    @property
    def cites(self) -> bool:
        """Whether the answer's citations become links: after a search, in a text answer
        (a JSON answer is left as its schema has it)."""
        fmt = self.request.response_format
        return self.sources is not None and (fmt is None or fmt.type == "text")

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

    def chunk_base(self) -> Chunk:
        return rs.chunk_base(
            id=self.id,
            created=self.created,
            model=self.model_name,
            service_tier=self.service_tier,
            system_fingerprint=self.model.capabilities.fingerprint,
        )


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


# Told each finished completion before the client has it whole: stores it (store=true)
# and bills its tokens.
Finished = Callable[[PreparedChat, dict[str, Any]], Awaitable[None]]


class ChatRun:
    """One admitted chat completion: read it whole (``complete``) or as chunks
    (``stream``), once; ``cancel`` frees its slots (the route calls it when the client
    leaves, and both readers call it when they end)."""

    def __init__(
        self, chat: PreparedChat, handle: GenerationHandle, audio: AudioService, project: str, finished: Finished
    ) -> None:
        self.chat = chat
        self._handle = handle
        self._audio = audio
        self._project = project
        self._finished = finished
        # The finished completion, once a reader has it (the Responses front builds on it).
        self.result: dict[str, Any] | None = None

    @property
    def streams(self) -> bool:
        return bool(self.chat.request.stream)

    @property
    def search_results(self) -> int | None:
        """How many sources a web search gave the model (None: no search ran)."""
        return len(self.chat.sources) if self.chat.sources is not None else None

    @property
    def dropped(self) -> list[str]:
        """Parameters the server was told to accept and ignore (said in a header)."""
        return self.chat.dropped

    def cancel(self) -> None:
        self._handle.cancel()

    async def complete(self) -> dict[str, Any]:
        chat, choices = self.chat, self.chat.choices()
        try:
            async for deltas in _outputs(self._handle):
                for delta in deltas:
                    choices.add(delta)
        finally:
            self.cancel()
        completion = chat.completion(choices, self._handle)
        if chat.voice is not None and chat.request.audio is not None:
            for choice in completion["choices"]:
                message = choice["message"]
                if message.get("content"):
                    spoken = await self._audio.answer(message["content"], chat.voice, chat.request.audio.format, self._project)
                    message["audio"], message["content"] = spoken.message_audio(), None
        await self._finished(chat, completion)
        self.result = completion
        return completion

    async def stream(self) -> AsyncIterator[Chunk]:
        chat, choices = self.chat, self.chat.choices()
        writer = TextWriter(chat) if chat.voice is None else SpokenWriter(chat, self._audio, chat.voice, self._project)
        try:
            async for deltas in _outputs(self._handle):
                for delta in deltas:
                    async for chunk in writer.write(choices.add(delta)):
                        yield chunk
                async for chunk in writer.between_steps():
                    yield chunk
            completion = chat.completion(choices, self._handle)
            await self._finished(chat, completion)
            self.result = completion
            if writer.include_usage:
                yield rs.usage_chunk(writer.base, completion["usage"])
        except APIError as exc:
            yield exc.body()
        finally:
            self.cancel()
            writer.close()


class TextWriter:
    """chat.completion.chunk objects for one stream, with its options applied."""

    def __init__(self, chat: PreparedChat) -> None:
        options = chat.request.stream_options
        self.include_usage = bool(options and options.include_usage)
        self._obfuscate = not (options and options.include_obfuscation is False)
        self._logprobs = chat.generation.params.logprobs
        self._opened: set[int] = set()  # choices whose first delta (with the role) is sent
        self.base = chat.chunk_base()

    def chunk(self, index: int, delta: dict[str, Any], *, logprobs: Any = None, finish_reason: str | None = None) -> Chunk:
        obfuscation = "".join(random.choices(_OBFUSCATION_CHARS, k=random.randint(1, 16))) if self._obfuscate else None
        return rs.chunk(
            self.base,
            index,
            delta,
            logprobs=logprobs,
            finish_reason=finish_reason,
            with_usage=self.include_usage,
            obfuscation=obfuscation,
        )

    async def write(self, update: ChoiceUpdate) -> AsyncIterator[Chunk]:
        for chunk in self.chunks(update):
            yield chunk

    def chunks(self, update: ChoiceUpdate) -> list[Chunk]:
        out: list[Chunk] = []
        index = update.index
        # The delta's logprobs go with its first content chunk (or a chunk of their own).
        logprobs = (update.logprobs or []) if self._logprobs else None
        pieces = update.pieces
        if logprobs and not any(kind == "content" for kind, _ in pieces):
            pieces = [("content", ""), *pieces]
        for kind, piece in pieces:
            if kind == "reasoning":
                out += self._open(index)
                out.append(self.chunk(index, {"reasoning_content": piece}))
            elif kind == "annotations":
                out += self._open(index)
                out.append(self.chunk(index, {"annotations": piece}))
            elif kind == "content":
                out += self._open(index)
                delta = self.content_delta(index, piece)
                if delta is not None or logprobs is not None:
                    out.append(self.chunk(index, delta or {}, logprobs=rs.choice_logprobs(logprobs)))
                logprobs = [] if logprobs is not None else None
            elif piece is not None:
                out += self._open(index, piece) or [self.chunk(index, piece)]
        if update.finish_reason:
            out += self._open(index)
            out.append(self.chunk(index, {}, finish_reason=update.finish_reason))
        return out

    def content_delta(self, _index: int, text: str) -> dict[str, Any] | None:
        """The delta a piece of content is written as (None: no chunk of its own)."""
        return {"content": text}

    def role_delta(self, call: dict[str, Any] | None) -> dict[str, Any]:
        return rs.role_delta(call)

    def _open(self, index: int, call: dict[str, Any] | None = None) -> list[Chunk]:
        """A choice's first delta carries the role, as OpenAI's do: with empty content
        before text, or merged into the first call delta (content null)."""
        if index in self._opened:
            return []
        self._opened.add(index)
        return [self.chunk(index, self.role_delta(call))]

    async def between_steps(self) -> AsyncIterator[Chunk]:
        return
        yield

    def close(self) -> None:
        pass


class SpokenWriter(TextWriter):
    """A stream whose answers are spoken (``modalities: ["text", "audio"]``): each choice's
    text goes out as ``delta.audio.transcript`` (the first with the answer's ``id``) in
    place of content, its speech as ``delta.audio.data`` pieces of base64 pcm16 at 24 kHz
    as sentences are spoken, and ``delta.audio.expires_at`` before the choice's finish
    chunk. Calls, reasoning and logprobs are written as for text."""

    def __init__(self, chat: PreparedChat, audio: AudioService, voice: str, project: str) -> None:
        super().__init__(chat)
        self._audio = audio
        self._voice = voice
        self._project = project
        self._speakers: dict[int, SentenceSpeaker] = {}  # choices still speaking

    def content_delta(self, index: int, text: str) -> dict[str, Any] | None:
        if not text:
            return None
        speaker = self._speakers.get(index)
        if speaker is None:
            speaker = self._speakers[index] = SentenceSpeaker(self._audio, self._voice)
            audio = {"id": speaker.id, "transcript": text}
        else:
            audio = {"transcript": text}
        speaker.feed(text)
        return {"audio": audio}

    def role_delta(self, call: dict[str, Any] | None) -> dict[str, Any]:
        return rs.role_delta(call, content=None)  # an audio answer has no content

    async def write(self, update: ChoiceUpdate) -> AsyncIterator[Chunk]:
        chunks = self.chunks(update)
        speaker = self._speakers.pop(update.index, None) if update.finish_reason else None
        finish = chunks.pop() if speaker is not None else None
        for chunk in chunks:
            yield chunk
        if speaker is not None and finish is not None:  # the rest of the speech, then the finish
            async for data in speaker.finish():
                yield self.chunk(update.index, {"audio": {"data": data}})
            _, expires_at = await self._audio.remember(self._project, speaker.text, speaker.id)
            yield self.chunk(update.index, {"audio": {"expires_at": expires_at}})
            yield finish

    async def between_steps(self) -> AsyncIterator[Chunk]:
        for index, speaker in self._speakers.items():
            async for data in speaker.ready():
                yield self.chunk(index, {"audio": {"data": data}})

    def close(self) -> None:
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


async def admitted(handle: GenerationHandle) -> GenerationHandle:
    """Wait for the request's slots; a failure is the API's error, and a caller that is
    cancelled (its client left) cancels the request."""
    try:
        await handle.wait_admitted()
    except BackendFailure as failure:
        raise as_api_error(failure) from None
    except asyncio.CancelledError:
        handle.cancel()
        raise
    return handle
