"""Predicted outputs through the SDKs: the answer is the same with any prediction (greedy
and seeded), the usage says how much of the prediction was used, and a stream equals the
whole answer."""

from __future__ import annotations

import pytest

from tests.conftest import MODEL

CODE = [
    {"role": "system", "content": "You rewrite code exactly as asked and reply with the code only."},
    {"role": "user", "content": "Rename the variable x to total:\n\ndef add(a, b):\n    x = a + b\n    return x\n"},
]


def answer(client, eog_bias, **extra):
    return client.chat.completions.create(model=MODEL, messages=CODE, max_tokens=60, temperature=0, logit_bias=eog_bias, **extra)


@pytest.fixture(scope="module")
def plain(client, eog_bias):
    # Asked twice: the second answer, like every one after it, starts from the cached
    # prompt, so all are computed alike but for the prediction's drafts.
    answer(client, eog_bias)
    return answer(client, eog_bias)


def test_a_prediction_of_the_answer_itself_is_used_whole_and_changes_nothing(client, eog_bias, plain):
    text = plain.choices[0].message.content
    predicted = answer(client, eog_bias, prediction={"type": "content", "content": text})
    assert predicted.choices[0].message.content == text
    details = predicted.usage.completion_tokens_details
    assert details.accepted_prediction_tokens > 0
    assert predicted.usage.completion_tokens == plain.usage.completion_tokens + details.rejected_prediction_tokens


@pytest.mark.parametrize(
    "make",
    [
        lambda text: "Lorem ipsum dolor sit amet, consectetur adipiscing elit." * 3,
        lambda text: text[: len(text) // 2] + "\n# a paragraph that is not in the answer\n" * 3 + text[len(text) // 2 :],
        lambda text: [{"type": "text", "text": text[:20]}, {"type": "text", "text": text[20:]}],
    ],
    ids=["unrelated", "paragraph-inserted", "text-parts"],
)
def test_any_prediction_gives_the_same_greedy_answer(client, eog_bias, plain, make):
    text = plain.choices[0].message.content
    predicted = answer(client, eog_bias, prediction={"type": "content", "content": make(text)})
    assert predicted.choices[0].message.content == text
    details = predicted.usage.completion_tokens_details
    assert details.accepted_prediction_tokens >= 0 and details.rejected_prediction_tokens >= 0


def test_seeded_sampling_is_the_same_with_a_prediction(client, eog_bias):
    sampled = [
        client.chat.completions.create(
            model=MODEL, messages=CODE, max_tokens=40, temperature=1.0, seed=5, logit_bias=eog_bias, **extra
        )
        .choices[0]
        .message.content
        for extra in ({}, {"prediction": {"type": "content", "content": "def add(a, b):\n    total = a + b\n    return total\n"}})
    ]
    assert sampled[0] == sampled[1]


def test_a_stream_with_a_prediction_equals_the_whole_answer(client, eog_bias, plain):
    text = plain.choices[0].message.content
    stream = client.chat.completions.create(
        model=MODEL,
        messages=CODE,
        max_tokens=60,
        temperature=0,
        logit_bias=eog_bias,
        prediction={"type": "content", "content": text},
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage.completion_tokens_details.accepted_prediction_tokens > 0
