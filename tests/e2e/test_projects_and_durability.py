"""Projects keep stored completions apart; crashes and database outages lose nothing
that a client was told about, and traffic without store keeps flowing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.conftest import MODEL, cli_key, start_server, stop_server

USER = [{"role": "user", "content": "Say one word."}]


def test_projects_cannot_see_each_other(fresh_store_url, tmp_path):
    store_url = fresh_store_url
    key_a, _ = cli_key(store_url, "alpha")
    key_b, key_b_id = cli_key(store_url, "beta")
    listing = subprocess.run(
        [sys.executable, "-m", "chatport", "keys", "list", "--store", store_url], capture_output=True, text=True, check=True
    ).stdout
    assert "alpha" in listing and "beta" in listing and key_a not in listing  # shown once, stored hashed

    srv = start_server(str(tmp_path), "--store", store_url)
    try:
        a = OpenAI(base_url=srv.api, api_key=key_a, max_retries=0)
        b = OpenAI(base_url=srv.api, api_key=key_b, max_retries=0)
        made = a.chat.completions.create(model=MODEL, messages=USER, max_tokens=2, store=True, metadata={"who": "alpha"})
        assert a.chat.completions.retrieve(made.id).id == made.id
        with pytest.raises(openai.NotFoundError):
            b.chat.completions.retrieve(made.id)
        with pytest.raises(openai.NotFoundError):
            b.chat.completions.update(made.id, metadata={"who": "beta"})
        with pytest.raises(openai.NotFoundError):
            b.chat.completions.delete(made.id)
        with pytest.raises(openai.NotFoundError):
            b.chat.completions.messages.list(made.id)
        assert made.id not in [c.id for c in b.chat.completions.list(limit=100)]
        assert made.id in [c.id for c in a.chat.completions.list(metadata={"who": "alpha"})]
        assert a.chat.completions.retrieve(made.id).metadata == {"who": "alpha"}

        # Keys exist now, so a request without one is refused...
        assert httpx.get(srv.api + "/models").status_code == 401
        with pytest.raises(openai.AuthenticationError):
            OpenAI(base_url=srv.api, api_key="sk-cp-made-up", max_retries=0).models.list()
        # ...and a revoked key stops working.
        subprocess.run(
            [sys.executable, "-m", "chatport", "keys", "revoke", key_b_id, "--store", store_url], check=True, capture_output=True
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                b.models.list()
            except openai.AuthenticationError:
                break
            assert time.monotonic() < deadline, "revoked key still accepted"
            time.sleep(0.5)
    finally:
        stop_server(srv)


def test_database_down_gives_503_for_store_only(tmp_path):
    # Serving without keys is said explicitly: otherwise keys that cannot be checked
    # refuse every request (see tests/e2e/test_hardening.py).
    srv = start_server(str(tmp_path), "--store", "postgresql://postgres@127.0.0.1:1/nowhere", "--no-auth")
    try:
        client = OpenAI(base_url=srv.api, api_key="x", max_retries=0)
        assert client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2).choices
        with pytest.raises(openai.InternalServerError) as create_err:
            client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2, store=True)
        assert create_err.value.status_code == 503
        assert create_err.value.body["code"] == "store_unavailable"
        for call in (client.chat.completions.list, lambda: client.chat.completions.retrieve("chatcmpl-x")):
            with pytest.raises(openai.InternalServerError) as err:
                call()
            assert err.value.status_code == 503
        with pytest.raises(openai.InternalServerError):
            list(client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2, store=True, stream=True))
        assert client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2, stream=True)
    finally:
        stop_server(srv)


def test_kill_9_under_store_load_keeps_every_answered_completion(fresh_store_url, tmp_path):
    store_url = fresh_store_url
    srv = start_server(str(tmp_path), "--store", store_url)
    received: list[str] = []

    async def load():
        client = AsyncOpenAI(base_url=srv.api, api_key="x", max_retries=0, timeout=30)

        async def one(i):
            try:
                made = await client.chat.completions.create(
                    model=MODEL, messages=USER, max_tokens=3, store=True, metadata={"crash": "yes", "i": str(i)}
                )
                received.append(made.id)
            except (openai.APIConnectionError, openai.APIStatusError):
                pass  # cut off by the crash: the client was told nothing

        tasks = [asyncio.ensure_future(one(i)) for i in range(120)]
        deadline = time.monotonic() + 60
        while len(received) < 15:
            assert time.monotonic() < deadline, "the load never got going"
            await asyncio.sleep(0.01)
        os.kill(srv.process.pid, signal.SIGKILL)
        await asyncio.gather(*tasks)

    try:
        asyncio.run(load())
    finally:
        srv.process.wait(timeout=10)
    assert 15 <= len(received) < 120

    again = start_server(str(tmp_path), "--store", store_url)
    try:
        client = OpenAI(base_url=again.api, api_key="x", max_retries=0)
        for completion_id in received:
            assert client.chat.completions.retrieve(completion_id).metadata["crash"] == "yes"
        listed = {c.id for c in client.chat.completions.list(metadata={"crash": "yes"}, limit=100)}
        assert set(received) <= listed
    finally:
        stop_server(again)
