"""Per-project rate limits through the real servers: two servers sharing Redis count one
project's requests together, headers say where a project stands, tokens and concurrency
are limited, and failed key lookups are throttled per address."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import MODEL, start_server, stop_server

USER = [{"role": "user", "content": "Say one word."}]
REDIS = "redis://127.0.0.1:6379/0"


def limited_key(store: str, **limits: int) -> str:
    """A key of a new project (unique per run, so Redis counts of earlier runs do not meet it)."""
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in limits.items()]
    project = "limited-" + secrets.token_hex(4)
    out = subprocess.run(
        [sys.executable, "-m", "chatport", "keys", "create", "--project", project, "--store", store, *flags],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Two servers on one store and one Redis."""
    tmp = tmp_path_factory.mktemp("limits")
    store = f"sqlite:///{tmp}/shared.db"
    limited_key(store)  # keys exist before the servers start: authentication is on from the start
    servers = [start_server(str(tmp), "--store", store, "--limits", REDIS) for _ in range(2)]
    yield store, servers
    for srv in servers:
        stop_server(srv)


def _wait_for_fresh_minute(seconds_needed: float) -> None:
    """Windows are clock minutes: start a multi-request test where it fits in one."""
    left = 60 - time.time() % 60
    if left < seconds_needed:
        time.sleep(left + 0.1)


def test_two_servers_share_a_projects_requests_per_minute(shared):
    store, (a, b) = shared
    key = limited_key(store, rpm=4)
    _wait_for_fresh_minute(20)
    clients = [OpenAI(base_url=s.api, api_key=key, max_retries=0) for s in (a, b)]
    remaining = []
    for client in (*clients, *clients):
        raw = client.models.with_raw_response.list()
        assert raw.headers["x-ratelimit-limit-requests"] == "4"
        remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    assert remaining == [3, 2, 1, 0]
    for client in clients:
        with pytest.raises(openai.RateLimitError) as info:
            client.models.list()
        assert info.value.code == "rate_limit_exceeded" and info.value.type == "requests"
        assert int(info.value.response.headers["retry-after"]) >= 1
        assert "Limit 4" in info.value.message


def test_tokens_per_minute_are_reserved_when_a_request_starts(shared, eog_bias):
    # Before: 12 requests at once of a 300 TPM project were all admitted and used 1,615
    # tokens in their minute (tokens were only counted when an answer ended).
    store, (a, b) = shared
    key = limited_key(store, tpm=300)
    _wait_for_fresh_minute(40)
    clients = [OpenAI(base_url=s.api, api_key=key, max_retries=0) for s in (a, b)]
    answered, refused = [], []

    def one(i: int) -> None:
        try:
            done = clients[i % 2].chat.completions.create(model=MODEL, messages=USER, max_tokens=100, logit_bias=eog_bias)
            answered.append(done.usage.total_tokens)
        except openai.RateLimitError as exc:
            refused.append(exc)

    workers = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert answered and refused
    assert sum(answered) <= 300, answered  # what the minute allows, not what was asked at once
    assert all(exc.type == "tokens" and "Requested" in exc.message for exc in refused)


def test_a_request_larger_than_the_limit_is_refused_as_too_large(shared):
    store, (a, _) = shared
    key = limited_key(store, tpm=30)
    with pytest.raises(openai.RateLimitError) as info:
        OpenAI(base_url=a.api, api_key=key, max_retries=0).chat.completions.create(model=MODEL, messages=USER, max_tokens=20)
    assert info.value.type == "tokens" and "Request too large" in info.value.message and "Limit 30" in info.value.message


def test_what_an_answer_used_is_what_the_minute_counts(shared):
    store, (a, b) = shared
    key = limited_key(store, tpm=1000)
    _wait_for_fresh_minute(30)
    first = OpenAI(base_url=a.api, api_key=key, max_retries=0).chat.completions.with_raw_response.create(
        model=MODEL, messages=USER, max_tokens=20
    )
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    used = first.parse().usage.total_tokens
    # The reservation (prompt + 20) was settled to the tokens used.
    second = OpenAI(base_url=b.api, api_key=key, max_retries=0).chat.completions.with_raw_response.create(
        model=MODEL, messages=USER, max_tokens=1
    )
    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - used)


def test_concurrent_requests_are_limited_and_released(shared, eog_bias):
    store, (a, b) = shared
    key = limited_key(store, max_concurrent=1)
    started = threading.Event()

    def long_stream() -> None:
        stream = OpenAI(base_url=a.api, api_key=key, max_retries=0).chat.completions.create(
            model=MODEL, messages=USER, max_tokens=200, logit_bias=eog_bias, stream=True
        )
        for _ in stream:
            started.set()

    worker = threading.Thread(target=long_stream)
    worker.start()
    assert started.wait(60)
    with pytest.raises(openai.RateLimitError) as info:
        OpenAI(base_url=b.api, api_key=key, max_retries=0).models.list()
    assert "concurrent" in info.value.message
    worker.join(60)
    assert OpenAI(base_url=b.api, api_key=key, max_retries=0).models.list().data  # the place was released


