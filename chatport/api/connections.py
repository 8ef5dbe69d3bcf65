"""Connection-level limits that uvicorn leaves out: a time limit on receiving a request's
headers (against clients that open connections and trickle bytes), and caps on open
connections, in all and per client address, answered, as every 503 here is, with OpenAI's
error body and Retry-After. Body read time and rate are limited, and requests with both
Content-Length and Transfer-Encoding are refused, in RequestContextMiddleware."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from chatport.protocol.errors import InvalidRequestError, overloaded_error

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 1024


def default_per_address(max_connections: int) -> int:
    """A quarter of all connections (at least 16): one address cannot take them all."""
    return max(16, max_connections // 4)


def _raw_response(status: str, body: dict[str, Any], extra: str = "") -> bytes:
    data = orjson.dumps(body)
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\nconnection: close\r\n{extra}\r\n"
    )
    return head.encode() + data


class GuardedH11Protocol(H11Protocol):
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_per_address: int = default_per_address(DEFAULT_MAX_CONNECTIONS)
    # Open connections by client address, in this process (shared by every connection).
    by_address: ClassVar[Counter[str]] = Counter()

    @classmethod
    def configured(cls, *, header_timeout: float, max_connections: int, max_per_address: int) -> type[GuardedH11Protocol]:
        limits = {"header_timeout": header_timeout, "max_connections": max_connections, "max_per_address": max_per_address}
        return type(cls.__name__, (cls,), limits)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._address = self.client[0] if self.client else None
        if self._address is not None:
            self.by_address[self._address] += 1
        if len(self.connections) > self.max_connections:
            self._refuse(transport, "The server has too many open connections.")
            return
        if self._address is not None and self.by_address[self._address] > self.max_per_address:
            self._refuse(transport, f"This address has more than {self.max_per_address} open connections.")
            return
        self._arm_header_timer()

    def _refuse(self, transport: asyncio.Transport, why: str) -> None:
        error = overloaded_error(f"{why} Please retry after a brief wait.", code="too_many_connections")
        transport.write(_raw_response("503 Service Unavailable", error.body(), f"retry-after: {error.retry_after}\r\n"))
        transport.close()

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
        address, self._address = getattr(self, "_address", None), None
        if address is not None:
            self.by_address[address] -= 1
            if self.by_address[address] <= 0:
                del self.by_address[address]
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
