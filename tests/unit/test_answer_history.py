"""Earlier answers as drafts: kept per project, bounded, found by their last tokens; then
the engine drafting from them, against the fake context."""

from __future__ import annotations

import pytest

from chatport.engine.history import AnswerHistory
from chatport.protocol.backend import SamplingParams
from tests.support.bytes_vocab import tokens
from tests.unit.test_engine_step import GREEDY, make_engine, request, run, text_of
from tests.unit.test_speculation import CheapRows


def text(ids: list[int]) -> str:
    return bytes(ids).decode()


def test_a_lookup_continues_an_earlier_answer_of_the_same_scope():
    history = AnswerHistory()
    history.add("p1", tokens('{"name": "Ada", "born": 1815}'))
    draft, agree = history.lookup("p1", tokens('{"nam'))
    assert text(draft) == 'e": "Ada", "born": 1815}' and agree == 5
    assert history.lookup("p1", tokens("nothing like it")) == ([], 0)


def test_one_scope_never_reads_another_scopes_answers():
    history = AnswerHistory()
    history.add("project-a", tokens("the secret launch code is 0000-1234"))
    assert history.lookup("project-b", tokens("the secret launch code is")) == ([], 0)
    assert history.lookup("", tokens("the secret launch code is")) == ([], 0)
    assert text(history.lookup("project-a", tokens("the secret launch code is"))[0]) == " 0000-1234"


def test_the_best_agreeing_occurrence_wins_and_drafts_stop_at_an_answers_end():
    history = AnswerHistory()
    history.add("p", tokens("total = price * qty"))
    history.add("p", tokens("count = price * 2"))
    draft, agree = history.lookup("p", tokens("then total = price"))
    assert text(draft) == " * qty" and agree == len("total = price")  # not the later " * 2"


def test_each_scope_keeps_its_latest_answers_within_its_bound():
    history = AnswerHistory(scope_tokens=100, total_tokens=10_000)
    for i in range(50):
        history.add("p", tokens(f"answer number {i:02d} says {'xyz' * 5}"))
    assert history.tokens_held <= 100
    assert text(history.lookup("p", tokens("answer number 49"))[0]).startswith(" says")
    assert history.lookup("p", tokens("answer number 01")) == ([], 0)  # dropped, and so is its key
    assert all(p >= history._scopes["p"].base for ps in history._scopes["p"].index.values() for p in ps)


def test_all_scopes_together_stay_within_the_total_the_least_recent_going_first():
    history = AnswerHistory(scope_tokens=1_000, total_tokens=300)
    for i in range(40):
        history.add(f"project-{i}", tokens(f"project {i:02d} wrote this answer"))
    assert history.tokens_held <= 300
    assert history.scopes < 40
    assert history.lookup("project-39", tokens("project 39 wrote"))[0]
    assert history.lookup("project-00", tokens("project 00 wrote")) == ([], 0)
    held = sum(len(s.tokens) for s in history._scopes.values())
    assert held == history.tokens_held


def test_an_answer_longer_than_the_bound_keeps_its_start():
    history = AnswerHistory(scope_tokens=20, total_tokens=1_000)
    history.add("p", tokens("0123456789abcdefghijklmnopqrstuvwxyz"))
    assert history.tokens_held == 20
    assert text(history.lookup("p", tokens("012"))[0]) == "3456789abcdefghi"  # 19 tokens and the end


def scoped(text_: str, scope: str, **kwargs):
    return request(text_, cache_scope=scope, max_tokens=40, **kwargs)


async def test_a_projects_second_answer_drafts_from_its_first_and_only_its_own():
    # The prompt holds nothing to draft from; the first answer (the alphabet counted up) does.
    engine, context = make_engine(speculation=True, history=AnswerHistory())
    engine.step_cost = CheapRows()
    (first,) = await run(engine, scoped("say: a", "project-a"))
    assert engine.stats().drafted_tokens == ()
    decodes = context.decodes
    (again,) = await run(engine, scoped("say: a", "project-a"))
    drafted = dict(engine.stats().drafted_tokens)
    accepted = dict(engine.stats().accepted_draft_tokens)
    assert text_of(again) == text_of(first) == "bcdefghijklmnopqrstuvwxyz"
    assert accepted["history"] > 0 and drafted["history"] >= accepted["history"]
    assert context.decodes - decodes < decodes  # fewer steps for the same answer
    before = engine.stats()
    (other,) = await run(engine, scoped("say: a", "project-b"))
    assert text_of(other) == text_of(first)
    assert engine.stats().drafted_tokens == before.drafted_tokens  # nothing of project-a's


@pytest.mark.parametrize("params", [GREEDY, SamplingParams(temperature=1.0, seed=7, presence_penalty=0.3)])
async def test_drafts_from_history_change_nothing_but_the_number_of_steps(params):
    answers = []
    for speculation in (False, True):
        engine, context = make_engine(speculation=speculation, history=AnswerHistory())
        engine.step_cost = CheapRows()
        context.peak = 2.0  # flat enough that the seed matters
        runs = [await run(engine, scoped("say: a", "p", params=params)) for _ in range(2)]
        answers.append(([text_of(deltas) for (deltas,) in runs], engine.stats()))
    (plain, plain_stats), (drafted, stats) = answers
    assert drafted == plain and plain_stats.drafted_tokens == ()
    assert dict(stats.accepted_draft_tokens).get("history", 0) > 0


async def test_no_history_without_speculation():
    engine, _ = make_engine(history=AnswerHistory())
    engine.step_cost = CheapRows()
    for _ in range(2):
        await run(engine, scoped("say: a", "p"))
    assert engine.stats().drafted_tokens == ()
