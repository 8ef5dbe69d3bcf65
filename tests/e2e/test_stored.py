"""Stored completions through the official Python SDK, on SQLite and on PostgreSQL."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import MODEL, start_server, stop_server

USER = [{"role": "user", "content": "Say one word."}]


@pytest.fixture(scope="module")
def stored_server(store_url, tmp_path_factory):
    srv = start_server(str(tmp_path_factory.mktemp("stored")), "--store", store_url)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def sdk(stored_server):
    return OpenAI(base_url=stored_server.api, api_key="unused", max_retries=0, timeout=120)


def create(sdk, **kwargs):
    args = {"model": MODEL, "messages": USER, "max_tokens": 2, "store": True, **kwargs}
    return sdk.chat.completions.create(**args)


def test_create_retrieve_update_delete(sdk):
    made = create(sdk, metadata={"topic": "seas", "user": "ada"})
    got = sdk.chat.completions.retrieve(made.id)
    assert got.id == made.id
    assert got.choices[0].message.content == made.choices[0].message.content
    assert got.usage.total_tokens == made.usage.total_tokens
    assert got.metadata == {"topic": "seas", "user": "ada"}

    updated = sdk.chat.completions.update(made.id, metadata={"topic": "rivers"})
    assert updated.metadata == {"topic": "rivers"}
    assert sdk.chat.completions.retrieve(made.id).metadata == {"topic": "rivers"}

    deleted = sdk.chat.completions.delete(made.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (made.id, True, "chat.completion.deleted")
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.update(made.id, metadata={})


def test_streamed_completion_is_stored_with_what_was_streamed(sdk):
    chunks = list(create(sdk, stream=True, max_tokens=6, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    stored = sdk.chat.completions.retrieve(chunks[0].id)
    assert stored.choices[0].message.content == text
    assert stored.usage.completion_tokens == chunks[-1].usage.completion_tokens


def test_without_store_nothing_is_retrievable(sdk):
    for extra in ({}, {"store": False}):
        made = sdk.chat.completions.create(model=MODEL, messages=USER, max_tokens=2, **extra)
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.retrieve(made.id)


def test_list_filters_order_and_auto_pagination(sdk):
    tag = {"batch": "paging-test"}
    ids = [create(sdk, metadata={**tag, "n": str(i), "parity": "even" if i % 2 == 0 else "odd"}).id for i in range(25)]

    walked = [c.id for c in sdk.chat.completions.list(metadata=tag, limit=10)]
    assert walked == ids  # default order is ascending, every page walked

    first_page = sdk.chat.completions.list(metadata=tag, limit=10)
    assert len(first_page.data) == 10 and first_page.has_more
    assert first_page.first_id == ids[0] and first_page.last_id == ids[9]

    newest = sdk.chat.completions.list(metadata=tag, limit=3, order="desc")
    assert [c.id for c in newest.data] == ids[::-1][:3]

    evens = [c.id for c in sdk.chat.completions.list(metadata={**tag, "parity": "even"}, limit=100)]
    assert evens == ids[::2]
    assert [c.metadata["n"] for c in sdk.chat.completions.list(metadata={**tag, "n": "7"})] == ["7"]
    assert list(sdk.chat.completions.list(metadata={**tag, "n": "7", "parity": "even"})) == []

    assert all(c.model == MODEL for c in sdk.chat.completions.list(model=MODEL, limit=5).data)
    assert sdk.chat.completions.list(model="other-model").data == []


def test_messages_keep_content_parts_and_paginate(sdk):
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "first part"}, {"type": "text", "text": "second part"}]},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Go on."},
    ]
    made = create(sdk, messages=messages)
    listed = sdk.chat.completions.messages.list(made.id)
    assert [m.role for m in listed.data] == ["developer", "user", "assistant", "user"]
    assert listed.data[0].id == f"{made.id}-0"
    assert [p.text for p in listed.data[1].content_parts] == ["first part", "second part"]
    assert listed.data[0].content == "Be brief." and listed.data[0].content_parts is None

    walked = [m.id for m in sdk.chat.completions.messages.list(made.id, limit=1)]
    assert walked == [f"{made.id}-{i}" for i in range(4)]
    backwards = sdk.chat.completions.messages.list(made.id, order="desc", limit=2)
    assert [m.content for m in backwards.data] == ["Go on.", "Noted."]


def test_sql_looking_input_is_stored_and_matched_literally(sdk):
    nasty = "x' OR '1'='1'; DROP TABLE stored_completions; --"
    made = create(sdk, metadata={"q": nasty, "k%_": "%"})
    assert [c.id for c in sdk.chat.completions.list(metadata={"q": nasty})] == [made.id]
    assert list(sdk.chat.completions.list(metadata={"q": "x' OR '1'='1"})) == []
    assert [c.id for c in sdk.chat.completions.list(metadata={"k%_": "%"})] == [made.id]
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.retrieve("chatcmpl-' OR 1=1 --")
    assert sdk.chat.completions.retrieve(made.id).metadata["q"] == nasty


@pytest.mark.parametrize(
    "query,param,code",
    [
        ("limit=0", "limit", "integer_below_min_value"),
        ("limit=101", "limit", "integer_above_max_value"),
        ("limit=ten", "limit", "invalid_type"),
        ("order=sideways", "order", "invalid_value"),
        ("after=not-a-completion-id", "after", "invalid_value"),
        ("metadata=5", "metadata", "invalid_type"),
        ("metadata[k]=" + "v" * 513, "metadata.k", "string_above_max_length"),
    ],
)
def test_bad_list_parameters(stored_server, query, param, code):
    response = httpx.get(f"{stored_server.api}/chat/completions?{query}")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


def test_bad_updates_and_message_cursors(stored_server, sdk):
    made = create(sdk)
    url = f"{stored_server.api}/chat/completions/{made.id}"
    assert httpx.post(url, json={"metadata": {"a": "b"}, "model": "x"}).status_code == 400
    assert httpx.post(url, json={"metadata": {"a": 1}}).status_code == 400
    assert httpx.post(url, json={}).status_code == 400
    assert httpx.post(url, json={"metadata": {f"k{i}": "v" for i in range(17)}}).status_code == 400
    assert httpx.get(url + "/messages?after=garbage").status_code == 400
    assert httpx.get(url + "/messages?limit=0").status_code == 400
    assert httpx.get(f"{stored_server.api}/chat/completions/chatcmpl-missing/messages").status_code == 404
    assert sdk.chat.completions.retrieve(made.id).metadata == {}  # nothing touched
