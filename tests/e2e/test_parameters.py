"""Sampling and length parameters, honoured token by token on the real model."""

from __future__ import annotations

import pytest

from tests.e2e.test_cancellation import reused

PROMPT = [{"role": "user", "content": "Write three sentences about the sea."}]


def test_max_tokens_and_max_completion_tokens_end_with_length(client):
    for name in ("max_tokens", "max_completion_tokens"):
        response = client.chat.completions.create(model="gpt-4", messages=PROMPT, temperature=0, **{name: 7})
        assert response.choices[0].finish_reason == "length"
        assert response.usage.completion_tokens == 7


def test_stop_sequence_cuts_content_and_never_leaks_in_stream(client):
    full = client.chat.completions.create(model="gpt-4", messages=PROMPT, temperature=0, max_tokens=60)
    text = full.choices[0].message.content
    words = text.split()
    stop = " " + words[len(words) // 2]  # a word from the middle, with its leading space
    cut = text[: text.index(stop)]

    stopped = client.chat.completions.create(model="gpt-4", messages=PROMPT, temperature=0, max_tokens=60, stop=[stop, "zzzz"])
    assert stopped.choices[0].message.content == cut
    assert stopped.choices[0].finish_reason == "stop"

    chunks = list(
        client.chat.completions.create(model="gpt-4", messages=PROMPT, temperature=0, max_tokens=60, stop=stop, stream=True)
    )
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == cut
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_same_seed_same_output_different_seed_differs(client):
    def run(seed):
        return (
            client.chat.completions.create(model="gpt-4", messages=PROMPT, temperature=1.0, max_tokens=30, seed=seed)
            .choices[0]
            .message.content
        )

    first, again = run(1234), run(1234)
    assert first == again
    others = {run(s) for s in (1, 2, 3)}
    assert len(others | {first}) > 1


def test_n_returns_distinct_indexed_choices(client):
    response = client.chat.completions.create(model="gpt-4", messages=PROMPT, n=3, temperature=1.0, max_tokens=20, seed=7)
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert len({c.message.content for c in response.choices}) == 3
    assert response.usage.completion_tokens == 60  # every choice ran to its length


def test_n_streams_a_role_chunk_and_a_finish_per_choice(client):
    chunks = list(client.chat.completions.create(model="gpt-4", messages=PROMPT, n=2, max_tokens=5, stream=True, seed=3))
    roles = [c.choices[0].index for c in chunks if c.choices and c.choices[0].delta.role == "assistant"]
    finishes = [c.choices[0].index for c in chunks if c.choices and c.choices[0].finish_reason]
    assert sorted(roles) == [0, 1] and sorted(finishes) == [0, 1]


def test_logprobs_are_sorted_and_match_the_chosen_token(client):
    response = client.chat.completions.create(
        model="gpt-4", messages=PROMPT, temperature=0, max_tokens=12, logprobs=True, top_logprobs=5
    )
    choice = response.choices[0]
    entries = choice.logprobs.content
    assert len(entries) == response.usage.completion_tokens
    assert "".join(e.token for e in entries) == choice.message.content
    for entry in entries:
        assert bytes(entry.bytes).decode("utf-8") == entry.token
        tops = [t.logprob for t in entry.top_logprobs]
        assert len(tops) == 5 and tops == sorted(tops, reverse=True)
        # Greedy decoding picks the most likely token, so it heads its own top list.
        assert entry.top_logprobs[0].token == entry.token
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob)
        assert entry.logprob <= 0


def test_logprobs_stream_with_content(client):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4", messages=PROMPT, max_tokens=6, logprobs=True, top_logprobs=2, stream=True, temperature=0
        )
    )
    streamed = [lp for c in chunks if c.choices and c.choices[0].logprobs for lp in c.choices[0].logprobs.content]
    assert len(streamed) == 6
    assert all(len(e.top_logprobs) == 2 for e in streamed)


def test_logit_bias_forces_and_bans_tokens(client, vocab):
    (sea,) = vocab.tokenize(" sea", special=False)
    forced = client.chat.completions.create(
        model="gpt-4", messages=PROMPT, max_tokens=8, logit_bias={str(sea): 100}, logprobs=True, temperature=1.0
    )
    assert [e.token for e in forced.choices[0].logprobs.content] == [" sea"] * 8

    greedy = client.chat.completions.create(model="gpt-4", messages=PROMPT, temperature=0, max_tokens=1, logprobs=True)
    first = greedy.choices[0].logprobs.content[0].token
    (first_id,) = vocab.tokenize(first, special=False)
    banned = client.chat.completions.create(
        model="gpt-4", messages=PROMPT, temperature=0, max_tokens=1, logprobs=True, logit_bias={str(first_id): -100}
    )
    assert banned.choices[0].logprobs.content[0].token != first


def test_penalties_change_greedy_output(client):
    base = dict(
        model="gpt-4", messages=[{"role": "user", "content": "Repeat the word cat many times."}], temperature=0, max_tokens=40
    )
    plain = client.chat.completions.create(**base).choices[0].message.content
    penalized = client.chat.completions.create(**base, frequency_penalty=2.0, presence_penalty=2.0).choices[0].message.content
    assert plain != penalized


def test_prefix_of_a_repeated_prompt_is_reused(server, client):
    system = "You are a meticulous assistant. " * 40
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "Hi"}]
    client.chat.completions.create(model="gpt-4", messages=messages, max_tokens=2)
    again, exactly = reused(server, lambda: client.chat.completions.create(model="gpt-4", messages=messages, max_tokens=2))
    assert exactly == again.usage.prompt_tokens - 1 > 200
    # Reported as OpenAI reports it: in whole blocks of 128 tokens.
    assert again.usage.prompt_tokens_details.cached_tokens == exactly // 128 * 128


def test_the_servers_sampling_defaults_hold_where_a_request_sends_none(tmp_path):
    """``chatport serve --temperature 0 --top-p 0.5``: a request without temperature is
    greedy (the same answer as temperature 0, every time, with any seed), one that sends
    its own keeps it, and the Responses API echoes what was used."""
    from openai import OpenAI

    from tests.conftest import MODEL, start_server, stop_server

    srv = start_server(str(tmp_path), "--temperature", "0", "--top-p", "0.5")
    try:
        client = OpenAI(base_url=srv.api, api_key="unused", max_retries=0, timeout=120)
        story = [{"role": "user", "content": "Tell me a story about a fox."}]

        def answer(**extra) -> str:
            done = client.chat.completions.create(model=MODEL, messages=story, max_tokens=24, **extra)
            return done.choices[0].message.content or ""

        answer(temperature=0)  # the prompt cached first, so that every answer compared is computed alike
        greedy = answer(temperature=0)
        assert [answer(seed=s) for s in (1, 2, 3)] == [greedy] * 3
        assert len({answer(temperature=2, top_p=1, seed=s) for s in (1, 2, 3)}) > 1, "a request's own sampling is kept"
        echoed = client.responses.create(model=MODEL, input="Hi.", max_output_tokens=16, store=False)
        assert (echoed.temperature, echoed.top_p) == (0, 0.5)
    finally:
        stop_server(srv)
