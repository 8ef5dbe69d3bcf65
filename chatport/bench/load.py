"""Streaming clients driven through the official async SDK, measured per token."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.progress import Progress

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletionMessageParam as Message


@dataclass
class RequestRecord:
    ttft: float
    gaps: list[float]
    tokens: int
    seconds: float
    cached_tokens: int = 0


@dataclass
class LevelResult:
    server: str
    concurrency: int
    wall_seconds: float
    records: list[RequestRecord] = field(default_factory=list)
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def output_tokens(self) -> int:
        return sum(r.tokens for r in self.records)

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.wall_seconds if self.wall_seconds else 0.0

    def ttft(self, q: float) -> float:
        return percentile([r.ttft for r in self.records], q)

    def itl(self, q: float) -> float:
        return percentile([g for r in self.records for g in r.gaps], q)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def one_request(
    client: AsyncOpenAI, model: str, messages: list[Message], max_tokens: int, extra_body: dict[str, Any] | None
) -> RequestRecord:
    started = time.perf_counter()
    stamps: list[float] = []
    tokens = 0
    cached = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=0.7,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=extra_body,
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.perf_counter())
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
            details = chunk.usage.prompt_tokens_details
            cached = (details.cached_tokens or 0) if details else 0
    end = time.perf_counter()
    if not tokens:
        tokens = len(stamps)  # servers that do not report usage in streams
    ttft = (stamps[0] if stamps else end) - started
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return RequestRecord(ttft, gaps, tokens, end - started, cached)


async def run_level(
    *,
    base_url: str,
    server: str,
    model: str,
    concurrency: int,
    requests: int,
    max_tokens: int,
    extra_body: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> LevelResult:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=600)
    queue: asyncio.Queue[list[Message]] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait([{"role": "user", "content": f"Write a detailed story about a lighthouse keeper, chapter {i}."}])
    result = LevelResult(server, concurrency, 0.0)
    task = progress.add_task(f"{server} x{concurrency}", total=requests) if progress else None

    async def worker() -> None:
        while not queue.empty():
            messages = queue.get_nowait()
            try:
                result.records.append(await one_request(client, model, messages, max_tokens, extra_body))
            except Exception as exc:  # counted and shown, the level goes on
                result.errors += 1
                result.extra.setdefault("first_error", repr(exc)[:300])
            if progress is not None and task is not None:
                progress.advance(task)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall_seconds = time.perf_counter() - started
    await client.close()
    return result


async def shared_prefix_ttft(*, base_url: str, model: str, prefix_tokens_hint: int = 1000) -> dict[str, float]:
    """TTFT of a request with a long shared system prompt: first (cold) and repeated (warm)."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=600)
    # About 1,000 tokens of system prompt (each sentence is ~10 tokens).
    system = " ".join(f"Rule {i}: always answer politely and precisely." for i in range(prefix_tokens_hint // 10))
    results = {}
    for label, question in (("cold", "What is rule 3?"), ("warm", "What is rule 7?")):
        messages: list[Message] = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        record = await one_request(client, model, messages, 8, None)
        results[f"{label}_ttft"] = record.ttft
        results[f"{label}_cached_tokens"] = record.cached_tokens
    await client.close()
    return results
