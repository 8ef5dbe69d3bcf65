"""One choice of one request, living in one KV slot: its tokens, how many of them the KV
cache holds, its sampler and grammar state, and its output text."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Protocol

from chatport.engine.constraint import Constraint, TriggerWatch
from chatport.engine.output import OutputText
from chatport.engine.prediction import Predictor
from chatport.engine.sampler import SamplerState
from chatport.engine.speculation import ContextDrafter
from chatport.engine.thinking import ThinkTracker
from chatport.protocol.backend import ChoiceDelta, FinishReason, TokenLogprob

if TYPE_CHECKING:
    from chatport.engine.handle import RequestHandle


class TokenTable(Protocol):
    """The vocabulary as a sequence needs it."""

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """The token's bytes; control tokens are empty unless ``special``."""
        ...

    def is_eog(self, token: int) -> bool: ...

    def tokenize_text(self, text: str) -> list[int]:
        """Plain text to tokens (no control tokens matched)."""
        ...


class Phase(Enum):
    PREFILL = "prefill"
    AWAIT_FORK = "await_fork"  # choices 1..n-1: copy choice 0's prompt KV once it is computed
    DECODE = "decode"
    FINISHED = "finished"


class Sequence:
    def __init__(self, handle: RequestHandle, index: int, slot_id: int, vocab: TokenTable, context_length: int) -> None:
        request = handle.request
        self.handle = handle
        self.index = index
        self.slot_id = slot_id
        self.prompt = request.prompt
        self.prompt_len = len(request.prompt)
        self.tokens = list(request.prompt.cells)  # media chunks hold MEDIA_CELL
        self.num_computed = 0  # leading cells whose KV is in the slot
        self.phase = Phase.PREFILL if index == 0 else Phase.AWAIT_FORK
        self.sampler = SamplerState.create(request.params, index)
        self.think = ThinkTracker(request.thinking) if request.thinking is not None else None
        # A grammar shapes the answer: after the think block, when there is one.
        self.constraint = _clone(request.grammar) if self.think is None else None
        self.draft: list[int] = []  # proposed next tokens, verified by the next step
        self._vocab = vocab
        self._context_length = context_length
        self._max_tokens = request.max_tokens
        self._visible = request.visible_control_tokens
        self._watch = TriggerWatch(request.lazy_grammars) if request.lazy_grammars else None
        self._output = OutputText(request.stop, logprobs=request.params.logprobs)
        self._accepted = self.prompt_len  # tokens whose text went to the output
        self.predictor = Predictor(request.prediction) if request.prediction else None
        self.context_drafter: ContextDrafter | None = None  # set by an engine that speculates
        self.draft_source = ""  # where self.draft came from (counted by the engine)

    @property
    def generated(self) -> int:
        """Completion tokens accepted into the output."""
        return self._accepted - self.prompt_len

    @property
    def accepts_drafts(self) -> bool:
        # A trigger is found in text, after sampling: tokens sampled past it in the same
        # step would have escaped the grammar it switches on. Likewise a think block's end
        # and budget: drafts wait for the answer.
        if self.think is not None and self.think.thinking:
            return False
        return self._watch is None or self.constraint is not None

    @property
    def forced_token(self) -> int | None:
        """The token this step must pick (a think block's tags), if any."""
        return self.think.next_forced() if self.think is not None else None

    def position(self, cell: int) -> int:
        return self.prompt.position(cell)

    def can_continue(self) -> bool:
        """Whether another token may follow the last one appended."""
        last = self.tokens[-1]
        if len(self.tokens) > self.prompt_len and self._vocab.is_eog(last):
            return False
        if self.constraint is not None and self.constraint.finished:
            return False
        if self._max_tokens is not None and len(self.tokens) - self.prompt_len >= self._max_tokens:
            return False
        return len(self.tokens) < self._context_length

    # --- state ----------------------------------------------------------------------------

    def append(self, token: int) -> None:
        """Take a sampled token into the sequence's state (tokens, penalties, grammar)."""
        self.tokens.append(token)
        self.sampler.record(token)
        if self.think is not None:
            self.think.took(token)
        if self.constraint is not None and not self._vocab.is_eog(token):
            self.constraint.advance(token)

    def rollback(self, n_tokens: int) -> None:
        """Forget every token from index ``n_tokens`` on, with its penalty counts and
        grammar progress. Text already accepted into the output cannot be taken back.
        The caller drops the KV cells past ``num_computed``."""
        if n_tokens < self._accepted:
            raise ValueError(f"cannot roll back to {n_tokens}: {self._accepted} tokens are already output")
        removed = self.tokens[n_tokens:]
        for token in removed:
            self.sampler.forget(token)
        if self.constraint is not None:
            self.constraint.rollback(sum(1 for t in removed if not self._vocab.is_eog(t)))
        del self.tokens[n_tokens:]
        self.num_computed = min(self.num_computed, n_tokens)

    # --- output ---------------------------------------------------------------------------

    def accept(self, token: int, logprob: TokenLogprob | None) -> ChoiceDelta | None:
        """Turn an appended token into output; returns what becomes visible now (with
        ``finish_reason`` set when this token ends the choice), if anything."""
        self._accepted += 1
        delta = ChoiceDelta(self.index)
        if self._vocab.is_eog(token):
            return self._finish(delta, "stop", flush=True)
        piece = self._vocab.piece(token, special=token in self._visible)
        text, hit_stop = self._output.add(piece, logprob, delta)
        if self.think is not None and self.think.thinking:
            after = self.think.feed(text)
            if after is not None:
                self._answer_begins(after)
        elif self._watch is not None and self.constraint is None and text:
            self._watch_for_trigger(text)
        if hit_stop:
            return self._finish(delta, "stop", flush=False)
        if self.constraint is not None and self.constraint.finished:
            return self._finish(delta, "stop", flush=True)
        if (self._max_tokens is not None and self.generated >= self._max_tokens) or self._accepted >= self._context_length:
            return self._finish(delta, "length", flush=True)
        return delta if (delta.text or delta.logprobs) else None

    def _answer_begins(self, after: str) -> None:
        """The think block ended; ``after`` is text the same token wrote past its end."""
        grammar = self.handle.request.grammar
        if grammar is not None:
            self.constraint = self._started(grammar, after)
        elif self._watch is not None and after:
            self._watch_for_trigger(after)

    def _started(self, grammar: object, after: str) -> Constraint:
        """A grammar switched on mid-output: text already written past its start is taken
        into it before it picks the next token."""
        constraint = _clone(grammar)
        assert constraint is not None
        for token in self._vocab.tokenize_text(after) if after else ():
            constraint.advance(token)
        return constraint

    def _watch_for_trigger(self, text: str) -> None:
        assert self._watch is not None
        hit = self._watch.feed(text)
        if hit is None:
            return
        lazy, after = hit
        self.constraint = self._started(lazy.grammar, after)

    def _finish(self, delta: ChoiceDelta, reason: FinishReason, *, flush: bool) -> ChoiceDelta:
        self._output.close(delta, flush=flush)
        self.finish()
        delta.finish_reason = reason
        delta.completion_tokens = self.generated
        if self.think is not None:
            delta.reasoning_tokens = self.think.tokens
        if self.predictor is not None:
            delta.accepted_prediction_tokens = self.predictor.matched
            delta.rejected_prediction_tokens = self.predictor.rejected
        return delta

    def finish(self) -> None:
        """End the sequence (its last delta carries the reason, when it has one)."""
        self.phase = Phase.FINISHED


def _clone(grammar: object) -> Constraint | None:
    if grammar is None:
        return None
    if not isinstance(grammar, Constraint):
        raise TypeError(f"this engine decodes under its own compiled grammars, not {type(grammar).__name__}")
    return grammar.clone()
