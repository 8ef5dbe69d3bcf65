"""Speculation on every request: drafts from the request's own context and its project's
earlier answers, where they pay.

Most output repeats its context: a code edit returns most of the file, a RAG answer quotes
its sources, an agent's call repeats names and values from the tool results, a JSON answer
repeats keys. ``ContextDrafter`` looks the sequence's last tokens up in everything it holds
(the prompt and its own output so far) and proposes what followed their latest occurrence
that agrees longest; with the project's earlier answers (engine/history.py), it weighs what
they offer against that. The engine verifies drafts like any other, so the answer is exactly
what sampling one token per step gives, only sooner when drafts are accepted.

A draft is not free: on a CPU each row it adds lengthens the step (compute-bound small
models: a row costs nearly as much as a step; memory-bound larger ones: a fraction of it).
``StepCost`` measures decode steps by their rows on the running machine, and
``draft_length`` weighs the rows a draft adds against the tokens it is expected to gain at
the sequence's own acceptance rate; a draft that would cost more than it saves is not made.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence as Tokens
from dataclasses import dataclass

# A sequence's tokens -> a continuation from earlier answers of its project and the tokens
# that match agrees over (engine/history.py), or nothing.
History = Callable[[list[int]], tuple[list[int], int]]
SOURCES = ("context", "history")

# A draft starts where the last KEY tokens occurred before; a longer agreement before that
# ranks the candidates (looked at up to AGREE tokens back, among the CANDIDATES latest).
KEY = 3
AGREE = 32
# Agreement classes, by the tokens a match agrees over before its key: 0-3, 4-15, 16+.
AGREEMENT = (4, 16)
CANDIDATES = 8
MAX_DRAFT = 63  # with the last token, the 64 rows of SPECULATION_ROWS
# Acceptance starts as if one draft token of two had been taken; a sequence's own record
# takes over after a few drafts.
_PRIOR_TAKEN = 1.0
_PRIOR_FAILED = 1.0
_DECAY = 0.9  # per draft: the last ~10 drafts speak for a sequence's acceptance
# A draft must promise this much more output per second than the step without it: a
# margin for the estimate's own error (a draft that only breaks even is noise at best).
_GAIN = 1.05
# Drafted steps are judged against plain ones once they have given this many tokens
# (decayed); drafts that lost wait _BACKOFF_FIRST steps, doubling up to _BACKOFF_MAX.
_JUDGED_AFTER = 8.0
_BACKOFF_FIRST = 16
_BACKOFF_MAX = 512


class StepCost:
    """Seconds a decode step takes by its rows, measured: one running mean per row count
    (recent steps weigh most), a straight line through the two nearest measured counts
    between them, and beyond the measured ones the slope of a line fitted to them all.
    Before two row counts are measured, a row is assumed to cost PRIOR_ROW of a one-row
    step: enough to try drafts, which then measure what they cost."""

    PRIOR_ROW = 0.25
    _WEIGHT = 0.1  # of each new step in its row count's mean

    def __init__(self) -> None:
        self._mean: dict[int, float] = {}

    def record(self, rows: int, seconds: float) -> None:
        if rows <= 0 or seconds <= 0:
            return
        old = self._mean.get(rows)
        self._mean[rows] = seconds if old is None else old + self._WEIGHT * (seconds - old)

    def estimate(self, rows: int) -> float:
        """Seconds for a decode step of ``rows`` rows (relative units before any step)."""
        if rows in self._mean:
            return self._mean[rows]
        known = sorted(self._mean)
        if not known:
            return 1.0 + self.PRIOR_ROW * (rows - 1)
        below = [r for r in known if r < rows]
        above = [r for r in known if r > rows]
        if below and above:
            lo, hi = below[-1], above[0]
            return self._mean[lo] + (self._mean[hi] - self._mean[lo]) * (rows - lo) / (hi - lo)
        slope = self._slope(known)
        edge = below[-1] if below else above[0]
        return max(self._mean[edge] + slope * (rows - edge), 1e-9)

    def _slope(self, known: list[int]) -> float:
        if len(known) < 2:
            return self.PRIOR_ROW * self._mean[known[0]] / known[0]
        n = len(known)
        mx = sum(known) / n
        my = sum(self._mean[r] for r in known) / n
        var = sum((r - mx) ** 2 for r in known)
        return max(sum((r - mx) * (self._mean[r] - my) for r in known) / var, 0.0)


def expected_tokens(rate: float, length: int) -> float:
    """Draft tokens expected to be accepted of a draft of ``length``, each taken with
    probability ``rate`` once the ones before it were."""
    return sum(rate**i for i in range(1, length + 1))


@dataclass
class StepLoad:
    """The rows of the next step so far (its decoding sequences' and the drafts already
    given to some of them) and the tokens they are expected to give: each further draft is
    weighed against the step as it already is, not as if it were the only one."""

    rows: int
    tokens: float

    def add(self, length: int, rate: float) -> None:
        self.rows += length
        self.tokens += expected_tokens(rate, length)


def draft_length(cost: StepCost, step: StepLoad | int, rate: float, available: int, mask_seconds: float = 0.0) -> int:
    """How many of ``available`` draft tokens to verify in a step of ``step``'s other rows
    (a number: one token each), at acceptance ``rate``: the length that gives the most
    tokens per second, if that beats the step without this draft by the margin; 0
    otherwise. ``mask_seconds``: what each draft row adds besides its row in the step (a
    grammar's mask, computed row after row)."""
    rows, tokens = (step, float(step)) if isinstance(step, int) else (step.rows, step.tokens)
    base = tokens / cost.estimate(rows)
    best, best_speed = 0, base * _GAIN
    for length in range(1, min(available, MAX_DRAFT) + 1):
        seconds = cost.estimate(rows + length) + mask_seconds * expected_tokens(rate, length)
        speed = (tokens + expected_tokens(rate, length)) / seconds
        if speed > best_speed:
            best, best_speed = length, speed
    return best


class ContextDrafter:
    """Drafts for one sequence from its own tokens (prompt and output) and, given
    ``history``, from earlier answers of its project, with its acceptance rate. ``tokens``
    is the sequence's list, read as it grows. Of the two matches, the one whose kind
    (source and agreement class) promises more accepted tokens by its record is drafted.

    The rate is learnt whether or not drafts are made: each lookup's continuation is
    checked against the tokens the sequence goes on to take, so a sequence that does not
    draft (its rows would cost too much at the rate assumed) still learns when its
    context starts to repeat, and drafting starts then. It is learnt apart for matches
    that agree over few, some or many tokens before the key (AGREEMENT): a RAG answer's
    three-token match on a common phrase is a guess, a code edit's match that agrees over
    a whole line is nearly sure, and each is drafted at the length its own record pays for."""

    def __init__(self, tokens: list[int], history: History | None = None) -> None:
        self._tokens = tokens
        self._history = history
        self._index: dict[tuple[int, ...], list[int]] = {}  # key -> positions just after it
        self._indexed = KEY - 1  # positions below this have their key in the index
        # By source and agreement class: what each kind of match has given.
        self._taken = {(s, c): _PRIOR_TAKEN for s in SOURCES for c in range(len(AGREEMENT) + 1)}
        self._failed = dict.fromkeys(self._taken, _PRIOR_FAILED)
        self._pending: list[int] = []  # the last continuation looked up, being checked
        self._pending_at = 0  # where it would start in the tokens
        self._class: tuple[str, int] = ("context", 0)  # the source and agreement class of its match
        # What steps gave this sequence, with drafts [1] and without [0]: tokens and seconds
        # (decayed), and how many steps drafts wait after they proved slower than none.
        self._tokens_by = [0.0, 0.0]
        self._seconds_by = [0.0, 0.0]
        self._pause = 0
        self._backoff = _BACKOFF_FIRST

    @property
    def rate(self) -> float:
        """The chance that a token of the current candidate is taken, given the ones
        before it were (as learnt for matches of its agreement class)."""
        return self._rate(self._class)

    @property
    def source(self) -> str:
        """Where the current candidate comes from: "context" (the request's own tokens) or
        "history" (an earlier answer of the same project)."""
        return self._class[0]

    def _rate(self, kind: tuple[str, int]) -> float:
        return self._taken[kind] / (self._taken[kind] + self._failed[kind])

    @property
    def paused(self) -> bool:
        """Drafts wait: they gave this sequence fewer tokens a second than plain steps."""
        return self._pause > 0

    def stepped(self, drafted: bool, tokens: int, seconds: float) -> None:
        """A step gave the sequence ``tokens`` in ``seconds`` (with a draft or without).
        Once drafted steps have proved slower than plain ones, drafts wait a number of
        steps that doubles each time it happens again (the estimate of costs and rates
        was wrong for this sequence: a grammar's masks per row, a machine busier than
        measured), and halves each time drafts pay."""
        if self._pause:
            self._pause -= 1
        i = int(drafted)
        self._tokens_by[i] = self._tokens_by[i] * _DECAY + tokens
        self._seconds_by[i] = self._seconds_by[i] * _DECAY + seconds
        if not drafted or self._seconds_by[0] <= 0 or self._tokens_by[1] < _JUDGED_AFTER:
            return
        if self._tokens_by[1] / self._seconds_by[1] < self._tokens_by[0] / self._seconds_by[0]:
            self._pause, self._backoff = self._backoff, min(self._backoff * 2, _BACKOFF_MAX)
            self._tokens_by[1] = self._seconds_by[1] = 0.0  # judged afresh after the pause
        else:
            self._backoff = max(self._backoff // 2, _BACKOFF_FIRST)

    def candidate(self) -> list[int]:
        """The tokens that followed the best earlier occurrence of the last tokens, up to
        MAX_DRAFT (empty when they never occurred before)."""
        end = len(self._tokens)
        if self._pending_at > end:  # a rollback took tokens back
            self._pending = []
        if self._pending:
            got = self._tokens[self._pending_at : end]
            ok = _common_prefix(got, self._pending)
            if ok == len(got) and ok < len(self._pending):
                return self._pending[ok:]  # still on the same occurrence: its next tokens
            c = self._class
            self._taken[c] = self._taken[c] * _DECAY + ok
            self._failed[c] = self._failed[c] * _DECAY + (0 if ok == len(self._pending) else 1)
        self._pending, self._pending_at = self._lookup(), end
        return self._pending

    def _lookup(self) -> list[int]:
        tokens = self._tokens
        end = len(tokens)
        self._indexed = min(self._indexed, max(end, KEY - 1))  # after a rollback
        # Index every position but the last: the current key must find earlier occurrences.
        for at in range(max(self._indexed, KEY), end):
            self._index.setdefault(tuple(tokens[at - KEY : at]), []).append(at)
        self._indexed = max(self._indexed, end)
        if end < KEY:
            return []
        own, own_agree = self._own_match(end)
        past, past_agree = self._history(tokens) if self._history is not None else ([], 0)
        own_kind, past_kind = ("context", _agreement_class(own_agree)), ("history", _agreement_class(past_agree))
        # The match that promises more accepted tokens by its own kind's record; the
        # request's own context on a tie (it is what the answer is about).
        if past and (
            not own or expected_tokens(self._rate(past_kind), len(past)) > expected_tokens(self._rate(own_kind), len(own))
        ):
            self._class = past_kind
            return past
        self._class = own_kind
        return own

    def _own_match(self, end: int) -> tuple[list[int], int]:
        tokens = self._tokens
        found = self._index.get(tuple(tokens[end - KEY :]))
        if not found:
            return [], 0
        best, best_agree = -1, -1
        for at in reversed(found[-CANDIDATES:]):
            if at >= end:
                continue  # indexed before a rollback shortened the tokens
            agree = agreement(tokens, at, tokens, end)
            if agree > best_agree:
                best, best_agree = at, agree
        if best < 0:
            return [], 0
        return list(tokens[best : min(best + MAX_DRAFT, end)]), best_agree


def _agreement_class(agree: int) -> int:
    return sum(1 for edge in AGREEMENT if agree >= edge)


def _common_prefix(a: Tokens[int], b: Tokens[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def agreement(a: Tokens[int], at: int, b: Tokens[int], end: int) -> int:
    """How many tokens of ``a`` before ``at`` equal those of ``b`` before ``end`` (up to AGREE)."""
    n = 0
    while n < AGREE and n < min(at, end) and a[at - n - 1] == b[end - n - 1]:
        n += 1
    return n
