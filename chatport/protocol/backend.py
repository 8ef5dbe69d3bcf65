"""The seam between chat semantics and a model runtime.

``service/`` talks to a model only through :class:`Backend`; the llama.cpp engine is one
implementation (``engine.backend.LlamaBackend``). A second one (vLLM on a GPU, a remote
replica) implements the same protocol and needs no change in ``service/`` or ``api/``.

What crosses the seam is token ids, sampling parameters, compiled grammars and text
deltas: never HTTP, JSON shapes or chat messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from chatport.protocol.prompt import Image, Prompt, Segment

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0


class Grammar(Protocol):
    """A grammar compiled for one backend's vocabulary; opaque to the service."""


TRIGGER_WINDOW = 1024


@dataclass(frozen=True)
class LazyGrammar:
    """Decode freely until the output matches the regex ``trigger``, then follow
    ``grammar`` (tool calls in ``auto`` mode): the grammar takes the output from where the
    match's group ``call`` starts (text already written there is fed into it), or from
    right after the match when it has no such group. A match spans at most
    ``TRIGGER_WINDOW`` characters."""

    trigger: str
    grammar: Grammar


@dataclass(frozen=True)
class Thinking:
    """The answer opens with a think block (a reasoning model's): ``open_tokens`` are
    forced first (none when the prompt already opened the block), the block ends where the
    output writes ``end``, and once ``budget`` tokens have been spent inside it,
    ``close_tokens`` are forced to end it. A grammar applies only after the block."""

    end: str
    close_tokens: tuple[int, ...]
    open_tokens: tuple[int, ...] = ()
    budget: int | None = None  # None: no limit but the answer's own


@dataclass(frozen=True)
class GenerationRequest:
    prompt: Prompt
    params: SamplingParams
    n: int = 1
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    priority: int = 1  # 0 runs first, 2 last; FIFO within a priority
    # Whose cached prompt state this request may reuse (the project): prefixes are reused,
    # kept and restored only within one scope, so no request can learn, from its speed or
    # its cached_tokens, what another project's prompts held.
    cache_scope: str = ""
    cache_key: str | None = None
    # "24h": keep the prompt's KV on disk for a day (prompt_cache_retention); else memory only
    cache_retention: Literal["in_memory", "24h"] | None = None
    grammar: Grammar | None = None  # every choice follows it from the first token of the answer
    lazy_grammars: tuple[LazyGrammar, ...] = ()  # the earliest trigger in the output wins
    # Control tokens whose text is part of the output (a format's call marker such as
    # Mistral's [TOOL_CALLS]); every other control token is invisible, as in llama.cpp.
    visible_control_tokens: frozenset[int] = frozenset()
    # A predicted answer (predicted outputs): drafted from, verified, never forced.
    prediction: tuple[int, ...] = ()
    thinking: Thinking | None = None


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    bytes: list[int]
    logprob: float
    top: list[TokenLogprob] = field(default_factory=list)


@dataclass
class ChoiceDelta:
    """What one choice produced in one step."""

    index: int
    text: str = ""
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None
    completion_tokens: int = 0  # set with finish_reason
    accepted_prediction_tokens: int = 0  # set with finish_reason: prediction tokens the answer has
    rejected_prediction_tokens: int = 0  # set with finish_reason: prediction tokens it has not
    reasoning_tokens: int = 0  # set with finish_reason: tokens of the think block, its tags included


class BackendFailure(Exception):
    """The backend could not finish a request (reported to that request only)."""


class QueueFull(BackendFailure):
    """Too many requests are already waiting for a slot."""


class QueueTimeout(BackendFailure):
    """The request waited longer than the queue timeout without getting a slot."""


class ShuttingDown(BackendFailure):
    """The server stopped the request because it is shutting down."""


