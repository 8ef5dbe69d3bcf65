"""Chat semantics: a validated request becomes a prompt and a generation request, and
the engine's step outputs become a chat.completion or a stream of chunks."""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from chatport.engine.sampler import SamplingParams
from chatport.engine.sequence import EngineFailure, GenerationRequest, QueueFull, QueueTimeout, RequestHandle
from chatport.protocol import responses as rs
from chatport.protocol.errors import (
    APIError,
    InvalidRequestError,
    OverloadedError,
    RateLimitError,
    context_length_exceeded,
)
from chatport.protocol.requests import ChatCompletionRequest
from chatport.protocol.validation import validate
from chatport.service.checks import check_request
from chatport.service.messages import to_template_messages
from chatport.service.models import ModelRegistry, ServedModel

_PRIORITY = {"priority": 0, "flex": 2}
_OBFUSCATION_CHARS = string.ascii_letters + string.digits


@dataclass
class PreparedChat:
    request: ChatCompletionRequest
    model: ServedModel
    generation: GenerationRequest
    id: str
    created: int
    service_tier: str

    @property
    def n(self) -> int:
        return self.generation.n


class ChatService:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    async def prepare(self, body: dict[str, Any]) -> PreparedChat:
        request = validate(ChatCompletionRequest, body)
        model = self.registry.resolve(request.model)
        check_request(request, max_choices=model.engine.config.max_seqs)
        messages = to_template_messages(
            request.messages, model=model.id, developer_as_system=not model.template.knows_developer_role
        )
        text = model.template.render(messages)
        # Tokenizing a multi-megabyte prompt takes a while: keep the event loop serving.
        prompt = await asyncio.to_thread(model.tokenize_prompt, text)
        max_tokens = request.max_completion_tokens or request.max_tokens
        _check_context(len(prompt), max_tokens, model.context_limit)
        tier = request.service_tier if request.service_tier in ("priority", "flex", "scale") else "default"
        generation = GenerationRequest(
            prompt=prompt,
            params=_sampling_params(request, model),
            n=request.n or 1,
            max_tokens=max_tokens,
            stop=(request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ()),
            priority=_PRIORITY.get(tier, 1),
            cache_key=request.prompt_cache_key,
        )
        return PreparedChat(request, model, generation, rs.random_id("chatcmpl-"), int(time.time()), tier)

    async def start(self, chat: PreparedChat) -> RequestHandle:
        """Queue the request and wait for its slot, so that a full or slow queue is
        answered with 429/503 before any response (or stream) has begun."""
        try:
            handle = chat.model.engine.submit(chat.generation)
            await handle.wait_admitted()
        except EngineFailure as failure:
            raise _as_api_error(failure) from None
        return handle

    async def complete(self, chat: PreparedChat, handle: RequestHandle) -> dict[str, Any]:
        texts = [""] * chat.n
        logprobs: list[list[Any] | None] = [[] if chat.generation.params.logprobs else None for _ in range(chat.n)]
        finish: list[str | None] = [None] * chat.n
        completion_tokens = 0
        try:
            while None in finish:
                for delta in await _outputs(handle):
                    texts[delta.index] += delta.text
                    if delta.logprobs and logprobs[delta.index] is not None:
                        logprobs[delta.index].extend(delta.logprobs)
                    if delta.finish_reason:
                        finish[delta.index] = delta.finish_reason
                        completion_tokens += delta.completion_tokens
        finally:
            handle.cancel()
        choices = [
            {
                "index": i,
                "message": rs.assistant_message(texts[i]),
                "logprobs": rs.choice_logprobs(logprobs[i]),
                "finish_reason": finish[i],
            }
            for i in range(chat.n)
        ]
        return rs.completion(
            id=chat.id,
            created=chat.created,
            model=chat.model.id,
            choices=choices,
            usage=rs.usage(handle.prompt_tokens, completion_tokens, handle.cached_tokens),
            service_tier=chat.service_tier,
            system_fingerprint=chat.model.fingerprint,
        )

    async def stream(self, chat: PreparedChat, handle: RequestHandle) -> AsyncIterator[dict[str, Any]]:
        options = chat.request.stream_options
        include_usage = bool(options and options.include_usage)
        obfuscate = not (options and options.include_obfuscation is False)
        want_logprobs = chat.generation.params.logprobs
        base = {
            "id": chat.id,
            "object": "chat.completion.chunk",
            "created": chat.created,
            "model": chat.model.id,
            "service_tier": chat.service_tier,
            "system_fingerprint": chat.model.fingerprint,
        }

        def chunk(choice: dict[str, Any]) -> dict[str, Any]:
            out = {**base, "choices": [choice]}
            if include_usage:
                out["usage"] = None
            if obfuscate:
                out["obfuscation"] = _obfuscation()
            return out

        try:
            for i in range(chat.n):
                yield chunk(
                    {"index": i, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}
                )
            unfinished, completion_tokens = chat.n, 0
            while unfinished:
                try:
                    deltas = await _outputs(handle)
                except APIError as exc:
                    yield exc.body()
                    return
                for delta in deltas:
                    if delta.text or delta.logprobs:
                        yield chunk(
                            {
                                "index": delta.index,
                                "delta": {"content": delta.text},
                                "logprobs": rs.choice_logprobs(delta.logprobs) if want_logprobs else None,
                                "finish_reason": None,
                            }
                        )
                    if delta.finish_reason:
                        unfinished -= 1
                        completion_tokens += delta.completion_tokens
                        yield chunk({"index": delta.index, "delta": {}, "logprobs": None, "finish_reason": delta.finish_reason})
            if include_usage:
                yield {**base, "choices": [], "usage": rs.usage(handle.prompt_tokens, completion_tokens, handle.cached_tokens)}
        finally:
            handle.cancel()


