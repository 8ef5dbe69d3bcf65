"""Rate limits per project, as OpenAI applies them: requests per minute, tokens per minute
and requests at once, reported on every response in the ``x-ratelimit-*`` headers and
answered 429 with Retry-After when reached; and a throttle on failed key lookups per
client address, so keys cannot be guessed at speed.

Requests are counted when they arrive (refused ones too, as OpenAI counts them). Tokens
(prompt + completion, as ``usage`` reports them) are reserved when a request is admitted
to its model: its prompt plus ``max_tokens`` for each choice (the rest of the context when
it gives none), refused with 429 when that would pass the minute's limit, so concurrent
requests cannot overrun it together; the reservation is settled to what the answer used
when it ends. Counts live in a ``Counters`` (this process, or Redis for several servers).
When shared counters cannot be reached, limited projects are refused with 503 rather than
let through unlimited; projects without limits never touch them, and the failed-key
throttle falls back to this process's own counts.

The throttle on failed keys holds back an address that sent ``AUTH_FAILURES_PER_MINUTE``
unknown keys this minute, but not the keys that address has already used successfully
(in the last ``KNOWN_GOOD_SECONDS``): a guesser sharing an address (a NAT, a proxy, one
machine) with real clients cannot lock them out.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from chatport.protocol.errors import APIError, overloaded_error, rate_limit_error
from chatport.service.auth import Principal
from chatport.store.counters import Counters, CountersUnavailable, MemoryCounters, window

log = logging.getLogger("chatport.limits")

AUTH_FAILURES_PER_MINUTE = 60
KNOWN_GOOD_SECONDS = 3600.0
KNOWN_GOOD_MAX = 10_000  # (address, key) pairs remembered, least recently used out


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
    _project: str = ""
    _tpm: int | None = None
    _reserved: int = 0  # tokens held for the answer, not yet settled
    _kept: int = 0  # of those, what stays billed if the request ends unanswered (its prompt)
    _minute: int = 0  # the window the reservation was counted in

    async def reserve(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Hold the most tokens the request can use; 429 if the minute's limit cannot take them."""
        if self._counters is None or self._tokens_key is None or self._tpm is None:
            return
        wanted = prompt_tokens + completion_tokens
        minute, reset = window()
        try:
            total = await self._counters.add(self._tokens_key, wanted, minute)
            if total > self._tpm:
                await self._counters.add(self._tokens_key, -wanted, minute)
        except CountersUnavailable as exc:
            raise _cannot_count(exc) from None
        if total > self._tpm:
            raise _limit_reached(self._project, "tokens per min (TPM)", self._tpm, total - wanted, reset, "tokens", wanted)
        self._reserved, self._kept, self._minute = wanted, prompt_tokens, minute

    async def charge(self, tokens: int) -> None:
        """Bill what the answer used (settling the reservation, if there was one)."""
        reserved, self._reserved = self._reserved, 0
        await self._add(tokens - reserved, self._minute if reserved else None)

    async def release(self) -> None:
        if self._reserved:  # ended without an answer (the client left, or it failed): its prompt was read
            await self.charge(self._kept)
        key, self._in_flight_key = self._in_flight_key, None
        if self._counters is not None and key is not None:
            try:
                await self._counters.leave(key)
            except CountersUnavailable as exc:  # the place goes with this server's heartbeat
                log.warning("could not release an in-flight place: %s", exc)

    async def _add(self, tokens: int, minute: int | None) -> None:
        if self._counters is None or self._tokens_key is None or tokens == 0:
            return
        if minute is not None and minute != window()[0] and tokens < 0:
            return  # a reservation's window is over: what it held no longer counts anywhere
        try:
            await self._counters.add(self._tokens_key, tokens, minute)
        except CountersUnavailable as exc:
            log.warning("could not count %d tokens: %s", tokens, exc)


UNLIMITED = Ticket()


class RateLimiter:
    def __init__(self, counters: Counters, *, auth_failures_per_minute: int = AUTH_FAILURES_PER_MINUTE) -> None:
        self.counters = counters
        self.auth_failures_per_minute = auth_failures_per_minute
        self._local = MemoryCounters()  # the failed-key throttle while shared counters are down
        self._known_good: OrderedDict[tuple[str, bytes], float] = OrderedDict()
        self._warned = -1e9

    async def admit(self, principal: Principal) -> Ticket:
        """Counts the request against its project's limits; raises 429 when one is reached."""
        limits = principal.limits
        if not limits.any:
            return UNLIMITED
        key = f"project:{principal.project}"
        ticket = Ticket(_counters=self.counters, _tokens_key=f"{key}:tokens", _project=principal.project, _tpm=limits.tpm)
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

    async def check_address(self, address: str | None, token: str | None = None) -> None:
        """Refuses an address that has sent too many unknown keys this minute, unless
        ``token`` is a key it has used successfully before."""
        if address is None:
            return
        failures = await self._failures("get", f"auth-failures:{address}", 0)
        if failures < self.auth_failures_per_minute or self._known(address, token):
            return
        _, reset = window()
        raise rate_limit_error(
            f"Too many requests with an invalid API key from this address. Please try again in {duration(reset)}.",
            code="rate_limit_exceeded",
            retry_after=max(int(reset) + 1, 1),
        )

    async def key_failed(self, address: str | None) -> None:
        if address is not None:
            await self._failures("add", f"auth-failures:{address}", 1)

    def key_worked(self, address: str | None, token: str | None) -> None:
        """``token`` authenticated a request from ``address``: that pair passes the throttle."""
        if address is None or not token:
            return
        pair = (address, _digest(token))
        self._known_good[pair] = time.monotonic()
        self._known_good.move_to_end(pair)
        while len(self._known_good) > KNOWN_GOOD_MAX:
            self._known_good.popitem(last=False)

    def _known(self, address: str, token: str | None) -> bool:
        seen = self._known_good.get((address, _digest(token))) if token else None
        return seen is not None and time.monotonic() - seen < KNOWN_GOOD_SECONDS

    async def _failures(self, op: str, key: str, amount: int) -> int:
        """Count (``add``) or read (``get``) failed keys: shared where they can be, in this
        process while the shared counters are down (so that projects without limits keep
        being served, and guessing is still slowed)."""
        try:
            return await (self.counters.add(key, amount) if op == "add" else self.counters.get(key))
        except CountersUnavailable as exc:
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.warning("rate-limit counters unavailable, counting failed keys in this process: %s", exc)
        return await (self._local.add(key, amount) if op == "add" else self._local.get(key))

    async def close(self) -> None:
        await self.counters.close()


def _headers(unit: str, limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{unit}": str(limit),
        f"x-ratelimit-remaining-{unit}": str(max(remaining, 0)),
        f"x-ratelimit-reset-{unit}": duration(reset),
    }


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _limit_reached(project: str, what: str, limit: int, used: int, reset: float, kind: str, requested: int = 1) -> APIError:
    if requested > limit:
        return APIError(
            f"Request too large for project {project} on {what}: Limit {limit}, Requested {requested}. "
            "The input or output tokens must be reduced in order to run successfully.",
            code="rate_limit_exceeded",
            status_code=429,
            error_type=kind,
        )
    return APIError(
        f"Rate limit reached in project {project} on {what}: Limit {limit}, Used {used}, Requested {requested}. "
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