class GenerationHandle(Protocol):
    """The caller's side of a submitted request."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens whose KV was reused (known once admitted)."""
        ...

    async def wait_admitted(self) -> None:
        """Returns once the request holds its slots; raises a BackendFailure if it never will."""
        ...

    def __aiter__(self) -> AsyncIterator[list[ChoiceDelta]]:
        """Each step's deltas, until every choice has finished; raises BackendFailure."""
        ...

    def cancel(self) -> None:
        """Stop generating and free the slots (idempotent)."""
        ...


@dataclass(frozen=True)
class Vocabulary:
    """What the service needs to know of the tokenizer to build prompts safely."""

    size: int
    bos_id: int  # -1: none
    bos_text: str
    eos_text: str
    add_bos: bool  # the model expects a BOS token before every prompt
    # Text -> id of every token the tokenizer matches as a whole in special mode
    # (control and user-defined tokens), and which of them are control tokens.
    special: Mapping[str, int]
    control: frozenset[str]
    max_token_bytes: int  # the longest token's UTF-8 length: a cheap bound on token counts


@dataclass(frozen=True)
class ModelCapabilities:
    context_length: int  # tokens per sequence (prompt and completion)
    max_choices: int  # most sequences one request may run (n)
    chat_template: str | None  # the model's own Jinja template, if it ships one
    fingerprint: str
    created: int  # unix time the weights were made available
    vision: bool = False
    audio: bool = False


@dataclass(frozen=True)
class ReplicaStats:
    """One engine replica of a backend that runs several (Ray Serve)."""

    name: str
    alive: bool
    running: int
    waiting: int
    tokens: int
    requests: int  # generation requests it has taken since it started
    pid: int = 0  # its process, where it runs


@dataclass(frozen=True)
class BackendStats:
    running: int  # sequences holding a slot
    waiting: int  # requests queued for one
    steps: int
    tokens: int  # tokens sampled
    decode_seconds: float  # time inside the model's forward pass
    step_seconds: float  # time of whole steps
    alive: bool = True  # the runtime can still take work (its thread has not died)
    idle_seconds: float = 0.0  # since the last step, or since start; large with work waiting means stuck
    # Requests that got their first token, and the sum of their waits for it (queue and
    # prefill): a reader takes the difference of two readings for the recent mean.
    first_tokens: int = 0
    first_token_seconds: float = 0.0
    # Forward passes the steps ran as: one per step when the batch's sequences allow it.
    graphs: int = 0
    # Prompt cells of admitted requests, and of those the cells whose KV was reused, exactly
    # (responses report cached_tokens in whole blocks; an operator's hit rate needs no rounding).
    prompt_tokens: int = 0
    cached_tokens: int = 0
    # Draft tokens verified and accepted, by where they came from ("prediction": the
    # client's; "context": the request's own prompt and output).
    drafted_tokens: tuple[tuple[str, int], ...] = ()
    accepted_draft_tokens: tuple[tuple[str, int], ...] = ()
    replicas: tuple[ReplicaStats, ...] = ()  # empty for a backend that is one engine


class Backend(Protocol):
    """One served model's runtime."""

    @property
    def capabilities(self) -> ModelCapabilities: ...

    @property
    def vocabulary(self) -> Vocabulary: ...

    def submit(self, request: GenerationRequest) -> GenerationHandle:
        """Queue a request (from the event loop). A request the backend cannot take (a full
        queue: QueueFull) fails through its handle, before any output."""
        ...

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        """``special``: match control and user-defined tokens written in ``text``."""
        ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def encode_image(self, image: Image) -> list[Segment]:
        """The image as prompt segments: the model's own markup around it as token runs,
        and its embeddings as media chunks. Blocking (runs the vision encoder): call it
        off the event loop. Only for a backend whose capabilities say ``vision``."""
        ...

    def compile_grammar(self, grammar: str) -> Grammar:
        """Blocking and possibly slow: call it off the event loop. Raises ValueError."""
        ...

    def stats(self) -> BackendStats: ...

    def abort_all(self, failure: BackendFailure) -> None:
        """Fail every queued and running request with ``failure`` (callable from any thread);
        requests submitted afterwards run as usual."""
        ...

    def close(self) -> None: ...
