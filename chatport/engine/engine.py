"""The engine: one thread that owns a llama.cpp context and steps every live sequence.

Callers submit from the event loop and read outputs from their handle; all llama.cpp
state is touched from the engine thread only, so no lock guards it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass

from chatport.engine.constraint import Constraint, step_masks
from chatport.engine.llama import LlamaContext, LlamaModel
from chatport.engine.sampler import TokenChoice, sample
from chatport.engine.scheduler import Scheduler
from chatport.engine.sequence import (
    ChoiceDelta,
    EngineFailure,
    GenerationRequest,
    Phase,
    QueueFull,
    QueueTimeout,
    RequestHandle,
    Sequence,
    TokenLogprob,
)
from chatport.engine.text import token_display

log = logging.getLogger("chatport.engine")

__all__ = ["Engine", "EngineConfig", "QueueFull", "QueueTimeout"]


@dataclass(frozen=True)
class EngineConfig:
    ctx_size: int = 4096  # KV cells per sequence slot
    max_seqs: int = 16
    batch_tokens: int = 512  # tokens per decode step (decode tokens + prefill chunks)
    max_waiting: int = 256
    queue_timeout: float = 60.0  # seconds a request may wait for a slot
    threads: int = 0  # 0: every core

    def resolved_threads(self) -> int:
        return self.threads or os.cpu_count() or 1


@dataclass
class StepStats:
    steps: int = 0
    decode_seconds: float = 0.0
    total_seconds: float = 0.0
    tokens: int = 0


class Engine:
    def __init__(self, model: LlamaModel, config: EngineConfig) -> None:
        self.model = model
        self.config = config
        ctx_size = min(config.ctx_size, model.n_ctx_train) if model.n_ctx_train > 0 else config.ctx_size
        self.context: LlamaContext = model.new_context(
            n_ctx_per_seq=ctx_size,
            n_seq_max=config.max_seqs,
            n_batch=config.batch_tokens,
            n_threads=config.resolved_threads(),
        )
        self.ctx_limit = self.context.n_ctx_per_seq
        self.scheduler = Scheduler(n_slots=config.max_seqs, max_waiting=config.max_waiting)
        self.stats = StepStats()
        self._inbox: queue.SimpleQueue[RequestHandle] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = False
        self._eog = model.eog_mask
        self._thread = threading.Thread(target=self._run, name="chatport-engine", daemon=True)
        self._thread.start()

    # --- caller side (event loop) ----------------------------------------------------

    def submit(self, request: GenerationRequest) -> RequestHandle:
        if request.n > self.config.max_seqs:
            raise ValueError(f"n={request.n} exceeds the {self.config.max_seqs} sequence slots")
        if self.scheduler.n_waiting >= self.config.max_waiting:
            raise QueueFull("queue full")
        handle = RequestHandle(request, asyncio.get_running_loop())
        handle._on_cancel.append(lambda _h: self._wake.set())
        self._inbox.put(handle)
        self._wake.set()
        return handle

    def shutdown(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)
        self.context.close()

    # --- engine thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._take_inbox()
            self.scheduler.drop_cancelled()
            for handle in self.scheduler.expire_waiting(self.config.queue_timeout, time.monotonic()):
                handle.deliver(QueueTimeout("queue timeout"))
            if not self.scheduler.has_work():
                self._wake.wait()
                self._wake.clear()
                continue
            try:
                self._step()
            except Exception as exc:  # the failure is the live requests', not the server's
                log.exception("engine step failed")
                self._fail_running(EngineFailure(str(exc)))

    def _take_inbox(self) -> None:
        while True:
            try:
                handle = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                self.scheduler.enqueue(handle)
            except QueueFull as failure:
                handle.deliver(failure)

    def _is_eog(self, token: int) -> bool:
        return bool(self._eog[token])

    def _step(self) -> None:
        started = time.perf_counter()
        for admission in self.scheduler.admit(self._is_eog, self._lazy_constraint):
            slot = admission.leader.slot
            if admission.copy_from is not None:
                self.context.copy_sequence(admission.copy_from, slot)
            self.context.forget(slot, admission.reuse)
            admission.leader.handle.mark_admitted()
        batch = self.context.batch
        batch.clear()
        planned = self.scheduler.plan(batch.capacity)
        if not planned:
            return
        for item in planned:
            seq = item.seq
            batch.add(seq.next_chunk(item.count), seq.computed, seq.slot, item.row is not None)
        decode_started = time.perf_counter()
        logits = self.context.decode()
        self.stats.decode_seconds += time.perf_counter() - decode_started

        to_sample: list[Sequence] = []
        rows: list[int] = []
        for item in planned:
            seq = item.seq
            seq.computed += item.count
            if item.row is None:
                continue
            if seq.phase is Phase.PREFILL:
                seq.phase = Phase.DECODE
                for follower in self.scheduler.followers_of(seq):
                    self.context.copy_sequence(seq.slot, follower.slot)
                    follower.computed = seq.computed
                    follower.phase = Phase.DECODE
                    to_sample.append(follower)
                    rows.append(item.row)
            to_sample.append(seq)
            rows.append(item.row)

        constrained = [s for s in to_sample if s.constraint is not None]
        if constrained:
            masks = step_masks([s.constraint for s in constrained], self.model.n_vocab)
            for seq, mask in zip(constrained, masks):
                seq.sampler.allowed = mask
        choices = sample(logits, [s.sampler for s in to_sample], rows) if to_sample else []
        outputs: dict[int, tuple[RequestHandle, list[ChoiceDelta]]] = {}
        for seq, choice in zip(to_sample, choices):
            delta = seq.accept(
                choice.token, self.model.token_bytes[choice.token], self._logprob(choice), self.ctx_limit
            )
            if seq.phase is Phase.FINISHED:
                self.scheduler.finish(seq)
            if delta is not None:
                outputs.setdefault(seq.handle.id, (seq.handle, []))[1].append(delta)
        RequestHandle.deliver_step(list(outputs.values()))
        self.stats.steps += 1
        self.stats.tokens += len(to_sample)
        self.stats.total_seconds += time.perf_counter() - started

    def _lazy_constraint(self, compiled: Constraint, already_written: str) -> Constraint:
        constraint = compiled.clone()
        # Text the triggering token carried past the trigger is already output: the
        # grammar has to account for it before it picks the next token.
        for token in self.model.tokenize(already_written, parse_special=False) if already_written else ():
            constraint.advance(token)
        return constraint

    def _logprob(self, choice: TokenChoice) -> TokenLogprob | None:
        if choice.logprob is None:
            return None
        table = self.model.token_bytes

        def entry(token: int, logprob: float, top: list[TokenLogprob]) -> TokenLogprob:
            data = table[token]
            return TokenLogprob(token_display(data), list(data), logprob, top)

        top = [entry(t, lp, []) for t, lp in (choice.top or [])]
        return entry(choice.token, choice.logprob, top)

    def _fail_running(self, failure: EngineFailure) -> None:
        handles = {s.handle.id: s.handle for s in self.scheduler.running}
        for seq in list(self.scheduler.running):
            self.scheduler.finish(seq)
        for handle in handles.values():
            handle.deliver(failure)
