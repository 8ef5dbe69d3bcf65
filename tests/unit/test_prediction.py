"""Predicted outputs in the engine, without a model: the answer is the same with any
prediction, a good prediction saves decodes, and the counts add up."""

from __future__ import annotations

import pytest

from chatport.engine.prediction import Predictor
from chatport.protocol.backend import SamplingParams
from tests.support.bytes_vocab import tokens
from tests.unit.test_engine_step import make_engine, request, run, text_of

ANSWER = "defghijklmnopqrstuvwxyz"  # what the fake model says after "say: c"


@pytest.mark.parametrize(
    "prediction",
    [ANSWER, "0123456789", "defghijk" + "XXXXXXX" + "lmnopqrstuvwxyz", "lmnopqrstuvwxyz", "defghijk"],
    ids=["the-answer", "unrelated", "paragraph-inserted", "starts-later", "a-prefix"],
)
async def test_the_answer_is_the_same_with_any_prediction_and_the_counts_add_up(prediction):
    plain, plain_context = make_engine()
    (expected,) = await run(plain, request("say: c", max_tokens=40))
    engine, context = make_engine()
    (deltas,) = await run(engine, request("say: c", max_tokens=40, prediction=tuple(tokens(prediction))))
    assert text_of(deltas) == text_of(expected) == ANSWER
    last = deltas[-1]
    assert last.completion_tokens == expected[-1].completion_tokens
    predicted = len(tokens(prediction))
    assert last.accepted_prediction_tokens + last.rejected_prediction_tokens == predicted
    matching = len(set(prediction) & set(ANSWER))
    if matching >= 4:
        assert last.accepted_prediction_tokens >= matching - 3  # re-aligned after an insertion
        assert context.decodes < plain_context.decodes  # and fewer decodes for it
    else:
        assert last.accepted_prediction_tokens == 0


async def test_seeded_sampling_is_the_same_with_and_without_a_prediction():
    params = SamplingParams(temperature=1.0, seed=11, frequency_penalty=0.3)
    outputs = []
    for prediction in ((), tuple(tokens("bcdefghijklmnopqrstuvwxyz"))):
        engine, context = make_engine()
        context.peak = 2.0  # flat enough that the seed matters
        (deltas,) = await run(engine, request("say: a", params=params, max_tokens=25, prediction=prediction))
        outputs.append(text_of(deltas))
    assert outputs[0] == outputs[1]


async def test_each_of_n_choices_follows_the_prediction_on_its_own():
    engine, _ = make_engine()
    (deltas,) = await run(engine, request("say: w", n=3, prediction=tuple(tokens("xyz"))))
    finals = [d for d in deltas if d.finish_reason]
    assert [text_of(deltas, i) for i in range(3)] == ["xyz"] * 3
    assert all(d.accepted_prediction_tokens == 3 and d.rejected_prediction_tokens == 0 for d in finals)


def test_draft_length_grows_while_accepted_and_falls_back_when_not():
    predictor = Predictor(tuple(range(100)))
    predictor.advance([0])
    first = predictor.draft()
    assert first == list(range(1, 9))
    predictor.advance([*first, 9])  # all accepted, plus the token after
    second = predictor.draft()
    assert second == list(range(10, 26))
    predictor.advance([*second, 26])
    assert len(predictor.draft()) == 16  # at most MAX_DRAFT
    predictor.advance([27, 28, 500])  # two accepted, then the answer left the prediction
    assert predictor.draft() == []  # lost until the answer meets the prediction again
    predictor.advance([40, 41])
    assert predictor.draft() == []  # far from where it left, two tokens are not enough
    predictor.advance([42])
    assert predictor.draft() == list(range(43, 51))  # three are


def test_a_replaced_word_re_aligns_on_the_next_token():
    predictor = Predictor(tuple(range(100)))
    predictor.advance([0])
    predictor.draft()
    predictor.advance([1, 2, 3, 500])  # "4" became "500"
    assert predictor.draft() == []
    predictor.advance([5])  # the prediction goes on just after the replaced token
    assert predictor.pointer == 6 and predictor.draft()[:2] == [6, 7]
    predictor.advance([6, 7, 501, 502, 503, 11])  # a longer replacement: still within reach
    assert predictor.pointer == 12


def test_a_repeated_passage_re_aligns_after_where_the_answer_was():
    repeated = [1, 2, 3, 4]
    prediction = (*repeated, *range(10, 30), *repeated, *range(50, 60))
    predictor = Predictor(prediction)
    predictor.advance([1, 2, 3, 4, 10, 11, 12, 13, 14, 15])
    predictor.advance([77, 1, 2, 3])  # the answer left at 16, then came to the passage again
    assert predictor.pointer == len(repeated) + 20 + 3  # its second occurrence, not its first
    assert predictor.draft()[:2] == [4, 50]
