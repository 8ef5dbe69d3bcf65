"""The scheduler without a model: admission, priorities, the step budget, prefix choice."""

from __future__ import annotations

import asyncio

import pytest

from chatport.engine.batch import ubatches
from chatport.engine.handle import RequestHandle
from chatport.engine.scheduler import Scheduler
from chatport.engine.sequence import Phase, Sequence
from chatport.protocol.backend import GenerationRequest, QueueFull, SamplingParams
from chatport.protocol.prompt import MediaChunk, Prompt
from tests.support.bytes_vocab import ByteVocab, tokens


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def handle(loop, text: str = "hello", *, n: int = 1, priority: int = 1, cache_key: str | None = None, prompt=None):
    prompt = prompt or Prompt.of_tokens(tokens(text))
    request = GenerationRequest(prompt=prompt, params=SamplingParams(), n=n, priority=priority, cache_key=cache_key)
    return RequestHandle(request, loop, on_cancel=lambda: None)


def new_sequence(h: RequestHandle, index: int, slot_id: int) -> Sequence:
    return Sequence(h, index, slot_id, ByteVocab(), context_length=4096)


def start(scheduler: Scheduler, *handles: RequestHandle):
    for h in handles:
        scheduler.enqueue(h)
    return scheduler.admit(new_sequence)


def finish(scheduler: Scheduler, seq: Sequence, computed: int | None = None) -> None:
    seq.num_computed = len(seq.tokens) if computed is None else computed
    seq.finish()
    scheduler.release(seq)


def test_priority_then_arrival_order(loop):
    scheduler = Scheduler(n_slots=1, max_waiting=8)
    flex, default, first_priority, second_priority = (
        handle(loop, "f", priority=2),
        handle(loop, "d"),
        handle(loop, "p1", priority=0),
        handle(loop, "p2", priority=0),
    )
    order = []
    for h in (flex, default, first_priority, second_priority):
        scheduler.enqueue(h)
    for _ in range(4):
        (admission,) = scheduler.admit(new_sequence)
        order.append(admission.leader.handle)
        finish(scheduler, admission.leader)
    assert order == [first_priority, second_priority, default, flex]


def test_a_request_waits_until_it_has_a_slot_for_every_choice(loop):
    scheduler = Scheduler(n_slots=3, max_waiting=8)
    (one,) = start(scheduler, handle(loop, "a"))
    assert start(scheduler, handle(loop, "b", n=3)) == []  # two slots free, three choices
    finish(scheduler, one.leader)
    (three,) = scheduler.admit(new_sequence)
    assert three.leader.handle.request.n == 3
    assert [s.phase for s in scheduler.running] == [Phase.PREFILL, Phase.AWAIT_FORK, Phase.AWAIT_FORK]


def test_a_full_queue_refuses_and_a_stale_request_expires(loop):
    scheduler = Scheduler(n_slots=1, max_waiting=2)
    start(scheduler, handle(loop, "running"))
    waiting = [handle(loop, "w1"), handle(loop, "w2")]
    for h in waiting:
        scheduler.enqueue(h)
    with pytest.raises(QueueFull):
        scheduler.enqueue(handle(loop, "w3"))
    waiting[0].enqueued_at -= 100
    assert scheduler.expire_waiting(timeout=60, now=waiting[1].enqueued_at + 1) == [waiting[0]]
    assert scheduler.n_waiting == 1


def test_decode_tokens_come_first_and_prefill_takes_the_rest_of_the_budget(loop):
    scheduler = Scheduler(n_slots=4, max_waiting=8)
    decoding = [a.leader for a in start(scheduler, handle(loop, "one"), handle(loop, "two"))]
    for seq in decoding:
        seq.num_computed, seq.phase = len(seq.tokens) - 1, Phase.DECODE
    start(scheduler, handle(loop, "x" * 30), handle(loop, "y" * 30))
    plan = scheduler.plan(budget=20)
    sizes = [(e.seq.handle.request.prompt.cells[:1], len(e.tokens), len(e.rows)) for e in plan.entries]
    assert sizes == [(tokens("o"), 1, 1), (tokens("t"), 1, 1), (tokens("x"), 18, 0)]
    assert plan.n_tokens == 20 and plan.n_rows == 2


def test_the_chunk_that_ends_a_prompt_samples_and_forks_share_its_row(loop):
    scheduler = Scheduler(n_slots=3, max_waiting=8)
    (admission,) = start(scheduler, handle(loop, "abc", n=3))
    plan = scheduler.plan(budget=64)
    leader, *forks = plan.entries
    assert leader.tokens == tokens("abc") and leader.rows == range(0, 1)
    assert [f.fork_of for f in forks] == [admission.leader] * 2
    assert all(f.rows == leader.rows and f.tokens == [] for f in forks)


