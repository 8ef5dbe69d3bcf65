"""One search per request with ``web_search_options``: the query (the last user turn, or
up to three the model writes), the engine's results, their pages read within a time
limit, and the numbered sources block within the context size's token budget.

An engine that is down answers 502 and one that is slow 504 (OpenAI's ``api_error``,
param ``web_search_options``), both within the engine's timeout; a page that does not
load in time, or is not a page, leaves its result with the engine's snippet, so one page
never fails an answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chatport.protocol.errors import APIError, InvalidRequestError
from chatport.protocol.requests import TextPart, UserMessage, WebSearchOptions
from chatport.service.fetch import FetchError, UrlFetcher, Wanted
from chatport.service.search.backends import SearchBackend, SearchFailure, SearchHit, SearchQuery
from chatport.service.search.pages import PAGE_TYPES, page_text
from chatport.service.search.sources import (
    CONTEXT_SHARE,
    Source,
    context_size,
    fit_texts,
    location_line,
    sources_block,
)

log = logging.getLogger("chatport.search")

PAGE = Wanted("text/html,application/xhtml+xml,text/plain;q=0.9", PAGE_TYPES, "a web page", 2 * 1024 * 1024)
PAGE_SECONDS = 5.0  # for all of a search's pages together
MAX_QUERY_CHARS = 400  # engines cut or refuse longer queries
MAX_QUERIES = 3  # written by the model (--web-search-queries model)

# Writes up to MAX_QUERIES queries for a question (the chat service runs it on the model).
QueryWriter = Callable[[str], Awaitable[list[str]]]


@dataclass(frozen=True)
class SearchContext:
    """What a search brought: the sources in the order they are numbered, and the block
    that goes into the prompt."""

    sources: tuple[Source, ...]
    block: str
    queries: tuple[str, ...]


@dataclass
class SearchStats:
    """Counters for /metrics, per engine."""

    backend: str
    searches: int = 0
    failures: dict[str, int] = field(default_factory=lambda: {"down": 0, "slow": 0})
    seconds: float = 0.0  # summed over searches, failed ones included
    pages_read: int = 0
    pages_failed: int = 0  # left with the engine's snippet


class WebSearch:
    def __init__(
        self,
        backend: SearchBackend,
        fetcher: UrlFetcher,
        *,
        queries: str = "message",
        page_seconds: float = PAGE_SECONDS,
    ) -> None:
        """``queries``: "message" (search for the last user turn) or "model" (the model
        writes up to three queries; ``gather`` is then given a ``QueryWriter``)."""
        self.backend = backend
        self.fetcher = fetcher
        self.queries = queries
        self.page_seconds = page_seconds
        self.stats = SearchStats(backend.name)

    async def gather(
        self,
        options: WebSearchOptions,
        messages: Sequence[Any],
        *,
        pages_pool: ThreadPoolExecutor,
        tokens_pool: ThreadPoolExecutor,
        tokenize: Callable[[str], list[int]],
        context_length: int,
        write_queries: QueryWriter | None = None,
    ) -> SearchContext:
        question = last_user_text(messages)
        size = context_size(options)
        queries = [question[:MAX_QUERY_CHARS]]
        if self.queries == "model" and write_queries is not None:
            written = [q.strip()[:MAX_QUERY_CHARS] for q in await write_queries(question)]
            queries = [q for q in dict.fromkeys(written) if q][:MAX_QUERIES] or queries
        where = options.user_location.approximate if options.user_location is not None else None
        country = where.country if where is not None and self.backend.takes_country else None
        hits = await self._search(queries, size.results, country, size.pages)
        texts = await self._texts(hits, size.pages, pages_pool)
        budget = min(size.tokens, int(context_length * CONTEXT_SHARE))
        loop = asyncio.get_running_loop()
        texts = await loop.run_in_executor(tokens_pool, fit_texts, texts, budget, tokenize)
        sources = tuple(Source(k + 1, hit.title, hit.url, text) for k, (hit, text) in enumerate(zip(hits, texts, strict=True)))
        return SearchContext(sources, sources_block(list(sources), " / ".join(queries), location_line(options)), tuple(queries))

    async def _search(self, queries: list[str], count: int, country: str | None, pages: bool) -> list[SearchHit]:
        """Each query's results, interleaved (first of each, then second ...), each URL once."""
        started = time.monotonic()
        self.stats.searches += 1
        try:
            found = await asyncio.gather(*(self.backend.search(SearchQuery(q, count, country, pages)) for q in queries))
        except SearchFailure as failure:
            self.stats.failures[failure.kind] += 1
            log.warning("web search failed: %s", failure.message)
            raise search_error(failure) from None
        finally:
            self.stats.seconds += time.monotonic() - started
        hits: dict[str, SearchHit] = {}
        for rank in range(count):
            for results in found:
                if rank < len(results):
                    hits.setdefault(results[rank].url, results[rank])
        return list(hits.values())[:count]

    async def _texts(self, hits: list[SearchHit], pages: bool, pool: ThreadPoolExecutor) -> list[str]:
        """Each result's text: the engine's page text, the page read, or its snippet."""
        texts = [hit.text or hit.snippet for hit in hits]
        wanted = [k for k, hit in enumerate(hits) if pages and hit.text is None]
        if not wanted:
            return texts
        loop = asyncio.get_running_loop()

        async def read(url: str) -> str:
            body, kind = await self.fetcher.fetch(url, PAGE)
            return await loop.run_in_executor(pool, page_text, body, kind if kind in PAGE_TYPES else None)

        jobs = {asyncio.ensure_future(read(hits[k].url)): k for k in wanted}
        try:
            done, _ = await asyncio.wait(jobs, timeout=self.page_seconds)
        finally:  # late pages, or all of them when the client has gone
            for job in jobs:
                job.cancel()
        for job, k in jobs.items():
            text = job.result() if job in done and job.exception() is None else None
            if text:
                texts[k] = text
                self.stats.pages_read += 1
            else:
                self.stats.pages_failed += 1
                cause = job.exception() if job in done else "no answer in time"
                if not isinstance(cause, (FetchError, str)) and cause is not None:
                    log.warning("reading %s failed: %r", hits[k].url, cause)
        return texts


def last_user_text(messages: Sequence[Any]) -> str:
    """The text of the last user message: what is searched for."""
    for message in reversed(messages):
        if isinstance(message, UserMessage):
            content = message.content
            text = content if isinstance(content, str) else " ".join(p.text for p in content if isinstance(p, TextPart))
            if text.strip():
                return " ".join(text.split())
    raise InvalidRequestError("Web search needs a user message with text to search for.", param="messages", code="invalid_value")


def search_error(failure: SearchFailure) -> APIError:
    slow = failure.kind == "slow"
    return APIError(
        f"Web search failed: {failure.message}.",
        param="web_search_options",
        code="web_search_timeout" if slow else "web_search_unavailable",
        status_code=504 if slow else 502,
        error_type="api_error",
    )