def test_projects_without_limits_get_no_limit_headers(server):
    raw = OpenAI(base_url=server.api, api_key="x", max_retries=0).models.with_raw_response.list()
    assert "x-ratelimit-limit-requests" not in raw.headers


def test_failed_key_lookups_are_throttled_per_address(tmp_path):
    store = f"sqlite:///{tmp_path}/k.db"
    key = limited_key(store, rpm=1000)
    other = limited_key(store, rpm=1000)
    srv = start_server(str(tmp_path), "--store", store)  # the key exists before: authentication is on
    try:
        _wait_for_fresh_minute(30)
        with httpx.Client(base_url=srv.api) as http:
            assert http.get("/models", headers={"authorization": f"Bearer {key}"}).status_code == 200
            codes = [http.get("/models", headers={"authorization": f"Bearer sk-cp-guess-{i:04d}"}).status_code for i in range(60)]
            assert codes == [401] * 60
            throttled = http.get("/models", headers={"authorization": "Bearer sk-cp-guess-last"})
            assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
            # Until the minute is over, this address gets no answer about any key it has not used before...
            assert http.get("/models", headers={"authorization": f"Bearer {other}"}).status_code == 429
            # ...while the key it was using goes on working: a guesser sharing its address cannot lock it out.
            assert http.get("/models", headers={"authorization": f"Bearer {key}"}).status_code == 200
    finally:
        stop_server(srv)


# --- what no client can do to the limits ------------------------------------------------


def test_projects_without_limits_are_served_while_redis_is_unreachable(tmp_path):
    store = f"sqlite:///{tmp_path}/k.db"
    free = limited_key(store)
    limited = limited_key(store, rpm=100)
    srv = start_server(str(tmp_path), "--store", store, "--limits", "redis://127.0.0.1:1/0")  # nothing listens there
    try:
        assert OpenAI(base_url=srv.api, api_key=free, max_retries=0).models.list().data
        with pytest.raises(openai.InternalServerError) as info:
            OpenAI(base_url=srv.api, api_key=limited, max_retries=0).models.list()
        assert info.value.status_code == 503 and info.value.body["code"] == "limits_unavailable"
        # The failed-key throttle goes on, counted in this process.
        with httpx.Client(base_url=srv.api) as http:
            codes = [http.get("/models", headers={"authorization": f"Bearer sk-cp-guess-{i}"}).status_code for i in range(61)]
        assert codes[:60] == [401] * 60 and codes[60] == 429
    finally:
        stop_server(srv)


def test_a_server_killed_mid_request_gives_its_places_back(tmp_path, eog_bias):
    # Before: a kill -9 left its in-flight places in Redis for up to 600 s.
    store = f"sqlite:///{tmp_path}/k.db"
    key = limited_key(store, max_concurrent=1)
    doomed = start_server(str(tmp_path), "--store", store, "--limits", REDIS)
    other = start_server(str(tmp_path), "--store", store, "--limits", REDIS)
    try:
        with httpx.stream(
            "POST",
            doomed.api + "/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": MODEL, "messages": USER, "max_tokens": 1000, "logit_bias": eog_bias, "stream": True},
            timeout=60,
        ) as stream:
            assert stream.status_code == 200, stream.read()
            lines = stream.iter_lines()  # kept: a dropped iterator closes the response
            next(lines)  # the place is held
            with pytest.raises(openai.RateLimitError):
                OpenAI(base_url=other.api, api_key=key, max_retries=0).models.list()
            doomed.process.kill()
        deadline = time.monotonic() + 30
        while True:
            try:
                OpenAI(base_url=other.api, api_key=key, max_retries=0).models.list()
                break
            except openai.RateLimitError:
                assert time.monotonic() < deadline, "the dead server's place was never given back"
                time.sleep(1)
    finally:
        stop_server(other)
        stop_server(doomed)


def test_metrics_and_the_status_page_count_wrong_keys_too(tmp_path):
    store = f"sqlite:///{tmp_path}/k.db"
    limited_key(store)
    srv = start_server(str(tmp_path), "--store", store)
    try:
        _wait_for_fresh_minute(30)
        with httpx.Client(base_url=srv.base_url) as http:
            codes = [
                http.get(path, headers={"authorization": f"Bearer sk-cp-guess-{i}"}).status_code
                for i in range(30)
                for path in ("/metrics", "/ui/status")
            ]
            assert codes == [401] * 60
            assert http.get("/metrics", headers={"authorization": "Bearer sk-cp-guess-more"}).status_code == 429
    finally:
        stop_server(srv)


def test_x_forwarded_for_is_ignored_unless_from_a_trusted_proxy(tmp_path):
    store = f"sqlite:///{tmp_path}/k.db"
    limited_key(store)
    srv = start_server(str(tmp_path), "--store", store)
    try:
        _wait_for_fresh_minute(30)
        with httpx.Client(base_url=srv.api) as http:
            # A new "address" for every guess: before, each got its own count from loopback.
            codes = [
                http.get(
                    "/models", headers={"authorization": f"Bearer sk-cp-guess-{i}", "x-forwarded-for": f"203.0.113.{i}"}
                ).status_code
                for i in range(61)
            ]
        assert codes[:60] == [401] * 60 and codes[60] == 429
    finally:
        stop_server(srv)
