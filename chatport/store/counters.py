"""Counters for rate limits: per-minute windows and in-flight counts, kept in this process
or in Redis so that several servers share them.

Windows are fixed and aligned to the clock's minutes (one Redis key per minute, expiring
after two), which makes a shared counter one atomic INCRBY and makes "reset" the time to
the next minute, the same on every server.

In-flight counts in Redis are kept per server, beside a heartbeat key each server renews
every few seconds: a server that dies (kill -9, a lost machine) stops renewing it, and its
places are dropped by the next count, within ``HEARTBEAT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Protocol

WINDOW_SECONDS = 60
# A server's in-flight places outlive it by at most this long (its heartbeat's lifetime).
HEARTBEAT_SECONDS = 15
_BEAT_EVERY = HEARTBEAT_SECONDS / 3


class CountersUnavailable(Exception):
    """The shared counters cannot be reached."""


def window(now: float | None = None) -> tuple[int, float]:
    """(this minute's number, seconds until the next one)."""
    now = time.time() if now is None else now
    index = int(now // WINDOW_SECONDS)
    return index, (index + 1) * WINDOW_SECONDS - now


class Counters(Protocol):
    async def add(self, key: str, amount: int, minute: int | None = None) -> int:
        """Adds to this minute's count of ``key`` (or to ``minute``'s) and returns the new count."""
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

    async def add(self, key: str, amount: int, minute: int | None = None) -> int:
        counts = self._current()
        if minute is not None and minute != self._minute:
            return 0  # another minute's count: not kept here
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


# Atomic "one more unless at the limit": the count is a hash of server id -> places; the
# places of servers whose heartbeat key is gone are dropped first.
_ENTER = """
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if redis.call('EXISTS', ARGV[3] .. fields[i]) == 1 then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
if total >= tonumber(ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('EXPIRE', KEYS[1], 86400)
return 1
"""
_LEAVE = """
if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') > 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
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
        self.server_id = secrets.token_hex(8)  # this process, for its in-flight places
        self._beats: asyncio.Task[None] | None = None

    async def add(self, key: str, amount: int, minute: int | None = None) -> int:
        name = f"{self._prefix}{key}:{window()[0] if minute is None else minute}"
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
            await self._beat()
            entered = await self._enter(
                keys=[f"{self._prefix}{key}:in-flight"], args=[limit, self.server_id, f"{self._prefix}server:"]
            )
        except Exception as exc:
            raise CountersUnavailable(str(exc)) from exc
        return bool(entered)

    async def leave(self, key: str) -> None:
        try:
            await self._leave(keys=[f"{self._prefix}{key}:in-flight"], args=[self.server_id])
        except Exception as exc:
            raise CountersUnavailable(str(exc)) from exc

    async def _beat(self) -> None:
        """Renew this server's heartbeat now, and every few seconds from now on."""
        if self._beats is None or self._beats.done():
            await self._redis.set(f"{self._prefix}server:{self.server_id}", 1, ex=HEARTBEAT_SECONDS)
            self._beats = asyncio.get_running_loop().create_task(self._beat_forever())

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(_BEAT_EVERY)
            with contextlib.suppress(Exception):  # Redis away for a moment: the next beat may reach it
                await self._redis.set(f"{self._prefix}server:{self.server_id}", 1, ex=HEARTBEAT_SECONDS)

    async def close(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
        with contextlib.suppress(Exception):
            await self._redis.delete(f"{self._prefix}server:{self.server_id}")  # our places go with it
        await self._redis.aclose()


def counters_for(url: str | None) -> Counters:
    """``None`` or ``memory``: this process; ``redis://...``: shared."""
    if url in (None, "", "memory"):
        return MemoryCounters()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisCounters(url)
    raise ValueError(f"unsupported --limits {url!r}: use memory or redis://HOST:PORT/DB")
