"""Speculation from a request's own context: the drafts, the measured cost of rows and
the choice of a draft's length; then the engine with it on, against the fake context."""

from __future__ import annotations

import pytest

from chatport.engine.speculation import MAX_DRAFT, ContextDrafter, StepCost, StepLoad, draft_length, expected_tokens
from chatport.protocol.backend import SamplingParams
from tests.support.bytes_vocab import tokens
from tests.unit.test_engine_step import GREEDY, make_engine, request, run, text_of


def test_a_draft_is_what_followed_the_last_tokens_before():
    seq = tokens("def area(r): return 3.14 * r * r\n# again\ndef area(r")
    drafter = ContextDrafter(seq)
    assert bytes(drafter.candidate()).decode() == "): return 3.14 * r * r\n# again\ndef area(r"[:MAX_DRAFT]


def test_the_longest_agreement_wins_over_the_latest_occurrence():
    seq = tokens("total = price * qty; count = price * 2; next: total = price")
    drafter = ContextDrafter(seq)
    # " = price" occurs twice before; the one after "total" agrees longer.
    assert bytes(drafter.candidate()).decode().startswith(" * qty;")


def test_no_draft_without_an_earlier_occurrence():
    assert ContextDrafter(tokens("abcdefgh")).candidate() == []
    assert ContextDrafter(tokens("ab")).candidate() == []


def test_the_index_follows_the_tokens_as_they_grow_and_after_a_rollback():
    seq = tokens("one two three; one")
    drafter = ContextDrafter(seq)
    assert bytes(drafter.candidate()).decode().startswith(" two three")
    seq += tokens(" two four; one two f")
    assert bytes(drafter.candidate()).decode().startswith("our")
    del seq[-len("; one two f") :]  # a rollback, then other tokens
    seq += tokens("; one two")
    # Of the occurrences of " two", the one after "three; one" agrees longest.
    assert bytes(drafter.candidate()).decode().startswith(" four")


def test_acceptance_is_learnt_from_the_tokens_taken_whether_or_not_drafts_were_made():
    seq = tokens("abcdefgh abcdefgh abc")
    drafter = ContextDrafter(seq)
    start = drafter.rate
    for _ in range(3):  # the context repeats, and the sequence goes on repeating it
        seq += tokens("defgh abc")[: len(drafter.candidate())]
    assert drafter.rate > start
    learnt = drafter.rate
    for i in range(26):  # now it goes on otherwise each time the context offers a draft
        seq += tokens(" abc")
        drafter.candidate()
        seq += tokens(chr(ord("A") + i))
    assert drafter.rate < learnt and drafter.rate < 0.3


def test_matches_that_agree_long_and_short_learn_their_rates_apart():
    seq = tokens("x = compute(alpha, beta)\n")
    drafter = ContextDrafter(seq)
    for i in range(12):  # short matches on "a, " that never hold
        seq += tokens(f"q{i}a, ")
        drafter.candidate()
        seq += tokens(chr(ord("A") + i))
    short = drafter.rate
    seq += tokens("x = compute(alpha, b")  # a long agreement: its own, untried class
    drafter.candidate()
    assert drafter.rate > short


def test_a_continuation_followed_token_by_token_is_drafted_on():
    seq = tokens("one two three four five; one two")
    drafter = ContextDrafter(seq)
    assert bytes(drafter.candidate()).decode().startswith(" three four")
    seq += tokens(" th")
    assert bytes(drafter.candidate()).decode().startswith("ree four five")


def test_step_cost_interpolates_and_extrapolates_measured_row_counts():
    cost = StepCost()
    assert cost.estimate(5) == pytest.approx(1 + 4 * StepCost.PRIOR_ROW)  # before any step
    cost.record(1, 0.100)
    assert cost.estimate(3) == pytest.approx(0.100 * (1 + 2 * StepCost.PRIOR_ROW))
    cost.record(9, 0.180)
    assert cost.estimate(5) == pytest.approx(0.140)
    assert cost.estimate(17) == pytest.approx(0.260)  # the fitted slope past the last count


def test_a_draft_is_made_only_where_its_rows_cost_less_than_they_gain():
    cheap, dear = StepCost(), StepCost()
    for rows in (1, 17):
        cheap.record(rows, 0.090 + 0.004 * rows)  # a memory-bound model: rows are cheap
        dear.record(rows, 0.010 * rows)  # a compute-bound one: a row costs a step
    assert draft_length(dear, 1, 0.6, 16) == 0
    assert draft_length(dear, 1, 0.99, 16) == 0  # even sure drafts save nothing when rows cost a step
    assert draft_length(cheap, 1, 0.2, 16) > 0
    long = draft_length(cheap, 1, 0.9, 16)
    assert long > draft_length(cheap, 1, 0.5, 16) > 0
    assert draft_length(cheap, 1, 0.9, 3) <= 3  # never past what was found
    assert draft_length(cheap, 1, 0.0, 16) == 0


