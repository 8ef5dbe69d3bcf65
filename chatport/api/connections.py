"""Connection-level limits that uvicorn leaves out: a time limit on receiving a request's
headers (against clients that open connections and trickle bytes), and a cap on open
connections answered, as every 503 here is, with OpenAI's error body and Retry-After.
Body read time is limited, and requests with both Content-Length and Transfer-Encoding
are refused, in RequestContextMiddleware."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from chatport.protocol.errors import InvalidRequestError, overloaded_error

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 1024


def _raw_response(status: str, body: dict[str, Any], extra: str = "") -> bytes:
    data = orjson.dumps(body)
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\nconnection: close\r\n{extra}\r\n"
    )
    return head.encode() + data


class GuardedH11Protocol(H11Protocol):
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    @classmethod
    def configured(cls, *, header_timeout: float, max_connections: int) -> type[GuardedH11Protocol]:
        return type(cls.__name__, (cls,), {"header_timeout": header_timeout, "max_connections": max_connections})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.max_connections:
            error = overloaded_error(
                "The server has too many open connections. Please retry after a brief wait.", code="too_many_connections"
            )
            transport.write(_raw_response("503 Service Unavailable", error.body(), f"retry-after: {error.retry_after}\r\n"))
            transport.close()
            return
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        waiting_for_headers = self.cycle is None or self.cycle.response_complete
        if not waiting_for_headers:
            self._disarm_header_timer()
        elif self._header_timer is None:
            self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Between requests the keep-alive timeout rules, until the next request's first byte.
        self._disarm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        error = InvalidRequestError(
            f"The request headers were not received within {self.header_timeout:g} seconds.",
            code="request_timeout",
            status_code=408,
        )
        self.transport.write(_raw_response("408 Request Timeout", error.body()))
        self.transport.close()
