"""Fetching an ``image_url`` given as an http(s) address (or a web search result's page),
without letting a request reach what only the server can reach.

A client that names ``http://169.254.169.254/...`` or ``http://localhost:5432`` would use
the server to probe its own network (SSRF). Every address a name resolves to is checked
before connecting, and the connection goes to the checked address (so a second DNS answer
cannot swap it), for the first request and again for every redirect. Only public unicast
addresses pass unless the server runs with ``--allow-private-urls``. Size, time and type
are capped too: the body is read in pieces and dropped once it passes the limit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass

import httpx

from chatport.protocol.errors import InvalidRequestError

MAX_REDIRECTS = 5


class FetchError(Exception):
    """Why a URL gave no usable body (the message names the cause, not the part)."""


@dataclass(frozen=True)
class FetchPolicy:
    allow_private: bool = False  # --allow-private-urls: loopback, private and link-local addresses too
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 10.0  # seconds for the whole fetch, redirects included


# IPv6 prefixes whose addresses carry an IPv4 address in their last 32 bits: a translator
# or tunnel delivers them to that IPv4 address, so it is the one to judge.
_LAST_32_BITS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b::/96",  # NAT64, well-known prefix
        "::/96",  # IPv4-compatible (deprecated)
    )
)
# Prefixes refused whatever they carry: NAT64 for local use (its IPv4 part can sit anywhere),
# and site-local addresses (deprecated, still routed inside some sites).
_NEVER = tuple(ipaddress.ip_network(n) for n in ("64:ff9b:1::/48", "fec0::/10"))


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is a public unicast one: not loopback, private, link-local (the
    cloud metadata address among them), shared (CGNAT), reserved or multicast, also when
    written as an IPv6 address that embeds an IPv4 one (mapped, translated, NAT64, 6to4)."""
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in net for net in _NEVER):
            return False
        if address.sixtofour is not None:
            return is_public(address.sixtofour)
        if any(address in net for net in _LAST_32_BITS):
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Wanted:
    """What a fetch may bring back: the Accept header, the content types taken (prefixes;
    application/octet-stream and no type pass too, for the reader to judge), how it is
    named in errors, and its size cap."""

    accept: str
    types: tuple[str, ...]
    what: str  # "an image", "a web page"
    max_bytes: int


class UrlFetcher:
    def __init__(self, policy: FetchPolicy | None = None, *, address_allowed: Callable[[Address], bool] = is_public) -> None:
        """``address_allowed``: which addresses may be fetched from without
        ``allow_private`` (tests swap in a rule that splits the loopback range)."""
        self.policy = policy or FetchPolicy()
        self._allowed = address_allowed

    async def fetch(self, url: str, kind: Wanted | None = None) -> tuple[bytes, str | None]:
        """(body, content type) of ``url``; raises FetchError saying what was wrong.
        ``kind``: what may be fetched (default: an image within the policy's size)."""
        kind = kind or Wanted("image/*", ("image/",), "an image", self.policy.max_bytes)
        try:
            async with asyncio.timeout(self.policy.timeout):
                return await self._fetch(url, kind)
        except TimeoutError:
            raise FetchError(f"the download did not finish within {self.policy.timeout:g} seconds") from None

    async def _fetch(self, url: str, wanted: Wanted) -> tuple[bytes, str | None]:
        async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=self.policy.timeout) as client:
            target = _parse(url)
            for _ in range(MAX_REDIRECTS + 1):
                address = await self._checked_address(target)
                request = client.build_request(
                    "GET",
                    target.copy_with(host=address),
                    headers={"Host": _host_header(target), "Accept": wanted.accept},
                    extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.HTTPError as exc:
                    raise FetchError(f"the server could not be reached ({type(exc).__name__})") from None
                async with aclosing(response):
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError(f"the server answered {response.status_code} without a Location")
                        target = _parse(str(target.join(location)))
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"the server answered HTTP {response.status_code}")
                    kind = response.headers.get("content-type", "").split(";")[0].strip().lower() or None
                    if kind is not None and not kind.startswith(wanted.types) and kind != "application/octet-stream":
                        raise FetchError(f"the server sent {kind}, not {wanted.what}")
                    return await self._body(response, wanted), kind
            raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    async def _checked_address(self, url: httpx.URL) -> str:
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise FetchError(f"the host {host!r} could not be resolved") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses:
            raise FetchError(f"the host {host!r} could not be resolved")
        if not self.policy.allow_private:
            forbidden = [a for a in addresses if not self._allowed(a)]
            if forbidden:
                raise FetchError(
                    f"the host {host!r} resolves to {forbidden[0]}, a loopback, private, link-local or reserved "
                    "address, which this server does not fetch from (it runs without --allow-private-urls)"
                )
        return str(addresses[0])

    async def _body(self, response: httpx.Response, wanted: Wanted) -> bytes:
        cap = wanted.max_bytes
        noun = wanted.what.split(" ", 1)[-1]
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(f"the {noun} is {int(declared)} bytes, more than the {cap}-byte limit")
        body = bytearray()
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) > cap:
                raise FetchError(f"the {noun} is more than the {cap}-byte limit")
        return bytes(body)


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise FetchError("it is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError("only http, https and data URLs are supported")
    return parsed


def _host_header(url: httpx.URL) -> str:
    default = 443 if url.scheme == "https" else 80
    host = f"[{url.host}]" if ":" in url.host else url.host
    return host if url.port in (None, default) else f"{host}:{url.port}"


def fetch_error(param: str, url: str, cause: FetchError) -> InvalidRequestError:
    shown = url if len(url) <= 200 else url[:200] + "..."
    return InvalidRequestError(f"Error while downloading {shown}: {cause}.", param=param, code="invalid_image_url")
