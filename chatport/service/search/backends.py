"""Search engines behind one small interface: a query, how many results, and the user's
country -> results with a title, a URL, a snippet and (where the engine sends it) the
page's text.

``chatport serve --web-search URL`` picks one:

- ``searxng+http(s)://HOST[:PORT][/PATH]``: a SearXNG instance's JSON API
  (``GET PATH/search?q=...&format=json``; safesearch moderate). SearXNG answers 403 when
  its ``json`` format is off, and the error says so.
- ``brave:`` (the Brave Search API, key from ``BRAVE_API_KEY``) and ``tavily:`` (Tavily,
  key from ``TAVILY_API_KEY``); ``brave+http(s)://...`` and ``tavily+http(s)://...`` send
  the same requests to another address (a proxy, or a stand-in in tests).
- ``file:PATH``: a JSON file of results (a list, or ``{"results": [...]}``; each with
  ``title``, ``url`` and ``snippet`` or ``content``, optionally ``text``), for offline use.

The engine's address is the operator's and may be on loopback: it is not a client URL and
is not subject to the page fetcher's address rules. Every call is bounded in time; an
engine that cannot be reached, errs or is slow raises ``SearchFailure``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"
TAVILY_URL = "https://api.tavily.com/search"
SCHEMES = ("searxng+http://", "searxng+https://", "brave:", "brave+http", "tavily:", "tavily+http", "file:")


@dataclass(frozen=True)
class SearchQuery:
    text: str
    count: int  # results wanted
    country: str | None = None  # ISO 3166-1 alpha-2, from user_location
    pages: bool = False  # the caller will read the pages: engines that can send their text do


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str
    text: str | None = None  # the page's text, where the engine sent it


class SearchFailure(Exception):
    """The engine gave no results: ``kind`` "down" (unreachable, an error status, a body
    that is not its JSON) or "slow" (no answer in time)."""

    def __init__(self, kind: Literal["down", "slow"], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class SearchBackend(Protocol):
    name: str  # for metrics and logs: searxng, brave, tavily, file
    takes_country: bool  # user_location.country reaches the engine

    async def search(self, query: SearchQuery) -> list[SearchHit]: ...


def backend_for(url: str, *, timeout: float = 10.0, env: Mapping[str, str] | None = None) -> SearchBackend:
    """The backend ``--web-search URL`` names; ValueError says what is wrong with it."""
    env = os.environ if env is None else env
    if url.startswith("searxng+"):
        base = url.removeprefix("searxng+")
        if not base.startswith(("http://", "https://")) or not httpx.URL(base).host:
            raise ValueError(f"searxng+ takes an http(s) address, as searxng+http://HOST:PORT, not {url!r}")
        return SearxngBackend(base, timeout)
    for name, key_var, default in (("brave", "BRAVE_API_KEY", BRAVE_URL), ("tavily", "TAVILY_API_KEY", TAVILY_URL)):
        if url == f"{name}:" or url.startswith(f"{name}+http"):
            key = env.get(key_var, "")
            if not key:
                raise ValueError(f"{name}: needs its API key in the environment variable {key_var}")
            endpoint = default if url == f"{name}:" else url.removeprefix(f"{name}+")
            return BraveBackend(endpoint, key, timeout) if name == "brave" else TavilyBackend(endpoint, key, timeout)
    if url.startswith("file:"):
        path = Path(url.removeprefix("file:"))
        return FileBackend(_read_file(path), str(path))
    raise ValueError(f"unknown search engine {url!r}: use searxng+http(s)://HOST[:PORT][/PATH], brave:, tavily: or file:PATH")


class _HttpBackend:
    """An engine answering JSON over HTTP, each call within ``timeout`` seconds."""

    name = "http"
    takes_country = False

    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    async def _json(self, request: httpx.Request) -> Any:
        where = f"the {self.name} search engine at {request.url.host}"
        try:
            async with asyncio.timeout(self.timeout), httpx.AsyncClient(trust_env=False, timeout=self.timeout) as client:
                response = await client.send(request)
        except (TimeoutError, httpx.TimeoutException):
            raise SearchFailure("slow", f"{where} did not answer within {self.timeout:g} seconds") from None
        except httpx.HTTPError as exc:
            raise SearchFailure("down", f"{where} could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise SearchFailure("down", self._status_message(where, response.status_code))
        try:
            return response.json()
        except ValueError:
            raise SearchFailure("down", f"{where} answered with a body that is not JSON") from None

    def _status_message(self, where: str, status: int) -> str:
        return f"{where} answered HTTP {status}"


class SearxngBackend(_HttpBackend):
    name = "searxng"

    def _status_message(self, where: str, status: int) -> str:
        if status == 403:
            return f"{where} answered 403: its JSON format is off (add json to search.formats in the instance's settings.yml)"
        return super()._status_message(where, status)

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        url = self.endpoint.rstrip("/") + "/search"
        params = {"q": query.text, "format": "json", "safesearch": "1", "pageno": "1"}
        body = await self._json(httpx.Request("GET", url, params=params, headers={"Accept": "application/json"}))
        results = body.get("results") if isinstance(body, dict) else None
        return _hits(results, "content")[: query.count]


class BraveBackend(_HttpBackend):
    name = "brave"
    takes_country = True

    def __init__(self, endpoint: str, key: str, timeout: float) -> None:
        super().__init__(endpoint, timeout)
        self._key = key

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        params = {"q": query.text, "count": str(min(query.count, 20))}
        if query.country:
            params["country"] = query.country.upper()
        headers = {"Accept": "application/json", "X-Subscription-Token": self._key}
        body = await self._json(httpx.Request("GET", self.endpoint, params=params, headers=headers))
        web = body.get("web") if isinstance(body, dict) else None
        return _hits(web.get("results") if isinstance(web, dict) else None, "description")[: query.count]


class TavilyBackend(_HttpBackend):
    name = "tavily"

    def __init__(self, endpoint: str, key: str, timeout: float) -> None:
        super().__init__(endpoint, timeout)
        self._key = key

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        payload = {"query": query.text, "max_results": min(query.count, 20), "include_raw_content": query.pages}
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        body = await self._json(httpx.Request("POST", self.endpoint, json=payload, headers=headers))
        results = body.get("results") if isinstance(body, dict) else None
        return _hits(results, "content", text_key="raw_content")[: query.count]


class FileBackend:
    """The same results for every query, from a file read once at start-up."""

    name = "file"
    takes_country = False

    def __init__(self, hits: list[SearchHit], path: str) -> None:
        self.hits = hits
        self.path = path

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        return self.hits[: query.count]


def _read_file(path: Path) -> list[SearchHit]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"file:{path} cannot be read: {exc.strerror}") from None
    except ValueError:
        raise ValueError(f"file:{path} is not JSON") from None
    results = data.get("results") if isinstance(data, dict) else data
    hits = _hits(results, "snippet", also="content", text_key="text")
    if not hits:
        raise ValueError(f"file:{path} holds no results (a list of {{title, url, snippet}}, or {{'results': [...]}})")
    return hits


def _hits(results: Any, snippet_key: str, *, also: str | None = None, text_key: str | None = None) -> list[SearchHit]:
    """The well-formed results of an engine's list (an http(s) URL and some text), in order,
    each URL once; the rest are skipped."""
    if not isinstance(results, list):
        return []
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for item in results:
        if not isinstance(item, dict):
            continue
        url, title = item.get("url"), item.get("title")
        snippet = item.get(snippet_key) or (item.get(also) if also else None) or ""
        text = item.get(text_key) if text_key else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or url in seen:
            continue
        seen.add(url)
        hits.append(
            SearchHit(
                title=title.strip() if isinstance(title, str) and title.strip() else url,
                url=url,
                snippet=snippet if isinstance(snippet, str) else "",
                text=text if isinstance(text, str) and text else None,
            )
        )
    return hits
