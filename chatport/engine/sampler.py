"""Token selection for a whole decode step at once.

Every row of the step's logits belongs to one sequence with its own parameters and its
own random generator, so a sequence's output depends only on its seed and its logits,
never on what else shares the batch. Work is done per group of rows with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from chatport.protocol.backend import SamplingParams

# A token this far below the row's best (in log-probability) has weight exp(-20) = 2e-9:
# all such tokens together cannot change a draw measurably, so they are left out.
_TINY = np.finfo(np.float32).tiny
_LOG_FLOOR = -20.0


@dataclass
class SamplerState:
    """What one sequence carries from step to step."""

    params: SamplingParams
    rng: np.random.Generator
    counts: dict[int, int] = field(default_factory=dict)
    allowed: npt.NDArray[np.bool_] | None = None  # this step's grammar mask, if the sequence has one
    # Where the grammar may end: the end token that takes the weight of every token the
    # grammar forbids (see ``_fold_outside``).
    end_outside: int | None = None

    @classmethod
    def create(cls, params: SamplingParams, choice_index: int) -> SamplerState:
        if params.seed is None:
            rng = np.random.default_rng()
        else:
            rng = np.random.default_rng([params.seed & 0xFFFFFFFFFFFFFFFF, choice_index])
        return cls(params=params, rng=rng)

    def record(self, token: int) -> None:
        self.counts[token] = self.counts.get(token, 0) + 1

    def forget(self, token: int) -> None:
        """Undo one ``record`` (a rolled-back token no longer counts for penalties)."""
        left = self.counts[token] - 1
        if left:
            self.counts[token] = left
        else:
            del self.counts[token]


@dataclass
class TokenChoice:
    token: int
    logprob: float | None = None
    top: list[tuple[int, float]] | None = None


def sample(logits: np.ndarray, states: Seq[SamplerState], rows: Seq[int] | None = None) -> list[TokenChoice]:
    """Pick one token for each state from its row of ``logits`` (outputs x vocab):
    ``rows[i]`` for state i, or row i when ``rows`` is None."""
    picked = np.arange(len(states)) if rows is None else np.asarray(rows)
    x = np.take(logits, picked, axis=0)  # our own copy: biases and penalties write to it
    _apply_bias_and_penalties(x, states)
    for i, state in enumerate(states):
        if state.allowed is not None:
            if state.end_outside is not None:
                end = state.end_outside
                _fold_outside(x[i], state.allowed, end, sum(v for t, v in state.params.logit_bias if t == end))
            # After the biases: no logit_bias can bring back a token the grammar forbids.
            np.copyto(x[i], -np.inf, where=~state.allowed)

    want_logprobs = [i for i, s in enumerate(states) if s.params.logprobs]
    if want_logprobs:
        sub = x[want_logprobs]
        peak = sub.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(sub - peak).sum(axis=1))

    tokens = np.empty(len(states), dtype=np.int64)
    greedy = [i for i, s in enumerate(states) if s.params.temperature == 0.0]
    if greedy:
        tokens[greedy] = x[greedy].argmax(axis=1)
    stochastic = [i for i, s in enumerate(states) if s.params.temperature != 0.0]
    if stochastic:
        rows_of = x if len(stochastic) == len(states) else x[stochastic]  # no copy when every row samples
        tokens[stochastic] = _sample_stochastic(rows_of, [states[i] for i in stochastic])

    choices = [TokenChoice(int(t)) for t in tokens]
    for j, i in enumerate(want_logprobs if want_logprobs else ()):
        row, norm = x[i], log_norm[j]
        choice = choices[i]
        choice.logprob = float(row[choice.token] - norm)
        k = states[i].params.top_logprobs
        if k > 0:
            top = np.argpartition(-row, k - 1)[:k]
            top = top[np.argsort(-row[top], kind="stable")]
            # Under a grammar, only tokens it allows: fewer than k when fewer are allowed.
            choice.top = [(int(t), float(row[t] - norm)) for t in top if row[t] != -np.inf]
        else:
            choice.top = []
    return choices


def _fold_outside(row: np.ndarray, allowed: np.ndarray, end: int, end_bias: float) -> None:
    """Where a grammar may end, a token it forbids means the model is done with what the
    grammar holds: its weight goes to ending, not to the allowed tokens. Masking alone
    renormalizes it onto them, so a model that had finished a call and wanted to write
    prose was pushed into the next call's first letter (`<`), call after call. Weights
    are the model's at temperature 1; a ``logit_bias`` on the end token applies to the
    whole of ending (-100 still bans it)."""
    peak = row.max()
    leaving = np.exp(row[~allowed] - peak).sum(dtype=np.float64)
    if leaving > 0.0:
        staying = np.exp(float(row[end] - end_bias - peak))
        row[end] = peak + np.log(staying + leaving) + end_bias


def _apply_bias_and_penalties(x: np.ndarray, states: Seq[SamplerState]) -> None:
    for i, state in enumerate(states):
        p = state.params
        if p.logit_bias:
            bias_ids = [token for token, _ in p.logit_bias]
            x[i, bias_ids] += np.asarray([value for _, value in p.logit_bias], dtype=np.float32)
        if state.counts and (p.presence_penalty or p.frequency_penalty):
            ids = np.fromiter(state.counts.keys(), dtype=np.int64, count=len(state.counts))
            counts = np.fromiter(state.counts.values(), dtype=np.float32, count=len(state.counts))
            x[i, ids] -= counts * p.frequency_penalty + p.presence_penalty


def _sample_stochastic(x: np.ndarray, states: Seq[SamplerState]) -> np.ndarray:
    # A temperature too small for float32 (OpenAI takes 1e-300) would divide by zero and
    # leave no token: floored at float32's smallest normal, it keeps the best tokens at
    # weight 1 and sends the rest to -inf, which is the limit such a temperature means.
    temps = np.maximum(np.array([s.params.temperature for s in states], dtype=np.float32), _TINY)[:, None]
    # Work in log space relative to each row's best token, then keep only tokens within
    # _LOG_FLOOR of it: the rest weigh less than float32 can add to a sum of at least 1,
    # so dropping them changes no draw, and exp/cumsum run on a few hundred values per row.
    scaled = x - x.max(axis=1, keepdims=True)
    with np.errstate(over="ignore"):
        scaled /= temps
    flat = np.flatnonzero(scaled > _LOG_FLOOR)  # ~10x faster than a 2-D nonzero
    row_ids, token_ids = np.divmod(flat, x.shape[1])
    weights = np.exp(scaled.ravel()[flat])
    bounds = np.searchsorted(row_ids, np.arange(len(states) + 1))
    draws = np.array([s.rng.random() for s in states])

    out = np.empty(len(states), dtype=np.int64)
    for i, state in enumerate(states):
        lo, hi = bounds[i], bounds[i + 1]
        ids, w = token_ids[lo:hi], weights[lo:hi]
        if state.params.top_p < 1.0:
            order = np.argsort(-w, kind="stable")
            ids, w = ids[order], w[order]
            cdf = np.cumsum(w)
            # Keep the smallest prefix whose mass reaches top_p (always at least one token).
            keep = int(np.searchsorted(cdf, state.params.top_p * cdf[-1] * (1 - 1e-6))) + 1
            ids, cdf = ids[:keep], cdf[:keep]
        else:
            cdf = np.cumsum(w)
        index = int(np.searchsorted(cdf, draws[i] * cdf[-1], side="right"))
        out[i] = ids[min(index, len(ids) - 1)]
    return out
