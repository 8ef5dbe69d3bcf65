"""ASGI middleware for every response: request ids, processing time, body limits, the
count of requests in flight, and the last-resort 500.

Written against raw ASGI rather than BaseHTTPMiddleware so streamed responses pass
through untouched and a client's disconnect still reaches the route.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatport.protocol.errors import APIError, InvalidRequestError, payload_too_large_error

log = logging.getLogger("chatport.api")

DEFAULT_BODY_TIMEOUT = 30.0
# After the first body_timeout seconds, a body must keep arriving at this average rate: a
# client that trickles a byte now and then holds its connection for one timeout, not forever.
MIN_BODY_BYTES_PER_SECOND = 8 * 1024


class InFlight:
    """API requests (``/v1``) whose responses have not ended, for the drain on shutdown."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Whether every request ended within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, in_flight: InFlight, body_timeout: float = DEFAULT_BODY_TIMEOUT
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.in_flight = in_flight
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(16)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        respond = _ResponseHeaders(send, request_id, state)
        refusal = self._refusal(scope)
        if refusal is not None:
            await send_error(respond, refusal, close=refusal.code == "conflicting_framing")
            return
        tracked = scope["path"].startswith("/v1/")
        if tracked:
            self.in_flight.enter()
        try:
            body = _BodyReader(receive, self.max_body_bytes, self.body_timeout)
            respond.closes_if = body.cut_off
            await self.app(scope, body, respond)
        except Exception as exc:
            # The last resort: a bug became an exception. Answer it as OpenAI does, on a
            # connection that stays usable, with the request id to find it in the log.
            log.exception("unhandled error in %s %s (%s)", scope["method"], scope["path"], request_id, exc_info=exc)
            if not respond.started:
                await send_error(respond, APIError("The server had an error while processing your request. Sorry about that!"))
        finally:
            if tracked:
                self.in_flight.leave()
            ticket = state.get("ticket")
            if ticket is not None:
                await ticket.release()

    def _refusal(self, scope: Scope) -> InvalidRequestError | None:
        """What is wrong with a request before its body is read."""
        names = [name for name, _ in scope.get("headers", [])]
        if b"content-length" in names and b"transfer-encoding" in names:
            # Two framings for one body is how requests are smuggled past a proxy that reads
            # the other one: refuse, and close the connection (its next bytes are suspect).
            return InvalidRequestError(
                "Invalid request: both Content-Length and Transfer-Encoding are set.", code="conflicting_framing"
            )
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            return _too_large(self.max_body_bytes)
        return None


class _ResponseHeaders:
    """``send`` that adds the request id, the processing time and the rate-limit standing,
    and closes the connection after a body that was cut off (its rest would be read as
    the next request)."""

    def __init__(self, send: Send, request_id: str, state: dict[str, Any]) -> None:
        self.closes_if: Callable[[], bool] = lambda: False
        self._send = send
        self._request_id = request_id.encode()
        self._state = state
        self._began = time.perf_counter()
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            elapsed = int((time.perf_counter() - self._began) * 1000)
            headers = list(message.get("headers", []))
            headers.append((b"x-request-id", self._request_id))
            headers.append((b"openai-processing-ms", str(elapsed).encode()))
            ticket = self._state.get("ticket")
            if ticket is not None:
                headers += [(k.encode(), v.encode()) for k, v in ticket.headers.items()]
            if self.closes_if():
                headers.append((b"connection", b"close"))
            message = {**message, "headers": headers}
        await self._send(message)


class _BodyReader:
    """``receive`` that enforces the body size limit, a time limit on each part of the body
    and, past the first ``timeout`` seconds, a minimum average rate (so that the whole body
    must arrive by ``timeout + received / MIN_BODY_BYTES_PER_SECOND``). After the body,
    receive() only waits for the client to disconnect: no limit."""

    def __init__(self, receive: Receive, max_bytes: int, timeout: float) -> None:
        self._receive = receive
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._received = 0
        self._done = False
        self._began: float | None = None
        self._cut = False

    def cut_off(self) -> bool:
        """Whether the body was refused before it ended (too slow, or too large)."""
        return self._cut

    async def __call__(self) -> Message:
        if self._done:
            return await self._receive()
        now = time.monotonic()
        if self._began is None:
            self._began = now
        by_rate = self._began + self._timeout + self._received / MIN_BODY_BYTES_PER_SECOND
        try:
            message = await asyncio.wait_for(self._receive(), max(min(self._timeout, by_rate - now), 0.0))
        except TimeoutError:
            self._cut = True
            raise InvalidRequestError(
                f"The request body was not received in time: each part within {self._timeout:g} seconds, and "
                f"after that at {MIN_BODY_BYTES_PER_SECOND // 1024} KiB/s or faster.",
                code="request_timeout",
                status_code=408,
            ) from None
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._max_bytes:
                self._cut = True
                raise _too_large(self._max_bytes)
            self._done = not message.get("more_body", False)
        return message


def _too_large(limit: int) -> InvalidRequestError:
    return payload_too_large_error(f"The request body is too large: the limit is {limit} bytes.", code="request_too_large")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_error(send: Send, error: APIError, *, close: bool = False) -> None:
    body = orjson.dumps(error.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    if error.retry_after is not None:
        headers.append((b"retry-after", str(error.retry_after).encode()))
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
