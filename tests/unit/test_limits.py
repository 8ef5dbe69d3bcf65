"""The rate limiter over in-process and Redis counters, without a server."""

from __future__ import annotations

import secrets

import pytest

from chatport.protocol.errors import APIError
from chatport.protocol.limits import RateLimits
from chatport.service.auth import Principal
from chatport.service.limits import UNLIMITED, RateLimiter, duration
from chatport.store.counters import MemoryCounters, RedisCounters, counters_for, window


@pytest.fixture(params=["memory", "redis"])
def counters(request):
    if request.param == "memory":
        return MemoryCounters()
    return RedisCounters("redis://127.0.0.1:6379/0", prefix=f"chatport-test:{secrets.token_hex(4)}:")


@pytest.fixture(autouse=True)
def same_minute():
    """Counts are per clock minute: do not start a test in its last seconds."""
    import time

    _, left = window()
    if left < 5:
        time.sleep(left + 0.05)


def test_durations_are_written_as_openai_writes_them():
    assert [duration(s) for s in (0.017, 1, 20.46, 59.96, 360)] == ["17ms", "1s", "20.5s", "60s", "6m0s"]


async def test_requests_per_minute(counters):
    limiter = RateLimiter(counters)
    who = Principal("p", RateLimits(rpm=2))
    first = await limiter.admit(who)
    second = await limiter.admit(who)
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(APIError) as info:
        await limiter.admit(who)
    assert info.value.status_code == 429 and info.value.error_type == "requests" and info.value.retry_after >= 1
    other = await limiter.admit(Principal("q", RateLimits(rpm=2)))  # projects are counted apart
    assert other.headers["x-ratelimit-remaining-requests"] == "1"


async def test_tokens_per_minute_count_what_was_billed(counters):
    limiter = RateLimiter(counters)
    who = Principal("p", RateLimits(tpm=100))
    ticket = await limiter.admit(who)
    await ticket.charge(60)
    assert (await limiter.admit(who)).headers["x-ratelimit-remaining-tokens"] == "40"
    await ticket.charge(40)
    with pytest.raises(APIError) as info:
        await limiter.admit(who)
    assert info.value.error_type == "tokens" and "Used 100" in info.value.message


async def test_requests_at_once_are_released(counters):
    limiter = RateLimiter(counters)
    who = Principal("p", RateLimits(max_concurrent=1))
    ticket = await limiter.admit(who)
    with pytest.raises(APIError):
        await limiter.admit(who)
    await ticket.release()
    await ticket.release()  # twice is once
    second = await limiter.admit(who)
    await second.release()
    third = await limiter.admit(who)
    with pytest.raises(APIError):
        await limiter.admit(who)
    await third.release()


async def test_unlimited_projects_touch_no_counter():
    limiter = RateLimiter(RedisCounters("redis://127.0.0.1:1/0"))  # nothing listens there
    assert await limiter.admit(Principal("free")) is UNLIMITED


async def test_counters_that_cannot_be_reached_refuse_limited_projects():
    limiter = RateLimiter(RedisCounters("redis://127.0.0.1:1/0"))
    with pytest.raises(APIError) as info:
        await limiter.admit(Principal("p", RateLimits(rpm=10)))
    assert info.value.status_code == 503 and info.value.code == "limits_unavailable" and info.value.retry_after


async def test_failed_key_lookups_are_throttled_per_address(counters):
    limiter = RateLimiter(counters, auth_failures_per_minute=3)
    for _ in range(3):
        await limiter.check_address("10.0.0.1")
        await limiter.key_failed("10.0.0.1")
    with pytest.raises(APIError) as info:
        await limiter.check_address("10.0.0.1")
    assert info.value.status_code == 429
    await limiter.check_address("10.0.0.2")  # other addresses are not held back