def test_a_draft_is_weighed_against_the_step_with_the_drafts_already_in_it():
    tiles = StepCost()
    for rows, ms in ((1, 100), (4, 110), (8, 150), (16, 260), (32, 520)):  # cheap up to a tile, then dear
        tiles.record(rows, ms / 1000)
    alone = draft_length(tiles, 4, 0.6, 16)
    assert alone > 0
    load = StepLoad(4, 4.0)
    load.add(12, 0.6)  # another stream's draft already fills the cheap rows
    assert draft_length(tiles, load, 0.6, 16) < alone
    assert load.rows == 16 and load.tokens == pytest.approx(4 + expected_tokens(0.6, 12))


def test_a_grammars_mask_per_draft_row_shortens_drafts():
    cheap = StepCost()
    for rows in (1, 17):
        cheap.record(rows, 0.090 + 0.004 * rows)
    free = draft_length(cheap, 1, 0.7, 16)
    assert 0 < draft_length(cheap, 1, 0.7, 16, mask_seconds=0.06) < free  # masks as dear as half a step
    assert draft_length(cheap, 1, 0.7, 16, mask_seconds=0.1) == 0


def test_expected_tokens_of_a_draft():
    assert expected_tokens(1.0, 4) == 4
    assert expected_tokens(0.5, 2) == pytest.approx(0.75)


class CheapRows(StepCost):
    """Decode steps of the fake context take no time; a memory-bound model's costs instead."""

    def record(self, rows: int, seconds: float) -> None:
        pass

    def estimate(self, rows: int) -> float:
        return 0.1 + 0.005 * rows


@pytest.mark.parametrize("params", [GREEDY, SamplingParams(temperature=1.0, seed=3, presence_penalty=0.3)])
async def test_context_drafts_change_nothing_but_the_number_of_steps(params):
    # The scripted logits count up the alphabet, which the prompt holds: drafts from it.
    prompt = "the letters: abcdefghijklmnopqrstuvwxyz; again from c: c"
    outputs = []
    for speculation in (False, True):
        engine, context = make_engine(speculation=speculation)
        engine.step_cost = CheapRows()
        if params is not GREEDY:
            context.peak = 2.0  # flat enough that the seed matters
        (deltas,) = await run(engine, request(prompt, params=params, max_tokens=40))
        outputs.append((text_of(deltas), deltas[-1].completion_tokens, context.decodes, engine.stats()))
    (plain, plain_n, plain_decodes, plain_stats), (drafted, drafted_n, decodes, stats) = outputs
    assert drafted == plain and drafted_n == plain_n
    assert plain_stats.drafted_tokens == ()
    if params is GREEDY:
        assert plain == "defghijklmnopqrstuvwxyz"
        assert decodes < plain_decodes
        (source, drafted_tokens), (_, accepted) = stats.drafted_tokens[0], stats.accepted_draft_tokens[0]
        assert source == "context" and 0 < accepted <= drafted_tokens
        # Every output token was sampled either in its own row or as an accepted draft.
        assert stats.tokens == plain_stats.tokens


async def test_no_context_drafts_where_rows_cost_a_step():
    engine, _ = make_engine(speculation=True)

    class DearRows(CheapRows):
        def estimate(self, rows: int) -> float:
            return 0.01 * rows

    engine.step_cost = DearRows()
    (deltas,) = await run(engine, request("abcdefghijklmnopqrstuvwxyz; from c: c", max_tokens=40))
    assert text_of(deltas) == "defghijklmnopqrstuvwxyz"
    assert engine.stats().drafted_tokens == ()


def test_calibration_times_each_row_count_and_leaves_the_kv_empty():
    engine, context = make_engine(speculation=True)
    engine.calibrate(counts=(1, 2, 4, 8))
    assert all(engine.step_cost.estimate(k) > 0 for k in (1, 2, 4, 8))
    assert sorted(engine.step_cost._mean) == [1, 2, 4, 8]
    assert context.kv[0] == {}
    off, off_context = make_engine()
    off.calibrate()
    assert off.step_cost._mean == {} and off_context.decodes == 0


def test_drafts_that_prove_slower_than_plain_steps_wait_and_wait_longer_each_time():
    drafter = ContextDrafter(tokens("x"))
    for _ in range(5):
        drafter.stepped(False, 1, 0.050)  # 20 tokens a second without drafts
    for _ in range(10):
        drafter.stepped(True, 2, 0.200)  # 10 with: slower
        if drafter.paused:
            break
    assert drafter.paused
    waited = 0
    while drafter.paused:
        drafter.stepped(False, 1, 0.050)
        waited += 1
    for _ in range(20):
        drafter.stepped(True, 2, 0.200)
        if drafter.paused:
            break
    again = 0
    while drafter.paused:
        drafter.stepped(False, 1, 0.050)
        again += 1
    assert again == 2 * waited


def test_drafts_that_pay_are_never_paused():
    drafter = ContextDrafter(tokens("x"))
    for _ in range(5):
        drafter.stepped(False, 1, 0.050)
    for _ in range(50):
        drafter.stepped(True, 6, 0.150)  # 40 tokens a second
        assert not drafter.paused
