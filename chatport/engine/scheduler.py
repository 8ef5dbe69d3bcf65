"""Which requests run, in which KV slot, and what each step feeds the model.

Continuous batching: every step carries one token for each decoding sequence (plus its
draft tokens, if any) and prefill chunks of admitted prompts up to the batch budget, so a
long prompt never holds running streams back for more than a step. A media chunk is
decoded in a step of its own, at most one per step. Slots keep their KV after a request
ends; a new prompt goes to the free slot that already holds its longest prefix.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from chatport.engine.batch import StepPlan
from chatport.engine.handle import RequestHandle
from chatport.engine.prompt_cache import PromptCache, SavedPrefix
from chatport.engine.sequence import Phase, Sequence
from chatport.protocol.backend import BackendFailure, QueueFull
from chatport.protocol.prompt import MediaChunk

PRIORITIES = 3

# (request, choice index, slot id) -> the sequence for that choice
SequenceFactory = Callable[[RequestHandle, int, int], Sequence]


@dataclass
class Slot:
    slot_id: int
    cached: list[int] = field(default_factory=list)  # cells whose KV the slot holds
    media: Mapping[int, MediaChunk] = field(default_factory=dict)  # the chunks among them
    scope: str = ""  # whose prompt the cells hold (GenerationRequest.cache_scope)
    cache_key: str | None = None
    last_used: int = 0
    busy: bool = False
    offered: bool = False  # its cells were offered to the prompt cache since it was last released


@dataclass
class Admission:
    leader: Sequence  # choice 0; the others fork from it once its prompt is computed
    reuse: int  # prompt cells whose KV is already in place
    copy_from: int | None  # slot of a running sequence to take the prefix from
    restore: SavedPrefix | None = None  # a prefix from the prompt cache to write into the slot first
    save: list[SlotCells] = field(default_factory=list)  # slots' cells to keep before they go


@dataclass(frozen=True)
class SlotCells:
    """A slot's cells, worth a copy into the prompt cache, and whose prompt they hold."""

    slot_id: int
    cells: list[int]
    scope: str


def worth_restoring(saved_cells: int, spared: int) -> bool:
    """Whether writing a saved prefix of ``saved_cells`` back into a slot beats computing the
    ``spared`` cells it saves over the best slot: a restore copies the whole state (SmolLM2:
    23 KB a cell, ~5 us), a prompt cell computed in a batch costs ~3 ms on 2 cores, so one
    spared cell pays for a few hundred copied."""
    return spared >= 1 + saved_cells // 256


# A free slot next to running ones is taken over one that holds up to this many more
# prompt cells: recomputing 32 cells costs about as much as 30 steps' extra graph when the
# new sequence sits apart (measured on 2 cores, SmolLM2-135M: ~3 ms a prompt cell in a
# batch, ~4 ms a graph); a conversation's own prefix is longer and still wins.
CONTIGUITY_SLACK = 32


# Rows of one step that decoding and a prediction's drafts share (see Scheduler.plan).
DRAFT_ROWS = 16
# The same for drafts from a request's context: the engine sizes those by measured step
# costs (engine/speculation.py), and long drafts of text that repeats pay on a CPU, where
# rows past a dozen cost a fraction of the first (Qwen2.5-1.5B, 2 cores: 16 rows 292 ms,
# 32 rows 473 ms, one row 47 ms).
SPECULATION_ROWS = 64