def test_drafts_are_cut_to_the_budget(loop):
    scheduler = Scheduler(n_slots=1, max_waiting=8)
    (admission,) = start(scheduler, handle(loop, "abc"))
    seq = admission.leader
    seq.num_computed, seq.phase, seq.draft = 2, Phase.DECODE, [1, 2, 3, 4, 5]
    (entry,) = scheduler.plan(budget=4).entries
    assert entry.tokens == [ord("c"), 1, 2, 3] and entry.draft == [1, 2, 3] and len(entry.rows) == 4


def test_the_free_slot_with_the_longest_prefix_wins_then_the_cache_key_then_the_oldest(loop):
    scheduler = Scheduler(n_slots=3, max_waiting=8)
    for admission in start(scheduler, handle(loop, "system A, user 1"), handle(loop, "system B, user 1", cache_key="k")):
        finish(scheduler, admission.leader)
    (a,) = start(scheduler, handle(loop, "system A, user 2"))
    assert a.reuse == len("system A, user ") and a.leader.slot_id == 0
    finish(scheduler, a.leader)
    (keyed,) = start(scheduler, handle(loop, "other", cache_key="k"))
    assert keyed.leader.slot_id == 1  # no prefix anywhere: the slot of the same cache key


def test_at_least_one_prompt_token_is_recomputed(loop):
    scheduler = Scheduler(n_slots=1, max_waiting=8)
    (first,) = start(scheduler, handle(loop, "same prompt"))
    finish(scheduler, first.leader)
    (again,) = start(scheduler, handle(loop, "same prompt"))
    assert again.reuse == len("same prompt") - 1


def test_a_running_sequence_lends_its_longer_prefix(loop):
    scheduler = Scheduler(n_slots=2, max_waiting=8)
    (running,) = start(scheduler, handle(loop, "long shared system prompt, question one"))
    running.leader.num_computed = len("long shared system prompt, ")
    (second,) = start(scheduler, handle(loop, "long shared system prompt, question two"))
    assert second.copy_from == running.leader.slot_id
    assert second.reuse == len("long shared system prompt, ")


def test_one_media_chunk_per_step_and_never_inside_a_token_chunk(loop):
    image = MediaChunk("image", "h1", n_cells=5, n_pos=5)
    scheduler = Scheduler(n_slots=2, max_waiting=8)
    prompts = [Prompt([tokens("ab"), image, tokens("cd")]), Prompt([image, tokens("ef")])]
    first, second = (a.leader for a in start(scheduler, *(handle(loop, prompt=p) for p in prompts)))
    plan = scheduler.plan(budget=64)
    assert [(m.seq, m.first_cell) for m in plan.media] == [(second, 0)]  # the other waits for its own step
    assert [(e.seq, e.tokens) for e in plan.entries] == [(first, tokens("ab"))]


def test_release_keeps_the_slot_cache_with_its_media(loop):
    image = MediaChunk("image", "h1", n_cells=3, n_pos=3)
    scheduler = Scheduler(n_slots=1, max_waiting=8)
    (admission,) = start(scheduler, handle(loop, prompt=Prompt([tokens("x"), image, tokens("y")])))
    finish(scheduler, admission.leader)
    slot = scheduler.slots[0]
    assert not slot.busy and slot.cached == admission.leader.tokens and slot.media == {1: image}


def test_decode_entries_go_in_slot_order_whatever_the_admission_order(loop):
    # llama.cpp runs a batch over per-slot KV streams as one graph only while sequence
    # ids go up one by one; slots reused in another order must not scramble the batch.
    scheduler = Scheduler(n_slots=4, max_waiting=8)
    admissions = start(scheduler, *(handle(loop, f"p{i}") for i in range(4)))
    for admission in admissions[:3]:
        finish(scheduler, admission.leader)
    # Slots 0-2 free again: the next prompts take them least recently used first.
    start(scheduler, *(handle(loop, f"q{i}") for i in range(3)))
    assert scheduler.running[0].slot_id == 3  # admitted first, still running
    for seq in scheduler.running:
        seq.phase = Phase.DECODE
        seq.num_computed = len(seq.tokens) - 1
    plan = scheduler.plan(64)
    slots = [entry.seq.slot_id for entry in plan.entries]
    assert slots == sorted(slots) == [0, 1, 2, 3]
    assert [entry.rows for entry in plan.entries] == [range(i, i + 1) for i in range(4)]


