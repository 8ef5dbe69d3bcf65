"""Speculation on every request (--speculation auto), through the SDK: drafts from the
request's own context and from a project's earlier answers, counted in /metrics, and answers that are the ones the default
(--speculation off) gives."""

from __future__ import annotations

import re

import httpx
import pytest
from openai import OpenAI

from tests.conftest import MODEL, start_server, start_with_projects, stop_server

TEXT = (
    "The keeper climbed the stairs at dusk, lit the lamp, wound the clockwork and wrote in the log: "
    "wind from the west, sea calm, two ships passed north. Then he climbed down, ate his supper and slept."
)
COPY = [{"role": "user", "content": f"Repeat this text exactly, word for word:\n\n{TEXT}"}]


def drafts(server, key: str = "") -> dict[tuple[str, str], float]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    text = httpx.get(server.base_url + "/metrics", headers=headers, timeout=10).text
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
    """Greedy answers with and without drafts are the same up to where llama.cpp's CPU
    kernels, which are not batch-invariant, flip a near-tie (docs/benchmarks.md): where
    they part, the answer without drafts had two tokens within a logit's rounding of each
    other. Drafts that changed the answer (a token taken without being verified) would part
    them anywhere. (Seeded sampling is checked on the engine, with exact logits.)"""
    prompts = (COPY, [{"role": "user", "content": "List the days of the week, one per line, twice."}])
    # Each prompt twice on the speculating server: the second answer drafts from the first.
    for messages in (*prompts, *prompts):
        kwargs = {"model": MODEL, "messages": messages, "max_tokens": 120, "temperature": 0, "logprobs": True, "top_logprobs": 2}
        ours = spec_client.chat.completions.create(**kwargs).choices[0].logprobs.content
        theirs = client.chat.completions.create(**kwargs).choices[0].logprobs.content
        ours_tokens, their_tokens = [t.token for t in ours], [t.token for t in theirs]
        if ours_tokens == their_tokens:
            continue
        shorter = min(len(ours_tokens), len(their_tokens))
        parted = next((i for i in range(shorter) if ours_tokens[i] != their_tokens[i]), shorter)
        # Where one ended and the other went on, the end was the near-tie of the next token.
        at = theirs[parted] if parted < len(theirs) else ours[parted]
        top = at.top_logprobs
        assert len(top) == 2 and top[0].logprob - top[1].logprob < 1.0, (parted, top)
    assert ("context", "accepted") not in drafts(server)  # off: no context drafts at all
    assert ("history", "accepted") not in drafts(server)


@pytest.fixture(scope="module")
def spec_projects(tmp_path_factory):
    srv, key_a, key_b = start_with_projects(str(tmp_path_factory.mktemp("spec-projects")), "--speculation", "auto")
    yield srv, key_a, key_b
    stop_server(srv)


def test_an_answer_given_before_drafts_for_its_own_project_only(spec_projects):
    """A project asking again is answered sooner from what it was answered before; another
    project asking the same is not (accepted drafts show in timing, so a shared history
    would tell one project what another's answers said)."""
    srv, key_a, key_b = spec_projects
    ask = [{"role": "user", "content": "Write a short poem about a lighthouse keeper."}]

    def answer(key: str) -> tuple[str, dict[tuple[str, str], float]]:
        client = OpenAI(base_url=srv.api, api_key=key, max_retries=0, timeout=120)
        before = drafts(srv, key)
        text = client.chat.completions.create(model=MODEL, messages=ask, temperature=0, max_tokens=80)
        after = drafts(srv, key)
        return text.choices[0].message.content or "", {k: after[k] - before.get(k, 0) for k in after}

    first, _ = answer(key_a)
    again, counted = answer(key_a)
    assert again == first
    assert counted.get(("history", "accepted"), 0) > 0
    other, counted = answer(key_b)
    assert other == first
    assert counted.get(("history", "accepted"), 0) == 0 and counted.get(("history", "rejected"), 0) == 0