class Scheduler:
    def __init__(self, *, n_slots: int, max_waiting: int, prompt_cache: PromptCache | None = None) -> None:
        """``prompt_cache``: where long prefixes go when their slot is taken, and come back from."""
        self.prompt_cache = prompt_cache
        self.slots = [Slot(i) for i in range(n_slots)]
        self.waiting: list[deque[RequestHandle]] = [deque() for _ in range(PRIORITIES)]
        self.running: list[Sequence] = []
        self.max_waiting = max_waiting
        self._clock = 0

    # --- queue ---------------------------------------------------------------------

    @property
    def n_waiting(self) -> int:
        return sum(len(q) for q in self.waiting)

    def enqueue(self, handle: RequestHandle) -> None:
        """Raises QueueFull when the queue is, and BackendFailure for a request that asks
        for more choices than there are slots (it could never start)."""
        if handle.request.n > len(self.slots):
            raise BackendFailure(f"n={handle.request.n} exceeds the {len(self.slots)} sequence slots")
        if self.n_waiting >= self.max_waiting:
            raise QueueFull("queue full")
        self.waiting[handle.request.priority].append(handle)

    def expire_waiting(self, timeout: float, now: float) -> list[RequestHandle]:
        """Removes and returns requests that have waited longer than ``timeout``."""
        expired = []
        for queue in self.waiting:
            while queue and now - queue[0].enqueued_at > timeout:
                expired.append(queue.popleft())
        return expired

    def take_waiting(self) -> list[RequestHandle]:
        """Removes and returns every waiting request."""
        taken = [handle for queue in self.waiting for handle in queue]
        for queue in self.waiting:
            queue.clear()
        return taken

    def has_work(self) -> bool:
        return bool(self.running) or self.n_waiting > 0

    def drop_cancelled(self) -> None:
        for queue in self.waiting:
            for handle in [h for h in queue if h.cancelled]:
                queue.remove(handle)
        for seq in [s for s in self.running if s.handle.cancelled]:
            seq.finish()
            self.release(seq)

    # --- admission -----------------------------------------------------------------

    def admit(self, new_sequence: SequenceFactory) -> list[Admission]:
        """Start waiting requests that fit, in priority then arrival order."""
        started: list[Admission] = []
        for queue in self.waiting:
            while queue:
                handle = queue[0]
                free = [s for s in self.slots if not s.busy]
                if len(free) < handle.request.n:
                    return started
                # Packing pays only while some slots will stay idle; when the queue fills
                # every free slot, each prompt goes to its longest prefix.
                pack = self.n_waiting < len(free)
                queue.popleft()
                started.append(self._start(handle, free, new_sequence, pack=pack))
        return started

    def _start(self, handle: RequestHandle, free: list[Slot], new_sequence: SequenceFactory, *, pack: bool) -> Admission:
        prompt = handle.request.prompt
        key = handle.request.cache_key
        scope = handle.request.cache_scope
        # Cells of another scope are never reused, so they count as no prefix at all.
        held = {slot.slot_id: prompt.common_prefix(slot.cached, slot.media) if slot.scope == scope else 0 for slot in free}
        best = max(held.values())
        # Slots within CONTIGUITY_SLACK cells of the longest prefix are as good (when
        # packing); of those, the one of the same cache key, then the one next to busy slots.
        slack = CONTIGUITY_SLACK if pack else 0
        near = [slot for slot in free if held[slot.slot_id] >= best - slack]
        chosen = self._pick(
            near,
            free,
            handle.request.n,
            lambda slot: (int(key is not None and slot.cache_key == key and slot.scope == scope), held[slot.slot_id]),
        )
        prefix = held[chosen[0].slot_id]
        # A running sequence may hold a longer prefix (a shared system prompt in flight).
        copy_from = None
        for seq in self.running:
            if seq.index == 0 and seq.handle.request.cache_scope == scope:
                shared = prompt.common_prefix(seq.tokens[: seq.num_computed], seq.prompt.media)
                if shared > prefix:
                    prefix, copy_from = shared, seq.slot_id
        # A saved prefix may be longer still (the same prompt asked again after others).
        restore = None
        if self.prompt_cache is not None:
            saved, shared = self.prompt_cache.best(prompt.cells, scope)
            usable = min(len(prompt) - 1, shared) - min(len(prompt) - 1, prefix)
            if saved is not None and worth_restoring(len(saved.cells), usable):
                restore, prefix, copy_from = saved, shared, None
        if copy_from is not None or restore is not None:
            chosen = self._pick(free, free, handle.request.n, lambda slot: (0, 0))  # overwritten whole
        # A restored or copied prefix overwrites the leader's slot whole; else it keeps ``prefix``.
        save = self._worth_saving(chosen, prefix if restore is None and copy_from is None else 0)
        # At least one prompt token is always recomputed: its logits start the output.
        reuse = min(prefix, len(prompt) - 1)
        sequences = []
        for index, slot in enumerate(chosen):
            slot.busy = True
            slot.scope = scope
            slot.cache_key = key
            slot.last_used = self._tick()
            sequences.append(new_sequence(handle, index, slot.slot_id))
        leader = sequences[0]
        leader.num_computed = reuse
        self.running.extend(sequences)
        return Admission(leader, reuse, copy_from, restore, save)

    def _pick(self, leaders: list[Slot], free: list[Slot], n: int, worth: Callable[[Slot], tuple[int, int]]) -> list[Slot]:
        """The leader's slot from ``leaders`` by ``worth`` (cache key, prefix), then its
        choices' slots from ``free``; at equal worth, next to busy slots rather than in a
        gap (each run of consecutive busy slots is a graph of its own in every step, see
        ``batch.ubatches``), then the least recently used."""
        busy = {slot.slot_id for slot in self.slots if slot.busy}
        chosen: list[Slot] = []
        for candidates in (leaders, *[free] * (n - 1)):

            def rank(slot: Slot) -> tuple[int, int, int, int]:
                neighbours = (slot.slot_id - 1 in busy) + (slot.slot_id + 1 in busy)
                same_key, prefix = worth(slot) if not chosen else (0, 0)
                return (same_key, neighbours, prefix, -slot.last_used)

            slot = max((s for s in candidates if s not in chosen), key=rank)
            chosen.append(slot)
            busy.add(slot.slot_id)
        return chosen

    def _worth_saving(self, chosen: list[Slot], kept: int) -> list[SlotCells]:
        """Slots about to lose a long prefix (``kept``: cells the leader's slot keeps)."""
        cache = self.prompt_cache
        if cache is None:
            return []
        out = []
        for i, slot in enumerate(chosen):
            lost = len(slot.cached) - (kept if i == 0 else 0)
            if lost >= cache.min_tokens and not slot.media and not cache.holds(slot.cached, slot.scope):
                out.append(SlotCells(slot.slot_id, list(slot.cached), slot.scope))
        return out

    def idle_unsaved(self) -> SlotCells | None:
        """A free slot (least recently used first) whose cells the prompt cache should keep
        and does not hold yet: the engine copies them out while no request waits, so that a
        burst of prompts finds them kept instead of copying each out (~2-10 ms here, most of
        it the host faulting fresh memory in) before its first step."""
        for slot in sorted((s for s in self.slots if not s.busy and not s.offered), key=lambda s: s.last_used):
            slot.offered = True
            for kept in self._worth_saving([slot], 0):
                return kept
        return None

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    # --- batching ------------------------------------------------------------------

    def plan(self, budget: int) -> StepPlan:
        """Decode tokens first (with drafts from the spare rows), then prefill chunks.

        Drafts only use rows that decoding streams leave spare of DRAFT_ROWS: on a CPU every
        row adds to the step (measured for a lone Qwen2.5-0.5B stream on 2 cores: one row
        19 ms, 17 rows 158 ms), so 16 or more streams draft nothing and fewer share the rest."""
        plan = StepPlan()
        feeds: list[tuple[int, Callable[[], object]]] = []  # (slot, adds the entry), added in slot order
        decoding = [seq for seq in self.running if seq.phase is Phase.DECODE]
        spare = max(DRAFT_ROWS - len(decoding), 0)
        spare_context = max(SPECULATION_ROWS - len(decoding), 0)
        for seq in decoding:
            if budget <= 0:
                break
            rows = spare_context if seq.draft_source == "context" else spare
            draft = seq.draft[: min(rows, budget - 1)] if seq.accepts_drafts else []
            feeds.append((seq.slot_id, partial(plan.add_decode, seq, draft)))
            spare = max(spare - len(draft), 0)
            spare_context -= len(draft)
            budget -= 1 + len(draft)
        media_planned = False
        for seq in self.running:
            if seq.phase is not Phase.PREFILL or budget <= 0:
                continue
            start = seq.num_computed
            media_at = seq.prompt.next_media(start)
            if media_at == start:
                if not media_planned:  # one media decode per step keeps streams moving
                    plan.add_media(seq, seq.prompt.media[start], start)
                    media_planned = True
                continue
            end = min(seq.prompt_len, start + budget, media_at if media_at is not None else seq.prompt_len)
            feeds.append((seq.slot_id, partial(self._add_prefill, plan, seq, start, end)))
            budget -= end - start
        # Slot order: over per-slot KV streams, llama.cpp runs a batch as one graph only
        # while its sequence ids go up one by one (llama_batch_allocr::split_equal,
        # sequential); in admission order, a step that admitted prompts into reused slots
        # ran as one graph per sequence (measured: 10 prompts of 8 tokens, 242 ms).
        for _, add in sorted(feeds, key=lambda feed: feed[0]):
            add()
        return plan

    def _add_prefill(self, plan: StepPlan, seq: Sequence, start: int, end: int) -> None:
        entry = plan.add_prefill(seq, start, end)
        if entry.rows:
            for follower in self.followers_of(seq):
                plan.add_fork(follower, entry)

    def followers_of(self, leader: Sequence) -> list[Sequence]:
        return [s for s in self.running if s.handle is leader.handle and s.phase is Phase.AWAIT_FORK]

    def release(self, seq: Sequence) -> None:
        """The sequence has finished: its slot becomes free and keeps its KV for reuse."""
        slot = self.slots[seq.slot_id]
        slot.busy = False
        slot.cached = seq.tokens[: seq.num_computed]
        slot.media = seq.prompt.media
        slot.last_used = self._tick()
        slot.offered = False
        self.running.remove(seq)
