"""A validated request -> what the backend generates: the prompt, sampling parameters,
grammars (structured output or tool calls) and limits."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from chatport.protocol.backend import GenerationRequest, Grammar, LazyGrammar, SamplingParams
from chatport.protocol.errors import InvalidRequestError, context_length_exceeded
from chatport.protocol.prompt import Image
from chatport.protocol.requests import ChatCompletionRequest
from chatport.service.decoding import DecodingPlan, GrammarError, plan_decoding
from chatport.service.fetch import UrlFetcher
from chatport.service.files import FileWork
from chatport.service.images import ImagePlacer, PixelBudget, load_images
from chatport.service.messages import has_files, to_template_messages
from chatport.service.models import ServedModel
from chatport.service.prompt import NO_REASONING, build_prompt
from chatport.service.search.sources import with_sources
from chatport.service.structured import answer_schema, schema_error
from chatport.service.tools import add_tool_notes
from chatport.service.tools.plan import ToolPlan, plan_tools, tools_error
from chatport.service.workers import WorkerPools, run_stoppable

# service_tier as requested -> (the tier that serves it, as the response names it; queue priority).
# "auto" is the project's tier, "default" here; "fast" is priority processing and is echoed
# as "priority", as OpenAI does; "flex" waits behind everything else; "scale" is reserved
# capacity, served at default priority on a local machine.
_TIERS = {
    None: ("default", 1),
    "auto": ("default", 1),
    "default": ("default", 1),
    "scale": ("scale", 1),
    "priority": ("priority", 0),
    "fast": ("priority", 0),
    "flex": ("flex", 2),
}

# Grammars compile in their own pool, off the event loop and the engine thread; one that
# takes longer than this (queueing included) is refused rather than allowed to hold anything up.
GRAMMAR_COMPILE_SECONDS = 10.0


def service_tier(request: ChatCompletionRequest) -> str:
    return _TIERS[request.service_tier][0]


@dataclass(frozen=True)
class Heard:
    """What audio brought into the prompt: each input part's transcript, and earlier
    spoken answers referred to by id (message index -> transcript)."""

    transcripts: tuple[str, ...] = ()
    spoken: Mapping[int, str] = field(default_factory=dict)


async def generation_for(
    request: ChatCompletionRequest,
    model: ServedModel,
    pools: WorkerPools,
    fetcher: UrlFetcher | None = None,
    heard: Heard | None = None,
    project: str = "default",
    pixels: PixelBudget | None = None,
    sources: str | None = None,
) -> tuple[GenerationRequest, ToolPlan | None, DecodingPlan]:
    """``project``: whose cached prompts the generation may reuse (only its own);
    ``pixels``: the decoded-image memory all requests share; ``sources``: a web search's
    block, put before the last user message."""
    pixels = pixels or PixelBudget()
    held = 0
    try:
        if model.capabilities.vision:
            loaded = await load_images(request.messages, fetcher or UrlFetcher(), pools.images, pixels)
            held = sum(image.width * image.height for image in loaded)
        return await _generation(request, model, pools, heard or Heard(), project, loaded if held else [], sources)
    finally:
        await pixels.give(held)  # the images are encoded into the prompt, or the request failed


async def _generation(
    request: ChatCompletionRequest,
    model: ServedModel,
    pools: WorkerPools,
    heard: Heard,
    project: str,
    loaded: list[Image],
    sources: str | None,
) -> tuple[GenerationRequest, ToolPlan | None, DecodingPlan]:
    compiler = _Compiler(model, pools.grammar)
    placer = ImagePlacer(loaded) if model.capabilities.vision else None
    convert = partial(
        to_template_messages,
        request.messages,
        model=model.id,
        template=model.template,
        reasoning=model.reasoning,
        images=placer,
        transcripts=heard.transcripts,
        spoken=heard.spoken,
    )
    # Files are read (PDFs) in the files pool, within their budget; plain messages are not worth the hop.
    if has_files(request.messages):
        messages = await run_stoppable(pools.files, lambda stop: convert(files=FileWork(stop)))
    else:
        messages = convert()
    asked = messages  # as the client wrote them (json_object looks for "json" here, not in pages)
    if sources is not None:
        messages = with_sources(messages, sources)
    images = placer.prompt_images() if placer is not None else None
    reasoning = model.reasoning_plans.get(request.reasoning_effort, NO_REASONING)
    tools = plan_tools(request)
    decoding = plan_decoding(
        answer_schema(request, asked),
        schema_error(request),
        tools,
        model.tool_format,
        model.literal,
        model.backend.vocabulary,
        reasoning.visible,
    )
    for grammar, error in decoding.checks:  # each checked on its own, so that its 400 names it
        await compiler.compile(grammar, error)
    # Images are encoded as the prompt is built: in the images pool, so they cannot hold up plain prompts.
    builder_pool = pools.images if images is not None else pools.prompt
    prompt = await build_prompt(model.prompts, builder_pool, *template_inputs(messages, tools, model), reasoning, images)
    prediction = (
        await asyncio.get_running_loop().run_in_executor(pools.prompt, predicted_tokens, request, model)
        if request.prediction
        else ()
    )
    max_tokens = request.max_completion_tokens or request.max_tokens
    check_context(len(prompt), max_tokens, model.capabilities.context_length)
    generation = GenerationRequest(
        prompt=prompt,
        params=sampling_params(request, model.backend.vocabulary.size, model.id),
        n=request.n or 1,
        max_tokens=max_tokens,
        stop=(request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ()),
        priority=_TIERS[request.service_tier][1],
        cache_scope=project,
        cache_key=request.prompt_cache_key,
        cache_retention="24h" if request.prompt_cache_retention == "24h" else None,
        grammar=await compiler.compile(decoding.grammar, decoding.grammar_error) if decoding.grammar else None,
        lazy_grammars=tuple([LazyGrammar(t, await compiler.compile(g, tools_error)) for t, g in decoding.lazy]),
        visible_control_tokens=decoding.visible,
        prediction=prediction,
        thinking=reasoning.thinking,
    )
    return generation, tools, decoding


def predicted_tokens(request: ChatCompletionRequest, model: ServedModel) -> tuple[int, ...]:
    """The prediction as the model would write it (plain text: control tokens stay text).
    No answer is longer than the context, so neither is a useful prediction."""
    assert request.prediction is not None
    content = request.prediction.content
    text = content if isinstance(content, str) else "".join(part.text for part in content)
    limit = model.capabilities.context_length
    text = text[: limit * model.backend.vocabulary.max_token_bytes]
    return tuple(model.backend.tokenize(text, special=False)[:limit])


def template_inputs(
    messages: list[dict[str, Any]], tools: ToolPlan | None, model: ServedModel
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """What the chat template gets: the messages (with notes for what it cannot show, and
    earlier calls adapted to it) and the tools it renders itself."""
    fmt = model.tool_format
    template_tools = None
    if tools is not None and tools.active:
        messages = add_tool_notes(messages, tools, fmt)
        if fmt.native:
            template_tools = [t for t in tools.template_tools if t["function"]["name"] in tools.callable]
    return fmt.prepare_history(messages), template_tools


@dataclass(frozen=True)
class _Compiler:
    model: ServedModel
    pool: ThreadPoolExecutor

    async def compile(self, grammar: str, error: GrammarError) -> Grammar:
        job = asyncio.get_running_loop().run_in_executor(self.pool, self.model.backend.compile_grammar, grammar)
        try:
            return await asyncio.wait_for(job, GRAMMAR_COMPILE_SECONDS)
        except ValueError as exc:
            raise error(str(exc).strip().splitlines()[0]) from None
        except TimeoutError:
            raise error(f"the grammar did not compile within {GRAMMAR_COMPILE_SECONDS:.0f} seconds") from None


def check_context(prompt_tokens: int, max_tokens: int | None, limit: int) -> None:
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


def sampling_params(request: ChatCompletionRequest, vocab_size: int, model_id: str) -> SamplingParams:
    bias = []
    for key, value in (request.logit_bias or {}).items():
        # No vocabulary has 10**18 tokens; longer keys are not parsed (int() of 5,000 digits raises).
        token = int(key) if len(key) < 19 else vocab_size
        if token >= vocab_size:
            raise InvalidRequestError(
                f"Invalid key in 'logit_bias': {key if len(key) <= 40 else key[:40] + '...'} is not a token id of model `{model_id}` "
                f"(its vocabulary has {vocab_size} tokens).",
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
