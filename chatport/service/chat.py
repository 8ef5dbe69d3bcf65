"""Chat semantics: a validated request becomes a prompt and a generation request, and
the engine's step outputs become a chat.completion or a stream of chunks."""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from chatport.engine.constraint import Constraint
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
from chatport.protocol.errors import unsupported_parameter
from chatport.service.checks import check_request
from chatport.service.messages import to_template_messages
from chatport.service.models import ModelRegistry, ServedModel
from chatport.service.stored import StoredCompletions
from chatport.service.structured import grammar_for, schema_error
from chatport.service.tools import (
    ToolCallParser,
    ToolPlan,
    add_tools_to_messages,
    grammars_for,
    plan_tools,
    tool_call_entry,
    tools_error,
)

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
    raw_messages: list[dict[str, Any]]
    tools: ToolPlan | None = None

    @property
    def n(self) -> int:
        return self.generation.n

    @property
    def store(self) -> bool:
        return bool(self.request.store)


@dataclass
class Visible:
    """What one engine delta means for one choice, as the client should see it."""

    index: int
    content: str = ""
    logprobs: list[Any] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None


class Choices:
    """What the choices have produced so far; becomes the chat.completion object."""

    def __init__(self, chat: PreparedChat) -> None:
        self.chat = chat
        n = chat.n
        self.texts = [""] * n
        self.calls: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        self.logprobs: list[list[Any] | None] = [[] if chat.generation.params.logprobs else None for _ in range(n)]
        self.finish: list[str | None] = [None] * n
        self.completion_tokens = 0
        self._parsers = [ToolCallParser() for _ in range(n)] if chat.tools and chat.tools.active else None

    @property
    def done(self) -> bool:
        return None not in self.finish

    def add(self, delta: Any) -> Visible:
        i = delta.index
        seen = Visible(i, logprobs=delta.logprobs)
        if self._parsers is None:
            seen.content = delta.text
        else:
            seen.content, calls = self._parsers[i].feed(delta.text)
            if delta.finish_reason:
                rest, last = self._parsers[i].finish()
                seen.content += rest
                calls += last
            seen.calls = [tool_call_entry(c) for c in calls]
            self.calls[i].extend(seen.calls)
        self.texts[i] += seen.content
        if delta.logprobs and self.logprobs[i] is not None:
            self.logprobs[i].extend(delta.logprobs)
        if delta.finish_reason:
            reason = delta.finish_reason
            if self.calls[i] and reason == "stop":
                reason = "function_call" if self.chat.tools.legacy else "tool_calls"
            self.finish[i] = seen.finish_reason = reason
            self.completion_tokens += delta.completion_tokens
        return seen

    def message(self, i: int) -> dict[str, Any]:
        calls = self.calls[i]
        if not calls:
            return rs.assistant_message(self.texts[i])
        content = _strip_fence(self.texts[i]).strip() or None
        message = rs.assistant_message(content)
        if self.chat.tools.legacy:
            message["function_call"] = dict(calls[0]["function"])
        else:
            message["tool_calls"] = calls
        return message

    def completion(self, handle: RequestHandle) -> dict[str, Any]:
        chat = self.chat
        choices = [
            {
                "index": i,
                "message": self.message(i),
                "logprobs": rs.choice_logprobs(self.logprobs[i]),
                "finish_reason": self.finish[i],
            }
            for i in range(chat.n)
        ]
        return rs.completion(
            id=chat.id,
            created=chat.created,
            model=chat.model.id,
            choices=choices,
            usage=self.usage(handle),
            service_tier=chat.service_tier,
            system_fingerprint=chat.model.fingerprint,
        )

    def usage(self, handle: RequestHandle) -> dict[str, Any]:
        return rs.usage(handle.prompt_tokens, self.completion_tokens, handle.cached_tokens)


