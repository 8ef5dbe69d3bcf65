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


def test_draft_length_grows_while_accepted_and_shrinks_when_not():
    predictor = Predictor(tuple(range(100)))
    predictor.advance([0])
    first = predictor.draft()
    assert first == list(range(1, 5))
    predictor.advance([*first, 5])  # all accepted, plus the token after
    second = predictor.draft()
    assert second == list(range(6, 14))
    predictor.advance([*second, 14])
    assert len(predictor.draft()) == 8  # at most MAX_DRAFT
    predictor.advance([15, 16, 500])  # two accepted, then the answer left the prediction
    assert predictor.draft() == []  # lost until the answer meets the prediction again
    predictor.advance([40, 41])
    assert predictor.draft() == []  # two tokens are not enough to re-align on
    predictor.advance([42])
    assert predictor.draft() == [43, 44, 45]  # three are


def test_a_draft_rejected_whole_pauses_drafting():
    predictor = Predictor(tuple(range(100)))
    predictor.advance([0])
    predictor.draft()
    predictor.advance([7, 8, 9])  # the draft [1..4] was rejected at once; realigned after 7, 8, 9
    assert predictor.pointer == 10 and predictor.draft() == []
    for _ in range(4):
        predictor.advance([predictor.pointer])
    assert predictor.draft()[:1] == [predictor.pointer]
