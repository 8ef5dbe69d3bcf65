"""chatport with its engines as replicas on Ray Serve (``chatport serve --ray``): a local Ray
instance, two replicas of the default model with one thread each, stored completions on
PostgreSQL. The same SDK tests as the single server run through the Ray front (imported
below, their fixtures pointed at it); then what only replicas have: prefix affinity, cache
hits across users, per-replica metrics, and a replica killed mid-stream."""

from __future__ import annotations

import os
import signal
import time

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import MODEL, create_pg_database, drop_pg_database, start_server, stop_server
from tests.e2e.test_cancellation import running_sequences
from tests.e2e.test_hardening import poll
from tests.e2e.test_seed_examples import *  # noqa: F403 (the seed examples, every one)
from tests.e2e.test_stored import (  # noqa: F401
    sdk,
    test_create_retrieve_update_delete,
    test_list_filters_order_and_auto_pagination,
    test_messages_keep_content_parts_and_paginate,
    test_streamed_completion_is_stored_with_what_was_streamed,
    test_without_store_nothing_is_retrievable,
)
from tests.e2e.test_structured_outputs import (  # noqa: F401
    test_invalid_strict_schemas_are_400,
    test_json_object_mode,
    test_non_strict_schema_is_still_constrained,
    test_streamed_structured_output_validates,
)
from tests.e2e.test_tools import (  # noqa: F401
    target,
    test_allowed_tools_and_named_choice_stay_in_their_set,
    test_legacy_functions_and_function_call,
    test_parallel_tool_calls_false_never_makes_two,
    test_python_stream_helper_tool_events,
    test_required_calls_always_parse_and_validate,
    test_seed_function_calling_round_trip,
    test_streamed_calls_have_openai_delta_shape,
    test_tool_choice_none_makes_no_call,
)

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory):
    store = create_pg_database("chatport_ray")
    srv = start_server(
        str(tmp_path_factory.mktemp("ray")),
        *("--ray", "--replicas", "2", "--threads", "1", "--store", store),
        *("--alias", "gpt-4o=" + MODEL, "--alias", "gpt-4=" + MODEL),
    )
    yield srv
    stop_server(srv)
    drop_pg_database(store)


# The imported tests' fixtures, pointed at the Ray front.
@pytest.fixture(scope="module")
def server(ray_server):
    return ray_server


@pytest.fixture(scope="module")
def stored_server(ray_server):
    return ray_server


@pytest.fixture(scope="module")
def model_target(ray_server):
    return ray_server, MODEL


@pytest.fixture(scope="module")
def client(ray_server):
    return OpenAI(base_url=ray_server.api, api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def async_client(ray_server):
    return openai.AsyncOpenAI(base_url=ray_server.api, api_key="unused", max_retries=0, timeout=120)


# --- what replicas add ---------------------------------------------------------------------


def replicas(server) -> dict[str, dict]:
    status = httpx.get(server.base_url + "/ui/status", timeout=10).json()
    (model,) = status["models"]
    return {r["name"]: r for r in model["replicas"]}


def settled(server) -> dict[str, dict]:
    """Replica figures once every replica has reported after the last request ended."""
    time.sleep(2.5)  # replicas report every second
    return replicas(server)


def served(before: dict[str, dict], after: dict[str, dict]) -> dict[str, int]:
    return {name: after[name]["requests"] - before.get(name, {"requests": 0})["requests"] for name in after}


def test_two_replicas_report_in_metrics_and_status(ray_server):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = replicas(ray_server)
        if len(found) == 2 and all(r["alive"] for r in found.values()):
            break
        time.sleep(1)
    assert len(found) == 2 and all(r["alive"] and r["pid"] > 0 for r in found.values()), found
    metrics = httpx.get(ray_server.base_url + "/metrics").text
    for name in found:
        assert f'chatport_replica_up{{model="{MODEL}",replica="{name}"}} 1.0' in metrics
    assert httpx.get(ray_server.base_url + "/ready").status_code == 200


def test_one_prompt_cache_key_goes_to_one_replica(client, ray_server):
    for key in ("tenant-a", "tenant-b", "tenant-c"):
        before = settled(ray_server)
        for i in range(5):
            client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": f"Question {i}: name a fruit."}],
                max_completion_tokens=4,
                prompt_cache_key=key,
            )
        counts = served(before, settled(ray_server))
        assert sorted(counts.values()) == [0, 5], (key, counts)


def test_users_repeating_a_long_system_prompt_hit_the_cache_as_on_one_server(client, ray_server):
    # Four users, each with their own long system prompt, take turns; without affinity a
    # repeat lands on the other replica about half the time and recomputes the prefix.
    systems = [
        f"You are the assistant of shop number {user}. " + " ".join(f"Rule {n}: be kind to customer {n}." for n in range(60))
        for user in range(4)
    ]
    cached = []
    for turn in range(3):
        for system in systems:
            done = client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": f"Hello, turn {turn}."}],
                max_completion_tokens=2,
            )
            if turn:
                cached.append(done.usage.prompt_tokens_details.cached_tokens / done.usage.prompt_tokens)
    assert min(cached) > 0.8, cached


def test_a_client_that_leaves_frees_the_replicas_slot(ray_server, eog_bias):
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me everything about the ocean."}],
        "max_tokens": 1800,
        "logit_bias": eog_bias,
        "stream": True,
    }
    with httpx.stream("POST", ray_server.api + "/chat/completions", json=body, timeout=60) as r:
        lines = r.iter_lines()
        for _ in range(5):
            next(lines)
        assert poll(lambda: running_sequences(ray_server) == 1, 10)  # replicas report once a second
    # 1800 tokens would take a minute: the cancellation must reach the replica.
    assert poll(lambda: running_sequences(ray_server) == 0, 5)


def test_a_replica_killed_mid_stream_ends_that_stream_with_an_error_and_others_go_on(client, ray_server, eog_bias):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a very long story."}],
        max_completion_tokens=1800,
        logit_bias=eog_bias,
        stream=True,
    )
    chunks = iter(stream)
    for _ in range(5):
        next(chunks)
    deadline = time.monotonic() + 10
    busy = []
    while not busy and time.monotonic() < deadline:
        busy = [r for r in replicas(ray_server).values() if r["running"] == 1]
        time.sleep(0.3)
    assert len(busy) == 1, replicas(ray_server)
    os.kill(busy[0]["pid"], signal.SIGKILL)
    with pytest.raises(openai.APIError) as failed:
        for _ in chunks:
            pass
    assert "replica" in str(failed.value)
    # The other replica serves at once; Ray starts a new one in the killed one's place.
    done = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hi."}], max_completion_tokens=4)
    assert done.choices[0].message.content
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = {n: r for n, r in replicas(ray_server).items() if r["alive"]}
        if len(now) == 2 and busy[0]["name"] not in now:
            break
        time.sleep(1)
    assert len(now) == 2 and busy[0]["name"] not in now, replicas(ray_server)
