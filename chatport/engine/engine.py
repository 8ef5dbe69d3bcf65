"""The engine: one thread that owns a model context and steps every live sequence.

Callers submit from the event loop and read outputs from their handle; all model state is
touched from the engine thread only, so no lock guards it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from chatport.engine.batch import Entry, StepPlan, TokenBatch
from chatport.engine.constraint import Constraint, step_masks
from chatport.engine.handle import RequestHandle, deliver_step
from chatport.engine.history import AnswerHistory
from chatport.engine.prompt_cache import KVState, PromptCache
from chatport.engine.sampler import TokenChoice, sample
from chatport.engine.scheduler import Scheduler
from chatport.engine.sequence import Phase, Sequence, TokenTable
from chatport.engine.speculation import ContextDrafter, StepCost, StepLoad, draft_length
from chatport.engine.text import token_display
from chatport.protocol.backend import (
    BackendFailure,
    BackendStats,
    ChoiceDelta,
    GenerationRequest,
    QueueTimeout,
    TokenLogprob,
)
from chatport.protocol.prompt import MediaChunk

log = logging.getLogger("chatport.engine")

# The largest slot state copied out while idle. Copying into memory the process has not
# touched yet costs up to ~3.5 ms a MiB on the 2-core VMs measured (the host faults each
# page in), so a request arriving during such a copy waits ~60 ms at worst. SmolLM2 fits
# ~700 cells in it, a 7B model with grouped-query attention ~128; larger slots are copied
# when they are taken, as before.
IDLE_COPY_BYTES = 16 << 20

Logits = npt.NDArray[np.float32]
# Row counts whose decode steps are timed at start-up (Engine.calibrate).
CALIBRATION_ROWS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
# Proposes draft tokens for a decoding sequence (verified by the next step); none by default.
Drafter = Callable[[Sequence], list[int]]
_MASK_WEIGHT = 0.1  # of each new draft row's mask time in the running mean


class ModelContext(Protocol):
    """What the engine needs of a model context (``llama.LlamaContext``)."""

    @property
    def batch(self) -> TokenBatch: ...

    @property
    def batch_capacity(self) -> int: ...

    @property
    def n_ubatch(self) -> int:
        """The most tokens llama.cpp runs as one graph."""
        ...

    def decode(self) -> Logits:
        """Run the batch; the logits rows it asked for, in order."""
        ...

    def decode_media(self, chunk: MediaChunk, seq_id: int, start_pos: int) -> None: ...

    def remove(self, seq_id: int, from_pos: int) -> None:
        """Drop the sequence's KV cells at positions >= from_pos."""
        ...

    def copy_sequence(self, src: int, dst: int) -> None: ...

    def state_size(self, seq_id: int) -> int:
        """Bytes ``save_sequence`` would return (``llama_state_seq_get_size``)."""
        ...

    def save_sequence(self, seq_id: int) -> KVState:
        """The sequence's KV cells (``llama_state_seq_get_data``)."""
        ...

    def restore_sequence(self, seq_id: int, state: KVState) -> bool:
        """Replace the sequence's cells with saved ones; False if the state does not fit."""
        ...

    def close(self) -> None: ...


class EngineVocab(TokenTable, Protocol):
    @property
    def n_vocab(self) -> int: ...


@dataclass
class StepCounters:
    steps: int = 0
    graphs: int = 0
    tokens: int = 0
    decode_seconds: float = 0.0
    step_seconds: float = 0.0
    first_tokens: int = 0
    first_token_seconds: float = 0.0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    drafted: dict[str, int] = field(default_factory=dict)  # draft tokens verified, by source
    accepted: dict[str, int] = field(default_factory=dict)  # of those, the ones taken