def test_prompt_chunks_join_decode_tokens_in_slot_order(loop):
    scheduler = Scheduler(n_slots=4, max_waiting=8)
    first = start(scheduler, *(handle(loop, f"p{i}") for i in range(4)))
    for admission in (first[2], first[0]):
        finish(scheduler, admission.leader)
    # Slots 0 and 2 take new prompts (admitted 2 then 0, least recently used first) while
    # slots 1 and 3 decode.
    start(scheduler, handle(loop, "new prompt a"), handle(loop, "new prompt b"))
    for seq in scheduler.running:
        if seq.slot_id in (1, 3):
            seq.phase = Phase.DECODE
            seq.num_computed = len(seq.tokens) - 1
    plan = scheduler.plan(64)
    assert [entry.seq.slot_id for entry in plan.entries] == [0, 1, 2, 3]
    assert [len(entry.tokens) > 1 for entry in plan.entries] == [True, False, True, False]
    rows = [row for entry in plan.entries for row in entry.rows]
    assert rows == list(range(len(rows)))  # logits rows follow the batch order


@pytest.mark.parametrize(
    ("runs", "n_ubatch", "expected"),
    [
        ([(0, 1), (1, 1), (2, 1), (3, 1)], 512, 1),  # decoding slots 0-3: one graph
        ([(0, 1), (2, 1), (5, 1), (9, 1)], 512, 4),  # every gap starts a new ubatch
        ([(0, 1), (1, 8), (2, 1)], 512, 2),  # one token of each, then the prompt's other 7
        ([(0, 8), (1, 7)], 512, 2),  # 7 of each, then the last of the longer one
        ([(0, 8), (1, 8), (2, 8)], 512, 1),  # prompts of one length go together
        ([(0, 600)], 512, 2),  # n_ubatch caps a ubatch
        ([(0, 300), (1, 300)], 512, 2),  # 256 of each, then 44 of each
        ([(1, 1), (0, 1)], 512, 2),  # ids must go up
    ],
)
def test_ubatches_counts_llama_cpps_split_of_a_batch_over_slot_streams(runs, n_ubatch, expected):
    assert ubatches(runs, n_ubatch) == expected


def test_a_new_sequence_joins_the_run_of_busy_slots_rather_than_opening_a_gap(loop):
    scheduler = Scheduler(n_slots=8, max_waiting=16)
    first = start(scheduler, *(handle(loop, f"prompt {i}") for i in range(4)))
    assert sorted(a.leader.slot_id for a in first) == [0, 1, 2, 3]
    finish(scheduler, first[1].leader)  # slot 1 frees: the gap is filled first
    (again,) = start(scheduler, handle(loop, "prompt 9"))
    assert again.leader.slot_id == 1
    # Each slot's prefix ("prompt ") is as long: the least recently used slot (7) would
    # open a second run of busy slots, so slot 4 is taken.
    (more,) = start(scheduler, handle(loop, "prompt 8"))
    assert more.leader.slot_id == 4
    for seq in scheduler.running:
        seq.phase = Phase.DECODE
        seq.num_computed = len(seq.tokens) - 1
    plan = scheduler.plan(64)
    assert plan.graphs(n_ubatch=512) == 1


def test_a_much_longer_prefix_still_wins_over_contiguity(loop):
    scheduler = Scheduler(n_slots=8, max_waiting=16)
    system = "a long system prompt " * 4  # 84 cells, more than the slack
    first = start(scheduler, handle(loop, system + "q1"), *(handle(loop, f"other {i}") for i in range(3)))
    for admission in first[:2]:
        finish(scheduler, admission.leader)  # slots 0 (the system prompt) and 1 free; 2, 3 busy
    (again,) = start(scheduler, handle(loop, system + "q2"))
    assert again.leader.slot_id == 0 and again.reuse == len(system) + 1
    (plain,) = start(scheduler, handle(loop, "unrelated"))
    assert plain.leader.slot_id == 1


def test_a_queue_that_fills_every_free_slot_sends_each_prompt_to_its_own_prefix(loop):
    # No slot will stay idle, so there is no gap to avoid: each prompt takes the slot that
    # holds it (the same prompts asked again, as a benchmark's next round does).
    scheduler = Scheduler(n_slots=4, max_waiting=8)
    prompts = [f"a story, chapter {i}." for i in (7, 30, 12, 4)]
    first = start(scheduler, *(handle(loop, p) for p in prompts))
    for admission in first:
        finish(scheduler, admission.leader)
    order = [1, 3, 0, 2]  # chapter 30 first, then 4, whose slot is not next to 30's
    again = start(scheduler, *(handle(loop, prompts[i]) for i in order))
    assert [a.leader.slot_id for a in again] == [first[i].leader.slot_id for i in order]
    assert all(a.reuse == len(a.leader.prompt) - 1 for a in again)