class ChatService:
    def __init__(self, registry: ModelRegistry, stored: StoredCompletions | None = None) -> None:
        self.registry = registry
        self.stored = stored

    async def prepare(self, body: dict[str, Any]) -> PreparedChat:
        request = validate(ChatCompletionRequest, body)
        model = self.registry.resolve(request.model)
        check_request(request, max_choices=model.engine.config.max_seqs)
        messages = to_template_messages(
            request.messages, model=model.id, developer_as_system=not model.template.knows_developer_role
        )
        grammar = grammar_for(request, model, messages)
        grammar_error = schema_error(request) if grammar else None
        tools = plan_tools(request)
        lazy = None
        template_tools = None
        if tools is not None and tools.active:
            tool_grammar, lazy = grammars_for(tools, model)
            if tool_grammar is not None:
                grammar, grammar_error = tool_grammar, tools_error  # a call is required from the first token
            elif grammar is not None:
                lazy = None  # a structured answer and its grammar win over optional calls
            messages = add_tools_to_messages(messages, tools, model.template.knows_tools)
            template_tools = [t for t in tools.template_tools if t["function"]["name"] in tools.callable]
        text = model.template.render(messages, tools=template_tools if model.template.knows_tools else None)
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
            constraint=await _compile(model, grammar, grammar_error) if grammar else None,
            lazy_constraints=tuple([(t, await _compile(model, g, tools_error)) for t, g in lazy]) if lazy else None,
        )
        return PreparedChat(
            request, model, generation, rs.random_id("chatcmpl-"), int(time.time()), tier, list(body["messages"]), tools
        )

    async def start(self, chat: PreparedChat) -> RequestHandle:
        """Queue the request and wait for its slot, so that a full or slow queue (or a
        store that is down, for store=true) is answered before any response has begun."""
        if chat.store:
            if self.stored is None:
                raise unsupported_parameter("store", "by this server: it runs without a completion store")
            await self.stored.ping()
        try:
            handle = chat.model.engine.submit(chat.generation)
            await handle.wait_admitted()
        except EngineFailure as failure:
            raise _as_api_error(failure) from None
        return handle

    async def complete(self, chat: PreparedChat, handle: RequestHandle, project: str) -> dict[str, Any]:
        choices = Choices(chat)
        try:
            while not choices.done:
                for delta in await _outputs(handle):
                    choices.add(delta)
        finally:
            handle.cancel()
        completion = choices.completion(handle)
        await self._store(chat, project, completion)
        return completion

    async def _store(self, chat: PreparedChat, project: str, completion: dict[str, Any]) -> None:
        # Stored before the client sees the response: what a client received is on disk.
        if chat.store and self.stored is not None:
            await self.stored.save(project, completion, chat.request.metadata or {}, chat.raw_messages)

    async def stream(self, chat: PreparedChat, handle: RequestHandle, project: str) -> AsyncIterator[dict[str, Any]]:
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
            choices = Choices(chat)
            while not choices.done:
                try:
                    deltas = await _outputs(handle)
                except APIError as exc:
                    yield exc.body()
                    return
                for delta in deltas:
                    seen = choices.add(delta)
                    if seen.content or seen.logprobs:
                        yield chunk(
                            {
                                "index": seen.index,
                                "delta": {"content": seen.content},
                                "logprobs": rs.choice_logprobs(seen.logprobs) if want_logprobs else None,
                                "finish_reason": None,
                            }
                        )
                    for call in seen.calls:
                        for piece in _call_deltas(chat, choices, seen.index, call):
                            yield chunk({"index": seen.index, "delta": piece, "logprobs": None, "finish_reason": None})
                    if seen.finish_reason:
                        yield chunk({"index": seen.index, "delta": {}, "logprobs": None, "finish_reason": seen.finish_reason})
            try:
                await self._store(chat, project, choices.completion(handle))
            except APIError as exc:
                yield exc.body()
                return
            if include_usage:
                yield {**base, "choices": [], "usage": choices.usage(handle)}
        finally:
            handle.cancel()


# Grammars compile off the event loop and the engine thread; one that takes longer than
# this is refused rather than allowed to hold anything up.
GRAMMAR_COMPILE_SECONDS = 10.0


async def _compile(model: ServedModel, grammar: str, error) -> Constraint:
    try:
        return await asyncio.wait_for(asyncio.to_thread(Constraint, model.llama, grammar), GRAMMAR_COMPILE_SECONDS)
    except ValueError as exc:
        raise error(str(exc).strip().splitlines()[0]) from None
    except asyncio.TimeoutError:
        raise error(f"the grammar did not compile within {GRAMMAR_COMPILE_SECONDS:.0f} seconds") from None


def _strip_fence(text: str) -> str:
    """Content written ahead of a call in a ```json fence is the fence's, not an answer."""
    stripped = text.rstrip()
    for opener in ("```json", "```"):
        if stripped.endswith(opener):
            return stripped[: -len(opener)]
    return text


def _call_deltas(chat: PreparedChat, choices: Choices, index: int, call: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAI's shape for a streamed call: a first delta with id, type, name and empty
    arguments, then the arguments."""
    position = choices.calls[index].index(call)
    if call["type"] == "custom":
        custom = call["custom"]
        return [
            {"tool_calls": [{"index": position, "id": call["id"], "type": "custom", "custom": {"name": custom["name"], "input": ""}}]},
            {"tool_calls": [{"index": position, "custom": {"input": custom["input"]}}]},
        ]
    fn = call["function"]
    if chat.tools.legacy:
        return [{"function_call": {"name": fn["name"], "arguments": ""}}, {"function_call": {"arguments": fn["arguments"]}}]
    return [
        {"tool_calls": [{"index": position, "id": call["id"], "type": "function", "function": {"name": fn["name"], "arguments": ""}}]},
        {"tool_calls": [{"index": position, "function": {"arguments": fn["arguments"]}}]},
    ]


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