async def _outputs(handle: RequestHandle) -> list[Any]:
    try:
        return await handle.next_outputs()
    except EngineFailure as failure:
        raise _as_api_error(failure) from None


def _as_api_error(failure: EngineFailure) -> APIError:
    if isinstance(failure, QueueFull):
        return RateLimitError(
            "Too many requests are waiting for this model. Please retry after a brief wait.",
            code="rate_limit_exceeded",
        )
    if isinstance(failure, QueueTimeout):
        return OverloadedError(
            "The server is currently overloaded with other requests. Sorry about that! Please retry after a brief wait.",
            code="server_overloaded",
        )
    return APIError(f"The model failed while generating: {failure}")


def _obfuscation() -> str:
    return "".join(random.choices(_OBFUSCATION_CHARS, k=random.randint(1, 16)))


def _check_context(prompt_tokens: int, max_tokens: int | None, limit: int) -> None:
    if prompt_tokens >= limit:
        raise context_length_exceeded(limit, prompt_tokens)
    if max_tokens is not None and prompt_tokens + max_tokens > limit:
        raise InvalidRequestError(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in the "
            f"completion). Please reduce the length of the messages or completion.",
            param="messages",
            code="context_length_exceeded",
        )


def _sampling_params(request: ChatCompletionRequest, model: ServedModel) -> SamplingParams:
    bias = []
    for key, value in (request.logit_bias or {}).items():
        token = int(key)
        if token >= model.llama.n_vocab:
            raise InvalidRequestError(
                f"Invalid key in 'logit_bias': {key} is not a token id of model `{model.id}` "
                f"(its vocabulary has {model.llama.n_vocab} tokens).",
                param="logit_bias",
                code="invalid_value",
            )
        bias.append((token, float(value)))
    return SamplingParams(
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        presence_penalty=request.presence_penalty or 0.0,
        frequency_penalty=request.frequency_penalty or 0.0,
        logit_bias=tuple(bias),
        seed=request.seed,
        logprobs=bool(request.logprobs),
        top_logprobs=request.top_logprobs or 0,
    )
