"""Prompt prefixes that outlive their slot, on the real model: a system prompt pushed out of
its slot by other prompts comes back from host memory (cached_tokens says so) and the
answer is the one its slot would have given; with prompt_cache_retention "24h" it also
comes back after a restart, and a corrupt file on disk is a clean miss."""

from __future__ import annotations

import os

import pytest
from openai import OpenAI

from tests.conftest import MODEL, start_server, stop_server

SYSTEM = " ".join(f"Rule {i}: greet guest number {i * 7} by name." for i in range(40))  # about 450 tokens


def ask(client: OpenAI, question: str, system: str = SYSTEM, **extra):
    return client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        max_tokens=12,
        temperature=0,
        extra_body=extra or None,
    )


def push_out(client: OpenAI) -> None:
    """Three long prompts that share nothing: with two slots, the system prompt's is taken."""
    for i in range(3):
        ask(client, "Hi", system=f"{'ABC'[i]} " + "lorem ipsum dolor " * 120)


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "kv")


def serve(tmp_path, cache_dir: str):
    return start_server(str(tmp_path), "--max-seqs", "2", "--cache-dir", cache_dir)


def client_of(server) -> OpenAI:
    return OpenAI(base_url=server.api, api_key="unused", max_retries=0, timeout=300)


def test_a_prefix_pushed_out_of_its_slot_comes_back_from_memory(tmp_path, cache_dir):
    server = serve(tmp_path, cache_dir)
    try:
        client = client_of(server)
        ask(client, "Who is first?")
        from_slot = ask(client, "Who is last?")  # the prefix still in its slot
        system_tokens = from_slot.usage.prompt_tokens_details.cached_tokens
        assert system_tokens > 400
        push_out(client)
        from_memory = ask(client, "Who is last?")
        assert from_memory.usage.prompt_tokens_details.cached_tokens >= system_tokens
        # The restored cells are the same KV: the answer is the slot's, word for word.
        assert from_memory.choices[0].message.content == from_slot.choices[0].message.content
    finally:
        stop_server(server)


def test_24h_prefixes_come_back_after_a_restart_and_a_corrupt_file_is_a_miss(tmp_path, cache_dir):
    server = serve(tmp_path, cache_dir)
    try:
        client = client_of(server)
        ask(client, "Who is first?", prompt_cache_retention="24h")
        before = ask(client, "Who is last?")
    finally:
        stop_server(server)
    assert [n for n in os.listdir(cache_dir) if n.endswith(".kv")]

    server = serve(tmp_path, cache_dir)
    try:
        after = ask(client_of(server), "Who is last?")
        assert after.usage.prompt_tokens_details.cached_tokens > 400
        assert after.choices[0].message.content == before.choices[0].message.content
    finally:
        stop_server(server)

    for name in os.listdir(cache_dir):  # a flipped byte in every saved state
        with open(os.path.join(cache_dir, name), "r+b") as f:
            f.seek(-100, os.SEEK_END)
            byte = f.read(1)
            f.seek(-100, os.SEEK_END)
            f.write(bytes([byte[0] ^ 0xFF]))
    server = serve(tmp_path, cache_dir)
    try:
        client = client_of(server)
        missed = ask(client, "Who is last?")
        assert missed.usage.prompt_tokens_details.cached_tokens == 0  # computed again, not read
        assert missed.choices[0].message.content  # (not compared: a cold prompt may part from a cached one at a near tie)
        assert not os.listdir(cache_dir)  # and the bad file is gone
        assert ask(client, "Who is first?").usage.prompt_tokens_details.cached_tokens > 400  # serving goes on
    finally:
        stop_server(server)
