"""Which requests run, in which KV slot, and what each step feeds llama_decode.

Continuous batching: every step carries one token for each decoding sequence plus
prefill chunks of admitted prompts up to the batch budget, so a long prompt never
holds running streams back for more than a step. Slots keep their KV after a request
ends; a new prompt goes to the free slot that already holds its longest prefix.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from chatport.engine.sequence import Phase, QueueFull, RequestHandle, Sequence

PRIORITIES = 3


@dataclass
class Slot:
    index: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV the slot holds
    cache_key: str | None = None
    last_used: int = 0
    busy: bool = False


@dataclass
class Admission:
    leader: Sequence
    reuse: int  # prompt tokens whose KV is already in place
    copy_from: int | None  # slot of a running sequence to take the prefix from


@dataclass
class Planned:
    seq: Sequence
    count: int  # tokens of the sequence in this batch
    row: int | None  # logits row, when the step ends in a sample for it


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n


class Scheduler:
    def __init__(self, *, n_slots: int, max_waiting: int) -> None:
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

    def has_work(self) -> bool:
        return bool(self.running) or self.n_waiting > 0

    def drop_cancelled(self) -> list[Sequence]:
        for queue in self.waiting:
            for handle in [h for h in queue if h.cancelled]:
                queue.remove(handle)
        gone = [s for s in self.running if s.handle.cancelled]
        for seq in gone:
            self.finish(seq)
        return gone

    # --- admission -----------------------------------------------------------------

    def admit(self, eog_check, lazy_start=None) -> list[Admission]:
        """Start waiting requests that fit, in priority then arrival order."""
        started = []
        for queue in self.waiting:
            while queue:
                handle = queue[0]
                free = [s for s in self.slots if not s.busy]
                if len(free) < handle.request.n:
                    return started
                queue.popleft()
                started.append(self._start(handle, free, eog_check, lazy_start))
        return started

    def _start(self, handle: RequestHandle, free: list[Slot], eog_check, lazy_start=None) -> Admission:
        prompt = handle.request.prompt
        key = handle.request.cache_key

        def preference(slot: Slot) -> tuple[int, int, int]:
            same_key = int(key is not None and slot.cache_key == key)
            return (common_prefix(slot.cached, prompt), same_key, -slot.last_used)

        ranked = sorted(free, key=preference, reverse=True)
        chosen = ranked[: handle.request.n]
        prefix = common_prefix(chosen[0].cached, prompt)
        # A running sequence may hold a longer prefix (a shared system prompt in flight).
        copy_from = None
        for seq in self.running:
            if seq.handle.request.n == 1 or seq.index == 0:
                shared = common_prefix(seq.tokens[: seq.computed], prompt)
                if shared > prefix:
                    prefix, copy_from = shared, seq.slot
        if copy_from is not None:
            chosen = sorted(free, key=lambda s: s.last_used)[: handle.request.n]
        # At least one prompt token is always recomputed: its logits start the output.
        reuse = min(prefix, len(prompt) - 1)
        sequences = []
        for index, slot in enumerate(chosen):
            slot.busy = True
            slot.cache_key = key
            slot.last_used = self._tick()
            proto = handle.request.constraint
            constraint = proto.clone() if proto is not None else None
            lazy = lazy_start if handle.request.lazy_constraints else None
            seq = Sequence(handle, index, slot.index, eog_check, constraint, lazy)
            sequences.append(seq)
        leader = sequences[0]
        leader.computed = reuse
        handle.cached_tokens = reuse
        self.running.extend(sequences)
        return Admission(leader, reuse, copy_from)

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    # --- batching ------------------------------------------------------------------

    def plan(self, budget: int) -> list[Planned]:
        planned: list[Planned] = []
        rows = 0
        for seq in self.running:
            if seq.phase is Phase.DECODE and budget > 0:
                planned.append(Planned(seq, 1, rows))
                rows += 1
                budget -= 1
        for seq in self.running:
            if seq.phase is Phase.PREFILL and budget > 0:
                chunk = min(len(seq.tokens) - seq.computed, budget)
                completes = seq.computed + chunk == len(seq.tokens)
                planned.append(Planned(seq, chunk, rows if completes else None))
                rows += int(completes)
                budget -= chunk
        return planned

    def followers_of(self, leader: Sequence) -> list[Sequence]:
        return [
            s for s in self.running if s.handle is leader.handle and s.phase is Phase.AWAIT_FORK
        ]

    def finish(self, seq: Sequence) -> None:
        seq.abort()
        slot = self.slots[seq.slot]
        slot.busy = False
        slot.cached = seq.tokens[: seq.computed]
        slot.last_used = self._tick()
        self.running.remove(seq)
