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
from chatport.protocol.backend import QueueFull
from chatport.protocol.prompt import MediaChunk

PRIORITIES = 3

# (request, choice index, slot id) -> the sequence for that choice
SequenceFactory = Callable[[RequestHandle, int, int], Sequence]


@dataclass
class Slot:
    slot_id: int
    cached: list[int] = field(default_factory=list)  # cells whose KV the slot holds
    media: Mapping[int, MediaChunk] = field(default_factory=dict)  # the chunks among them
    cache_key: str | None = None
    last_used: int = 0
    busy: bool = False


@dataclass
class Admission:
    leader: Sequence  # choice 0; the others fork from it once its prompt is computed
    reuse: int  # prompt cells whose KV is already in place
    copy_from: int | None  # slot of a running sequence to take the prefix from
    restore: SavedPrefix | None = None  # a prefix from the prompt cache to write into the slot first
    save: list[tuple[int, list[int]]] = field(default_factory=list)  # (slot, its cells) to keep before they go


# A saved prefix is written back only when it spares this many more cells than a slot does.
RESTORE_GAIN = 64


# Rows of one step that decoding and drafts share (see Scheduler.plan).
DRAFT_ROWS = 16


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
            seq.finish(None)
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
                queue.popleft()
                started.append(self._start(handle, free, new_sequence))
        return started

    def _start(self, handle: RequestHandle, free: list[Slot], new_sequence: SequenceFactory) -> Admission:
        prompt = handle.request.prompt
        key = handle.request.cache_key

        def preference(slot: Slot) -> tuple[int, int, int]:
            same_key = int(key is not None and slot.cache_key == key)
            return (prompt.common_prefix(slot.cached, slot.media), same_key, -slot.last_used)

        chosen = sorted(free, key=preference, reverse=True)[: handle.request.n]
        prefix = prompt.common_prefix(chosen[0].cached, chosen[0].media)
        # A running sequence may hold a longer prefix (a shared system prompt in flight).
        copy_from = None
        for seq in self.running:
            if seq.index == 0:
                shared = prompt.common_prefix(seq.tokens[: seq.num_computed], seq.prompt.media)
                if shared > prefix:
                    prefix, copy_from = shared, seq.slot_id
        restore = None
        if copy_from is None and self.prompt_cache is not None:
            saved, shared = self.prompt_cache.best(prompt.cells)
            if saved is not None and shared >= prefix + RESTORE_GAIN:
                restore, prefix = saved, shared
        if copy_from is not None or restore is not None:
            chosen = sorted(free, key=lambda s: s.last_used)[: handle.request.n]
        # A restored or copied prefix overwrites the leader's slot whole; else it keeps ``prefix``.
        save = self._worth_saving(chosen, prefix if restore is None and copy_from is None else 0)
        # At least one prompt token is always recomputed: its logits start the output.
        reuse = min(prefix, len(prompt) - 1)
        sequences = []
        for index, slot in enumerate(chosen):
            slot.busy = True
            slot.cache_key = key
            slot.last_used = self._tick()
            sequences.append(new_sequence(handle, index, slot.slot_id))
        leader = sequences[0]
        leader.num_computed = reuse
        self.running.extend(sequences)
        return Admission(leader, reuse, copy_from, restore, save)

    def _worth_saving(self, chosen: list[Slot], kept: int) -> list[tuple[int, list[int]]]:
        """Slots about to lose a long prefix (``kept``: cells the leader's slot keeps)."""
        cache = self.prompt_cache
        if cache is None:
            return []
        out = []
        for i, slot in enumerate(chosen):
            lost = len(slot.cached) - (kept if i == 0 else 0)
            if lost >= cache.min_tokens and not slot.media and not cache.holds(slot.cached):
                out.append((slot.slot_id, list(slot.cached)))
        return out

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    # --- batching ------------------------------------------------------------------

    def plan(self, budget: int) -> StepPlan:
        """Decode tokens first (with drafts from the spare rows), then prefill chunks.

        Drafts only use rows that decoding streams leave spare of DRAFT_ROWS: on a CPU a
        row costs nearly as much as any other (measured: verifying drafts of up to 32 tokens
        made a lone Qwen2.5-0.5B stream slower, not faster), so 16 or more streams draft
        nothing and fewer share the rest."""
        plan = StepPlan()
        feeds: list[tuple[int, Callable[[], object]]] = []  # (slot, adds the entry), added in slot order
        decoding = [seq for seq in self.running if seq.phase is Phase.DECODE]
        spare = max(DRAFT_ROWS - len(decoding), 0)
        for seq in decoding:
            if budget <= 0:
                break
            draft = seq.draft[: min(spare, budget - 1)] if seq.accepts_drafts else []
            feeds.append((seq.slot_id, partial(plan.add_decode, seq, draft)))
            spare -= len(draft)
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
        self.running.remove(seq)