class Engine:
    def __init__(
        self,
        context: ModelContext,
        vocab: EngineVocab,
        *,
        context_length: int,
        max_seqs: int,
        max_waiting: int,
        queue_timeout: float,
        drafter: Drafter | None = None,
        prompt_cache: PromptCache | None = None,
        speculation: bool = False,
        history: AnswerHistory | None = None,
    ) -> None:
        """``speculation``: draft from every request's own context where drafts pay
        (``prediction`` drafts whenever a request sends one), and from ``history``'s earlier
        answers of the request's project when given. ``drafter`` replaces them all."""
        self.context = context
        self.prompt_cache = prompt_cache
        self.vocab = vocab
        self._ends = np.array([vocab.is_eog(t) for t in range(vocab.n_vocab)], dtype=bool)
        # step_masks allows every end token where it allows one: this one stands for all.
        self._end = int(np.flatnonzero(self._ends)[0]) if self._ends.any() else None
        self.context_length = context_length
        self.max_seqs = max_seqs
        self.queue_timeout = queue_timeout
        self.scheduler = Scheduler(n_slots=max_seqs, max_waiting=max_waiting, prompt_cache=prompt_cache)
        self.counters = StepCounters()
        self._drafter = drafter
        self._speculation = speculation
        self.history = history if speculation else None
        self.step_cost = StepCost()
        self.mask_seconds = 0.0  # a draft row's grammar mask, measured (recent rows weigh most)
        self._inbox: queue.SimpleQueue[RequestHandle] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = False
        self._abort: BackendFailure | None = None  # set by abort_all, taken by the engine thread
        self._last_step = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="chatport-engine", daemon=True)

    def start(self) -> Engine:
        self._thread.start()
        return self

    def calibrate(self, counts: tuple[int, ...] = CALIBRATION_ROWS, cells: int = 64) -> None:
        """The engine thread's first work: time a decode step of each row count after
        ``cells`` cells of KV in slot 0 (the fastest of two), so that drafts are weighed by
        what rows cost on this machine from the first request on. Costs are not a line:
        llama.cpp's CPU matmuls run rows in tiles (Qwen2.5-1.5B on 2 cores: 1 row 47 ms, 8 rows 249, 12 rows 309, 16 rows
        292), so counts between the measured ones are interpolated, and steps keep measuring."""
        if not self._speculation:
            return
        batch, token = self.context.batch, 0 if self._end != 0 else 1
        top = max(counts)
        if cells + top > self.context_length:
            return
        try:
            batch.clear()
            batch.add([token] * cells, 0, 0, 1)
            self.context.decode()
            for k in (1, *counts):  # the first one-row step warms the kernels up
                best = float("inf")
                for _ in range(2):
                    batch.clear()
                    batch.add([token] * k, cells, 0, k)
                    began = time.perf_counter()
                    self.context.decode()
                    best = min(best, time.perf_counter() - began)
                    self.context.remove(0, cells)
                self.step_cost.record(k, best)
        finally:
            self.context.remove(0, 0)

    # --- caller side (event loop) ----------------------------------------------------

    def submit(self, request: GenerationRequest) -> RequestHandle:
        """Queue a request; the engine thread admits it, or fails it (a full queue, more
        choices than slots) through its handle before any output."""
        handle = RequestHandle(request, asyncio.get_running_loop(), on_cancel=self._wake.set)
        self._inbox.put(handle)
        self._wake.set()
        return handle

    def stats(self) -> BackendStats:
        c = self.counters
        return BackendStats(
            running=len(self.scheduler.running),
            waiting=self.scheduler.n_waiting,
            steps=c.steps,
            graphs=c.graphs,
            tokens=c.tokens,
            decode_seconds=c.decode_seconds,
            step_seconds=c.step_seconds,
            alive=self._thread.is_alive() and not self._stopping,
            idle_seconds=time.monotonic() - self._last_step,
            first_tokens=c.first_tokens,
            first_token_seconds=c.first_token_seconds,
            prompt_tokens=c.prompt_tokens,
            cached_tokens=c.cached_tokens,
            drafted_tokens=tuple(sorted(c.drafted.items())),
            accepted_draft_tokens=tuple(sorted(c.accepted.items())),
        )

    def abort_all(self, failure: BackendFailure) -> None:
        self._abort = failure
        self._wake.set()

    def shutdown(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self.prompt_cache is not None:
            self.prompt_cache.close()
        self.context.close()

    # --- engine thread -----------------------------------------------------------------

    def _run(self) -> None:
        # Calibrated here, not by the thread that built the engine: llama.cpp's CPU worker
        # threads belong to the thread that decodes, and one decode from another thread
        # left every later step of this one 10-15% slower (measured on the 1.5B model,
        # docs/benchmarks.md); requests that arrive meanwhile wait in the inbox.
        self.calibrate()
        while not self._stopping:
            if not self.tick() and not self.keep_idle_slot():
                self._wake.wait()
                self._wake.clear()

    def keep_idle_slot(self) -> bool:
        """With nothing to step, copy one free slot's cells into the prompt cache (one at a
        time, of IDLE_COPY_BYTES at most: a request that arrives meanwhile waits for one
        such copy at most). Returns whether it looked at a slot."""
        if self.prompt_cache is None or (kept := self.scheduler.idle_unsaved()) is None:
            return False
        if self.context.state_size(kept.slot_id) <= IDLE_COPY_BYTES:  # a larger one waits for its admission
            self.prompt_cache.keep(kept.cells, self.context.save_sequence(kept.slot_id), kept.scope)
        return True

    def tick(self) -> bool:
        """One pass of the loop: take new requests, drop cancelled and expired ones, and
        step if there is work. Returns whether it stepped."""
        self._take_inbox()
        self._drop_stale()
        failure, self._abort = self._abort, None
        if failure is not None:
            self._fail_all(failure)
        if not self.scheduler.has_work():
            self._last_step = time.monotonic()  # idle is not stuck
            return False
        started = time.perf_counter()
        try:
            self.step()
        except Exception as exc:  # the failure is the live requests', not the server's
            log.exception("engine step failed")
            self._fail_running(BackendFailure(str(exc)))
        self.counters.step_seconds += time.perf_counter() - started
        self._last_step = time.monotonic()
        return True

    def step(self) -> None:
        self._admit()
        plan = self.scheduler.plan(self.context.batch_capacity)
        started = time.perf_counter()
        logits = self._decode(plan)
        self._sample(plan, logits)
        seconds = time.perf_counter() - started  # the forward pass and the picks
        if not plan.media and plan.n_tokens == plan.n_rows:  # decode rows only: what drafts weigh
            self.step_cost.record(plan.n_rows, seconds)
        self._judge_drafts(plan, seconds)
        outputs = self._advance(plan)
        self._emit(outputs)

    # --- the six phases -------------------------------------------------------------------

    def _admit(self) -> None:
        """Give waiting requests their slots, with whatever prefix KV can be reused."""
        for admission in self.scheduler.admit(self._new_sequence):
            leader = admission.leader
            reuse = admission.reuse
            if self.prompt_cache is not None:
                for kept in admission.save:
                    self.prompt_cache.keep(kept.cells, self.context.save_sequence(kept.slot_id), kept.scope)
            if admission.restore is not None:
                state = self.prompt_cache.load(admission.restore) if self.prompt_cache is not None else None
                if state is None or not self.context.restore_sequence(leader.slot_id, state):
                    reuse = leader.num_computed = 0  # a clean miss: the prompt is computed
            elif admission.copy_from is not None:
                self.context.copy_sequence(admission.copy_from, leader.slot_id)
            self.context.remove(leader.slot_id, leader.position(reuse))
            self.counters.prompt_tokens += leader.prompt_len
            self.counters.cached_tokens += reuse
            leader.handle.admitted(cached_tokens=reuse)

    def _decode(self, plan: StepPlan) -> Logits:
        """Media chunks first (each in its own decode), then the token batch."""
        started = time.perf_counter()
        for media in plan.media:
            seq = media.seq
            self.context.decode_media(media.chunk, seq.slot_id, seq.position(media.first_cell))
        logits = np.empty((0, self.vocab.n_vocab), dtype=np.float32)
        if plan.n_tokens:
            self.counters.graphs += plan.graphs(self.context.n_ubatch)
            plan.fill(self.context.batch)
            logits = self.context.decode()
        self.counters.decode_seconds += time.perf_counter() - started
        return logits

    def _sample(self, plan: StepPlan, logits: Logits) -> None:
        """Pick each entry's tokens into its sequence's state. A draft is verified in
        rounds: row i + 1 is sampled, with penalties and grammar advanced by the pick of
        row i, only while the picks match the draft, so the output is exactly what
        sampling one token per step would give."""
        active = [e for e in plan.entries if e.rows]
        depth = 0
        while active:
            began = time.perf_counter()
            self._apply_masks([e.seq for e in active])
            if depth:  # a draft row's grammar mask: a cost of constrained drafts alone
                constrained = sum(1 for e in active if e.seq.constraint is not None)
                if constrained:
                    seconds = (time.perf_counter() - began) / constrained
                    self.mask_seconds += _MASK_WEIGHT * (seconds - self.mask_seconds)
            choices = sample(logits, [e.seq.sampler for e in active], [e.rows[depth] for e in active])
            still = []
            for entry, choice in zip(active, choices, strict=True):
                entry.seq.append(choice.token)
                entry.picks.append(choice)
                more = depth + 1 < len(entry.rows) and choice.token == entry.draft[depth]
                if more and entry.seq.can_continue():
                    still.append(entry)
            active, depth = still, depth + 1
        self.counters.tokens += sum(len(e.picks) for e in plan.entries)

    def _advance(self, plan: StepPlan) -> dict[RequestHandle, list[ChoiceDelta]]:
        """Count what the KV now holds, fork choices, turn picks into output, end
        finished sequences and propose the next drafts."""
        for media in plan.media:
            media.seq.num_computed += media.chunk.n_cells
        outputs: dict[RequestHandle, list[ChoiceDelta]] = {}
        decoding = sum(1 for seq in self.scheduler.running if seq.phase is Phase.DECODE)
        load = StepLoad(max(decoding, 1), float(max(decoding, 1)))
        for entry in plan.entries:
            seq = entry.seq
            self._count_computed(entry)
            if seq.predictor is not None and seq.phase is Phase.DECODE:
                seq.predictor.advance([choice.token for choice in entry.picks])
            for at, choice in enumerate(entry.picks):
                delta = seq.accept(choice.token, self._logprob(choice))
                if delta is not None:
                    outputs.setdefault(seq.handle, []).append(delta)
                if seq.phase is Phase.FINISHED:
                    # Picks past the end (a stop sequence inside an accepted draft) never happened.
                    seq.rollback(len(seq.tokens) - (len(entry.picks) - at - 1))
                    self.scheduler.release(seq)
                    self._persist(seq)
                    if self.history is not None:
                        self.history.add(seq.handle.request.cache_scope, seq.tokens[seq.prompt_len :])
                    break
            if seq.phase is Phase.DECODE:
                seq.draft = self._draft(seq, load)
        self._count_first_outputs(outputs)
        self.counters.steps += 1
        return outputs

    def _count_first_outputs(self, outputs: dict[RequestHandle, list[ChoiceDelta]]) -> None:
        now = time.monotonic()
        for handle in outputs:
            if handle.first_output_at is None:
                handle.first_output_at = now
                self.counters.first_tokens += 1
                self.counters.first_token_seconds += now - handle.enqueued_at

    def _emit(self, outputs: dict[RequestHandle, list[ChoiceDelta]]) -> None:
        deliver_step(outputs)

    # --- helpers ----------------------------------------------------------------------

    def _judge_drafts(self, plan: StepPlan, seconds: float) -> None:
        """Tell each decoding sequence that drafts from its context what the step gave it."""
        for entry in plan.entries:
            drafter = entry.seq.context_drafter
            if drafter is not None and entry.seq.phase is Phase.DECODE and entry.picks:
                drafter.stepped(bool(entry.draft), len(entry.picks), seconds)

    def _draft(self, seq: Sequence, load: StepLoad) -> list[int]:
        """The next draft of a sequence in a step of ``load``'s rows (the decoding ones and
        the drafts given so far, which this one adds to): the client's prediction when it
        sent one (it knows the answer best), else the context's or history's, as long as
        the measured cost of its rows leaves a gain."""
        if self._drafter is not None:
            seq.draft_source = "drafter"
            return self._drafter(seq)
        if seq.predictor is not None:
            seq.draft_source = "prediction"
            draft = seq.predictor.draft()
            load.add(len(draft), 1.0)
            return draft
        drafter = seq.context_drafter
        if drafter is None or not seq.accepts_drafts:
            return []
        candidate = drafter.candidate()  # looked up even while paused: the rate goes on learning
        seq.draft_source = drafter.source
        if not candidate or drafter.paused:
            return []
        masks = self.mask_seconds if seq.constraint is not None else 0.0
        length = draft_length(self.step_cost, load, drafter.rate, len(candidate), masks)
        load.add(length, drafter.rate)
        return candidate[:length]

    def _count_computed(self, entry: Entry) -> None:
        seq = entry.seq
        if entry.fork_of is not None:
            leader = entry.fork_of
            self.context.copy_sequence(leader.slot_id, seq.slot_id)
            seq.num_computed = leader.prompt_len
            seq.phase = Phase.DECODE
            return
        # Cells of rejected draft tokens hold KV that must go: the next step recomputes
        # from the last accepted token.
        accepted_draft = max(len(entry.picks) - 1, 0) if entry.draft else 0
        if entry.draft:
            source = seq.draft_source
            self.counters.drafted[source] = self.counters.drafted.get(source, 0) + len(entry.draft)
            self.counters.accepted[source] = self.counters.accepted.get(source, 0) + accepted_draft
        seq.num_computed += len(entry.tokens) - len(entry.draft) + accepted_draft
        if accepted_draft < len(entry.draft):
            self.context.remove(seq.slot_id, seq.position(seq.num_computed))
        if seq.phase is Phase.PREFILL and seq.num_computed >= seq.prompt_len:
            seq.phase = Phase.DECODE

    def _apply_masks(self, seqs: list[Sequence]) -> None:
        constrained = [s for s in seqs if s.constraint is not None]
        for seq in seqs:
            seq.sampler.allowed = None
            seq.sampler.end_outside = None
            forced = seq.forced_token
            if forced is not None:
                # One allowed token: the sampler picks it whatever the logits say.
                seq.sampler.allowed = np.zeros(self.vocab.n_vocab, dtype=bool)
                seq.sampler.allowed[forced] = True
        if constrained:
            masks = step_masks([_constraint(s) for s in constrained], self._ends)
            for seq, mask in zip(constrained, masks, strict=True):
                seq.sampler.allowed = mask
                seq.sampler.end_outside = self._end if self._end is not None and mask[self._end] else None

    def _new_sequence(self, handle: RequestHandle, index: int, slot_id: int) -> Sequence:
        seq = Sequence(handle, index, slot_id, self.vocab, self.context_length)
        if self._speculation and seq.predictor is None:
            history = self.history
            scope = handle.request.cache_scope
            seq.context_drafter = ContextDrafter(
                seq.tokens, None if history is None else lambda tokens: history.lookup(scope, tokens)
            )
        return seq

    def _logprob(self, choice: TokenChoice) -> TokenLogprob | None:
        if choice.logprob is None:
            return None

        def entry(token: int, logprob: float, top: list[TokenLogprob]) -> TokenLogprob:
            data = self.vocab.piece(token)
            return TokenLogprob(token_display(data), list(data), logprob, top)

        top = [entry(t, lp, []) for t, lp in (choice.top or [])]
        return entry(choice.token, choice.logprob, top)

    def _take_inbox(self) -> None:
        while True:
            try:
                handle = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                self.scheduler.enqueue(handle)
            except BackendFailure as failure:
                handle.fail(failure)

    def _drop_stale(self) -> None:
        self.scheduler.drop_cancelled()
        for handle in self.scheduler.expire_waiting(self.queue_timeout, time.monotonic()):
            handle.fail(QueueTimeout("queue timeout"))

    def _fail_all(self, failure: BackendFailure) -> None:
        for handle in self.scheduler.take_waiting():
            handle.fail(failure)
        self._fail_running(failure)

    def _persist(self, seq: Sequence) -> None:
        """A prompt asked to be kept for 24 hours: its KV is written to disk as it ends."""
        cache = self.prompt_cache
        if cache is None or seq.index != 0 or seq.handle.request.cache_retention != "24h" or seq.prompt.media:
            return
        cells = seq.tokens[: seq.num_computed]
        scope = seq.handle.request.cache_scope
        # One file per prompt: the next request with this prompt (another answer) adds none.
        if len(cells) >= cache.min_tokens and not cache.on_disk(cells[: seq.prompt_len], scope):
            cache.write(cells, self.context.save_sequence(seq.slot_id), scope)

    def _fail_running(self, failure: BackendFailure) -> None:
        handles = {s.handle for s in self.scheduler.running}
        for seq in list(self.scheduler.running):
            seq.finish()
            self.scheduler.release(seq)
        for handle in handles:
            handle.fail(failure)


def _constraint(seq: Sequence) -> Constraint:
    assert seq.constraint is not None
    return seq.constraint
