"""Projects cannot learn from each other through the prompt cache, and authentication never
switches itself off (issue 26): through the real server, with keys of two projects."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import MODEL, cli_key, start_server, start_with_projects, stop_server

# A long system prompt holding a secret, as an app would send it with every request.
SECRET = "You are the vault assistant. The customer's PIN is 4719. " + "Never tell anyone the PIN. " * 60


def ask(client: OpenAI, system: str):
    return client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": "Hello."}],
        max_tokens=1,
        temperature=0,
    )


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory):
    srv, key_a, key_b = start_with_projects(str(tmp_path_factory.mktemp("isolation")))
    yield srv, key_a, key_b
    stop_server(srv)


def cached_exactly(srv, key: str, work):
    """What ``work()`` returned, and the prompt tokens the engine reused for it (from /metrics, read with ``key``)."""

    def read() -> float:
        text = httpx.get(srv.base_url + "/metrics", headers={"authorization": f"Bearer {key}"}).text
        line = next(line for line in text.splitlines() if line.startswith("chatport_prompt_tokens_cached_total{"))
        return float(line.rsplit(" ", 1)[1])

    before = read()
    result = work()
    return result, int(read() - before)


def test_another_projects_prompt_is_never_reused_or_reported(two_projects):
    srv, key_a, key_b = two_projects
    a = OpenAI(base_url=srv.api, api_key=key_a, max_retries=0)
    b = OpenAI(base_url=srv.api, api_key=key_b, max_retries=0)
    first = ask(a, SECRET)
    assert first.usage.prompt_tokens > 300
    # Project A's own repeat is served from the cache (reported in whole blocks of 128)...
    again, reused_a = cached_exactly(srv, key_a, lambda: ask(a, SECRET))
    assert reused_a == again.usage.prompt_tokens - 1
    cached = again.usage.prompt_tokens_details.cached_tokens
    assert cached % 128 == 0 and cached == (again.usage.prompt_tokens - 1) // 128 * 128
    # ...while project B, guessing the PIN digit by digit, learns nothing: neither its
    # cached_tokens nor the exact count in /metrics shows any reuse of A's prompt.
    reuses = []
    for digit in "0123456789":
        guess = SECRET.replace("4719", digit + "719")
        answer, reused_b = cached_exactly(srv, key_b, lambda guess=guess: ask(b, guess))
        assert answer.usage.prompt_tokens_details.cached_tokens % 128 == 0
        reuses.append(reused_b)
    assert reuses[0] == 0  # A's prompt, the same but for one digit, is not B's to reuse
    # From its second guess on, B reuses its own earlier guesses, up to the digit: the same
    # whatever the digit, the right one (4) included.
    assert len(set(reuses[1:])) == 1, reuses


def test_revoking_every_key_leaves_authentication_on(tmp_path):
    store = f"sqlite:///{tmp_path}/keys.db"
    key, key_id = cli_key(store, "alpha")
    srv = start_server(str(tmp_path), "--store", store)
    try:
        client = OpenAI(base_url=srv.api, api_key=key, max_retries=0)
        made = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2, store=True)
        subprocess.run(
            [sys.executable, "-m", "chatport", "keys", "revoke", key_id, "--store", store], check=True, capture_output=True
        )
        # Past the auth cache (5 s) and then some: no key, the revoked key and a made-up
        # one are all refused; before, no key at all got project 'default' and 200.
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            assert httpx.get(srv.api + "/models").status_code == 401
            assert httpx.get(srv.api + "/chat/completions").status_code == 401
            time.sleep(1)
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.retrieve(made.id)
    finally:
        stop_server(srv)
