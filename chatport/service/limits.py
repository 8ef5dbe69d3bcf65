"""Rate limits per project, as OpenAI applies them: requests per minute, tokens per minute
and requests at once, reported on every response in the ``x-ratelimit-*`` headers and
answered 429 with Retry-After when reached; and a throttle on failed key lookups per
client address, so keys cannot be guessed at speed.

Requests are counted when they arrive (refused ones too, as OpenAI counts them); tokens
(prompt + completion, as ``usage`` reports them) when the answer is complete, so a
request is refused once the minute's tokens have reached the limit. Counts live in a
``Counters`` (this process, or Redis for several servers). When shared counters cannot
be reached, limited projects are refused with 503 rather than let through unlimited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from chatport.protocol.errors import APIError, overloaded_error, rate_limit_error
from chatport.service.auth import Principal
from chatport.store.counters import Counters, CountersUnavailable, window

log = logging.getLogger("chatport.limits")

AUTH_FAILURES_PER_MINUTE = 60


def duration(seconds: float) -> str:
    """A reset time as OpenAI writes it: ``17ms``, ``1s``, ``20.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(int(seconds * 1000), 1)}ms"
    if seconds < 60:
        return f"{round(seconds, 1):g}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest}s"


@dataclass
class Ticket:
    """What one admitted request holds: its headers, its in-flight place, its token bill."""

    headers: dict[str, str] = field(default_factory=dict)
    _counters: Counters | None = None
    _tokens_key: str | None = None
    _in_flight_key: str | None = None

    async def charge(self, tokens: int) -> None:
        if self._counters is not None and self._tokens_key is not None and tokens > 0:
            try:
                await self._counters.add(self._tokens_key, tokens)
            except CountersUnavailable as exc:
                log.warning("could not count %d tokens: %s", tokens, exc)

    async def release(self) -> None:
        key, self._in_flight_key = self._in_flight_key, None
        if self._counters is not None and key is not None:
            try:
                await self._counters.leave(key)
            except CountersUnavailable as exc:  # the count expires on its own
                log.warning("could not release an in-flight place: %s", exc)


UNLIMITED = Ticket()


class RateLimiter:
    def __init__(self, counters: Counters, *, auth_failures_per_minute: int = AUTH_FAILURES_PER_MINUTE) -> None:
        self.counters = counters
        self.auth_failures_per_minute = auth_failures_per_minute

    async def admit(self, principal: Principal) -> Ticket:
        """Counts the request against its project's limits; raises 429 when one is reached."""
        limits = principal.limits
        if not limits.any:
            return UNLIMITED
        key = f"project:{principal.project}"
        ticket = Ticket(_counters=self.counters, _tokens_key=f"{key}:tokens")
        _, reset = window()
        try:
            if limits.tpm is not None:
                used = await self.counters.get(f"{key}:tokens")
                ticket.headers |= _headers("tokens", limits.tpm, limits.tpm - used, reset)
                if used >= limits.tpm:
                    raise _limit_reached(principal.project, "tokens per min (TPM)", limits.tpm, used, reset, "tokens")
            if limits.rpm is not None:
                count = await self.counters.add(f"{key}:requests", 1)
                ticket.headers |= _headers("requests", limits.rpm, limits.rpm - count, reset)
                if count > limits.rpm:
                    raise _limit_reached(principal.project, "requests per min (RPM)", limits.rpm, count - 1, reset, "requests")
            if limits.max_concurrent is not None:
                if not await self.counters.enter(f"{key}:in-flight", limits.max_concurrent):
                    raise rate_limit_error(
                        f"Too many concurrent requests in project {principal.project}: Limit {limits.max_concurrent}. "
                        "Please try again when one of them has finished.",
                        code="rate_limit_exceeded",
                    )
                ticket._in_flight_key = f"{key}:in-flight"
        except CountersUnavailable as exc:
            raise _cannot_count(exc) from None
        return ticket

    async def check_address(self, address: str | None) -> None:
        """Refuses an address that has sent too many unknown keys this minute."""
        if address is None:
            return
        try:
            failures = await self.counters.get(f"auth-failures:{address}")
        except CountersUnavailable as exc:
            raise _cannot_count(exc) from None
        if failures >= self.auth_failures_per_minute:
            _, reset = window()
            raise rate_limit_error(
                f"Too many requests with an invalid API key from this address. Please try again in {duration(reset)}.",
                code="rate_limit_exceeded",
                retry_after=max(int(reset) + 1, 1),
            )

    async def key_failed(self, address: str | None) -> None:
        if address is not None:
            try:
                await self.counters.add(f"auth-failures:{address}", 1)
            except CountersUnavailable as exc:
                log.warning("could not count a failed key lookup: %s", exc)

    async def close(self) -> None:
        await self.counters.close()


def _headers(unit: str, limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{unit}": str(limit),
        f"x-ratelimit-remaining-{unit}": str(max(remaining, 0)),
        f"x-ratelimit-reset-{unit}": duration(reset),
    }


def _limit_reached(project: str, what: str, limit: int, used: int, reset: float, kind: str) -> APIError:
    return APIError(
        f"Rate limit reached in project {project} on {what}: Limit {limit}, Used {used}, Requested 1. "
        f"Please try again in {duration(reset)}.",
        code="rate_limit_exceeded",
        status_code=429,
        error_type=kind,  # "requests" or "tokens", as OpenAI's 429s say
        retry_after=max(int(reset) + 1, 1),
    )


def _cannot_count(exc: Exception) -> APIError:
    log.warning("rate-limit counters unavailable: %s", exc)
    return overloaded_error(
        "Rate limits cannot be checked right now (the limits store is unavailable). Please retry after a brief wait.",
        code="limits_unavailable",
        retry_after=5,
    )