async def test_two_limiters_on_one_redis_share_counts():
    prefix = f"chatport-test:{secrets.token_hex(4)}:"
    a, b = (RateLimiter(RedisCounters("redis://127.0.0.1:6379/0", prefix=prefix)) for _ in range(2))
    who = Principal("p", RateLimits(rpm=3))
    await a.admit(who)
    await b.admit(who)
    await a.admit(who)
    with pytest.raises(APIError):
        await b.admit(who)


def test_limits_stores_are_named_by_url():
    assert isinstance(counters_for("memory"), MemoryCounters)
    assert isinstance(counters_for("redis://127.0.0.1:6379/0"), RedisCounters)
    with pytest.raises(ValueError):
        counters_for("postgresql://x")


# --- issue 26: reservations, the known-good exemption, heartbeats ----------------------------


async def test_tokens_are_reserved_at_admission_and_settled_to_what_was_used(counters):
    limiter = RateLimiter(counters)
    who = Principal("p", RateLimits(tpm=300))
    first, second, third = [await limiter.admit(who) for _ in range(3)]
    await first.reserve(30, 100)  # 130 held
    await second.reserve(30, 100)  # 260 held
    with pytest.raises(APIError) as info:
        await third.reserve(30, 100)  # 390 would pass the limit
    assert info.value.status_code == 429 and info.value.error_type == "tokens"
    assert "Used 260, Requested 130" in info.value.message
    await first.charge(40)  # the answer used 40 of its 130
    assert (await limiter.admit(who)).headers["x-ratelimit-remaining-tokens"] == str(300 - 40 - 130)
    await second.release()  # ended unanswered (the client left): its prompt stays billed
    assert (await limiter.admit(who)).headers["x-ratelimit-remaining-tokens"] == str(300 - 40 - 30)


async def test_a_request_larger_than_the_whole_limit_is_too_large(counters):
    ticket = await RateLimiter(counters).admit(Principal("p", RateLimits(tpm=100)))
    with pytest.raises(APIError) as info:
        await ticket.reserve(80, 50)
    assert "Request too large" in info.value.message and "Requested 130" in info.value.message


async def test_keys_an_address_already_used_pass_its_throttle(counters):
    limiter = RateLimiter(counters, auth_failures_per_minute=3)
    limiter.key_worked("10.0.0.1", "sk-cp-good")
    for _ in range(3):
        await limiter.key_failed("10.0.0.1")
    await limiter.check_address("10.0.0.1", "sk-cp-good")  # its own key goes on working
    for token in ("sk-cp-guess", "sk-cp-other-good", None):
        with pytest.raises(APIError):
            await limiter.check_address("10.0.0.1", token)
    limiter.key_worked("10.0.0.2", "sk-cp-other-good")
    with pytest.raises(APIError):  # known good from another address only
        await limiter.check_address("10.0.0.1", "sk-cp-other-good")


async def test_the_failed_key_throttle_works_without_redis():
    limiter = RateLimiter(RedisCounters("redis://127.0.0.1:1/0"), auth_failures_per_minute=2)
    for _ in range(2):
        await limiter.check_address("10.0.0.1")
        await limiter.key_failed("10.0.0.1")
    with pytest.raises(APIError) as info:
        await limiter.check_address("10.0.0.1")
    assert info.value.status_code == 429  # counted in this process, not a 503 for everyone


async def test_a_dead_servers_places_go_with_its_heartbeat():
    prefix = f"chatport-test:{secrets.token_hex(4)}:"
    alive, dead = RedisCounters(REDIS_URL, prefix=prefix), RedisCounters(REDIS_URL, prefix=prefix)
    assert await dead.enter("p:in-flight", 2) and await dead.enter("p:in-flight", 2)
    assert not await alive.enter("p:in-flight", 2)
    # The dead server's heartbeat stops (as kill -9 leaves it: no leave, no goodbye).
    dead._beats.cancel()
    await dead._redis.delete(f"{prefix}server:{dead.server_id}")
    assert await alive.enter("p:in-flight", 2)  # its places are dropped at the next count
    await alive.leave("p:in-flight")
    await alive.close()


REDIS_URL = "redis://127.0.0.1:6379/0"
