"""Checks that keep web pages from driving the API: the Host header must name this server,
and request bodies must be declared as JSON (or, for uploads, be multipart forms that carry
an Authorization header, which no cross-site page can send without asking).

Without them, a page on any site could POST a ``text/plain`` body (a "simple" request
that browsers send cross-origin without asking) to a server on the user's loopback, and a
DNS-rebinding page, whose own host name resolves to 127.0.0.1, could read the answers and
the stored completions of the no-key default.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from chatport.api.middleware import send_error
from chatport.protocol.errors import InvalidRequestError

# The API takes bodies only with POST; other methods meet the router's 404/405 first.
_BODY_METHODS = frozenset({"POST"})
# Routes that take multipart form data (file uploads), as OpenAI's do.
_FORM_PATHS = frozenset({"/v1/audio/transcriptions"})


class BrowserGuard:
    """``allowed_hosts``: host names (without port) the server answers to; None: any."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: frozenset[str] | None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = self._check(scope)
            if error is not None:
                await send_error(send, error)
                return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> InvalidRequestError | None:
        headers = dict(scope.get("headers", []))
        if self.allowed_hosts is not None:
            host = headers.get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.allowed_hosts:
                return InvalidRequestError(
                    f"Invalid Host header '{host}': this server answers only to "
                    f"{', '.join(sorted(self.allowed_hosts))} (see --allowed-host).",
                    code="invalid_host",
                )
        if scope["method"] in _BODY_METHODS:
            declared = headers.get(b"content-type", b"").decode("latin-1")
            kind = declared.split(";", 1)[0].strip().lower()
            if kind == "multipart/form-data" and scope["path"] in _FORM_PATHS:
                # A form is what a cross-site page may post without asking; one that carries
                # an Authorization header (as every SDK call does) cannot come from a page.
                if b"authorization" not in headers:
                    return InvalidRequestError(
                        "Multipart requests must carry an Authorization header (send 'Authorization: Bearer KEY').",
                        code="missing_authorization",
                    )
                return None
            if kind != "application/json":
                return InvalidRequestError(
                    f"Unsupported content type: '{declared}'. This API method only accepts 'application/json' "
                    f"requests, but you specified the header 'Content-Type: {declared}'. Please try again with "
                    "a supported content type.",
                    code="unsupported_content_type",
                )
        return None


def host_name(host: str) -> str:
    """``example.com:8000`` -> ``example.com``; ``[::1]:8000`` -> ``::1``. Anything after
    the name but a port (``[::1]evil.example``, ``localhost:x``) leaves the header whole, so
    that it matches no allowed name."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :] if end > 0 else None
        if rest is None or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return host
        return host[1:end]
    if host.count(":") == 1:
        name, port = host.split(":")
        return name if port.isdigit() else host
    return host


def default_allowed_hosts(bind: str, extra: list[str]) -> frozenset[str] | None:
    """The names a server bound to ``bind`` answers to: loopback names always, the bound
    address, and ``--allowed-host`` names. A wildcard bind (0.0.0.0, ::) cannot know its
    names, so it accepts any unless some are given; ``*`` accepts any."""
    if "*" in extra:
        return None
    if bind in ("0.0.0.0", "::", "") and not extra:
        return None
    names = {"localhost", "127.0.0.1", "::1", *(host_name(name) for name in extra)}
    if bind not in ("0.0.0.0", "::", ""):
        names.add(host_name(bind))
    return frozenset(names)
