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


def test_tokens_per_minute_refuse_once_used(shared):
    store, (a, b) = shared
    key = limited_key(store, tpm=30)
    _wait_for_fresh_minute(30)
    first = OpenAI(base_url=a.api, api_key=key, max_retries=0).chat.completions.with_raw_response.create(
        model=MODEL, messages=USER, max_tokens=20
    )
    assert first.headers["x-ratelimit-limit-tokens"] == "30"
    assert first.headers["x-ratelimit-remaining-tokens"] == "30"
    used = first.parse().usage.total_tokens
    assert used >= 30  # the prompt alone is longer than that
    with pytest.raises(openai.RateLimitError) as info:
        OpenAI(base_url=b.api, api_key=key, max_retries=0).chat.completions.create(model=MODEL, messages=USER, max_tokens=1)
    assert info.value.type == "tokens" and f"Used {used}" in info.value.message


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
    srv = start_server(str(tmp_path), "--store", store)  # the key exists before: authentication is on
    try:
        _wait_for_fresh_minute(30)
        with httpx.Client(base_url=srv.api) as http:
            codes = [http.get("/models", headers={"authorization": f"Bearer sk-cp-guess-{i:04d}"}).status_code for i in range(60)]
            assert codes == [401] * 60
            throttled = http.get("/models", headers={"authorization": "Bearer sk-cp-guess-last"})
            assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
            # Until the minute is over, this address gets no answer about any key.
            assert http.get("/models", headers={"authorization": f"Bearer {key}"}).status_code == 429
    finally:
        stop_server(srv)
