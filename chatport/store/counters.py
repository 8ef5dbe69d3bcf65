"""Counters for rate limits: per-minute windows and in-flight counts, kept in this process
or in Redis so that several servers share them.

Windows are fixed and aligned to the clock's minutes (one Redis key per minute, expiring
after two), which makes a shared counter one atomic INCRBY and makes "reset" the time to
the next minute, the same on every server.
"""

from __future__ import annotations

import time
from typing import Protocol

WINDOW_SECONDS = 60
# An in-flight count left behind by a server that died is forgotten after this long.
IN_FLIGHT_TTL_SECONDS = 600


class CountersUnavailable(Exception):
    """The shared counters cannot be reached."""


def window(now: float | None = None) -> tuple[int, float]:
    """(this minute's number, seconds until the next one)."""
    now = time.time() if now is None else now
    index = int(now // WINDOW_SECONDS)
    return index, (index + 1) * WINDOW_SECONDS - now


class Counters(Protocol):
    async def add(self, key: str, amount: int) -> int:
        """Adds to this minute's count of ``key`` and returns the new count."""
        ...

    async def get(self, key: str) -> int:
        """This minute's count of ``key``."""
        ...

    async def enter(self, key: str, limit: int) -> bool:
        """Counts one more in flight unless ``limit`` are already; returns whether it did."""
        ...

    async def leave(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryCounters:
    """One process's counters."""

    def __init__(self) -> None:
        self._minute = -1
        self._counts: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}

    def _current(self) -> dict[str, int]:
        minute, _ = window()
        if minute != self._minute:
            self._minute, self._counts = minute, {}
        return self._counts

    async def add(self, key: str, amount: int) -> int:
        counts = self._current()
        counts[key] = counts.get(key, 0) + amount
        return counts[key]

    async def get(self, key: str) -> int:
        return self._current().get(key, 0)

    async def enter(self, key: str, limit: int) -> bool:
        if self._in_flight.get(key, 0) >= limit:
            return False
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return True

    async def leave(self, key: str) -> None:
        left = self._in_flight.get(key, 0) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)

    async def close(self) -> None:
        pass


# Atomic "one more unless at the limit", refreshing the count's expiry.
_ENTER = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
_LEAVE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 1
"""


class RedisCounters:
    """Counters shared through Redis (``--limits redis://HOST:PORT/DB``)."""

    def __init__(self, url: str, prefix: str = "chatport:limits:") -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix
        self._enter = self._redis.register_script(_ENTER)
        self._leave = self._redis.register_script(_LEAVE)

    async def add(self, key: str, amount: int) -> int:
        minute, _ = window()
        name = f"{self._prefix}{key}:{minute}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(name, amount)
                pipe.expire(name, 2 * WINDOW_SECONDS)
                count, _ = await pipe.execute()
        except Exception as exc:
            raise CountersUnavailable(str(exc)) from exc
        return int(count)

    async def get(self, key: str) -> int:
        minute, _ = window()
        try:
            value = await self._redis.get(f"{self._prefix}{key}:{minute}")
        except Exception as exc:
            raise CountersUnavailable(str(exc)) from exc
        return int(value or 0)

    async def enter(self, key: str, limit: int) -> bool:
        try:
            return bool(await self._enter(keys=[f"{self._prefix}{key}:in-flight"], args=[limit, IN_FLIGHT_TTL_SECONDS]))
        except Exception as exc:
            raise CountersUnavailable(str(exc)) from exc

    async def leave(self, key: str) -> None:
        try:
            await self._leave(keys=[f"{self._prefix}{key}:in-flight"])
        except Exception as exc:
            raise CountersUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self._redis.aclose()


def counters_for(url: str | None) -> Counters:
    """``None`` or ``memory``: this process; ``redis://...``: shared."""
    if url in (None, "", "memory"):
        return MemoryCounters()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisCounters(url)
    raise ValueError(f"unsupported --limits {url!r}: use memory or redis://HOST:PORT/DB")
