"""Speculation on every request (--speculation auto), through the SDK: drafts from the
request's own context, counted in /metrics, and answers that are the ones the default
(--speculation off) gives."""

from __future__ import annotations

import re

import httpx
import pytest
from openai import OpenAI

from tests.conftest import MODEL, start_server, stop_server

TEXT = (
    "The keeper climbed the stairs at dusk, lit the lamp, wound the clockwork and wrote in the log: "
    "wind from the west, sea calm, two ships passed north. Then he climbed down, ate his supper and slept."
)
COPY = [{"role": "user", "content": f"Repeat this text exactly, word for word:\n\n{TEXT}"}]


def drafts(server) -> dict[tuple[str, str], float]:
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    found = re.findall(r'^chatport_draft_tokens_total\{[^}]*outcome="(\w+)",source="(\w+)"\} ([0-9.e+]+)$', text, re.M)
    return {(source, outcome): float(value) for outcome, source, value in found}


@pytest.fixture(scope="module")
def spec_server(tmp_path_factory):
    srv = start_server(str(tmp_path_factory.mktemp("spec")), "--speculation", "auto")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def spec_client(spec_server):
    return OpenAI(base_url=spec_server.api, api_key="unused", max_retries=0, timeout=120)


def test_a_copied_text_is_drafted_from_the_prompt_and_counted(spec_server, spec_client):
    server, client = spec_server, spec_client
    before = drafts(server)
    response = client.chat.completions.create(model=MODEL, messages=COPY, temperature=0, max_tokens=120)
    after = drafts(server)
    assert response.choices[0].message.content
    accepted = after.get(("context", "accepted"), 0) - before.get(("context", "accepted"), 0)
    rejected = after.get(("context", "rejected"), 0) - before.get(("context", "rejected"), 0)
    # The answer copies its prompt: drafts were made and taken, never more than it has tokens.
    assert accepted > 0 and rejected >= 0
    assert accepted < response.usage.completion_tokens


def test_answers_are_the_same_with_speculation_off(spec_client, client, server):
    plain = client
    for messages in (COPY, [{"role": "user", "content": "List the days of the week, one per line, twice."}]):
        kwargs = {"model": MODEL, "messages": messages, "max_tokens": 120}
        for sampling in ({"temperature": 0}, {"temperature": 0.8, "seed": 11}):
            ours = spec_client.chat.completions.create(**kwargs, **sampling)
            theirs = plain.chat.completions.create(**kwargs, **sampling)
            assert ours.choices[0].message.content == theirs.choices[0].message.content, sampling
            assert ours.usage.completion_tokens == theirs.usage.completion_tokens
    assert ("context", "accepted") not in drafts(server)  # off: no context drafts at all
