"""Predicted outputs: drafts from the answer the client expects (``prediction``).

The prediction may match anywhere in the answer (an edited file keeps most of its lines,
in order, with changes between them). A pointer follows the prediction while the answer
agrees with it. After a disagreement the pointer re-aligns on the answer's last tokens:
first just past where the answer last agreed (a word replaced by another: the next token
or two are found a few positions on), then by an n-gram lookup, nearest after that point
first (an edited file repeats lines, and the answer goes through it in order). Drafts are
the next tokens at the pointer, verified by the engine like any draft: the answer is
exactly what it would be without the prediction, only sooner.

Draft length adapts: it doubles while drafts are accepted whole and falls back to its
floor otherwise. The floor is high because on a CPU a step's cost grows with every row it
verifies: measured for Qwen2.5-0.5B on 2 cores, one row 19 ms, 2 rows 37, 5 rows 71,
9 rows 111, 17 rows 158 (docs/benchmarks.md). A 1-token draft saves nothing even when
accepted; only drafts of several tokens, accepted whole, pay for their rows.
"""

from __future__ import annotations

from collections import deque

_NGRAMS = (4, 3)  # longest first; a 2-gram ("of the") re-aligns on chance as often as not
# How far past the last agreeing position a replaced word's next tokens are looked for:
# one edited word or identifier is a few tokens; a short window keeps chance hits rare.
_NEARBY = 8
MIN_DRAFT = 4
MAX_DRAFT = 16
FIRST_DRAFT = 8


class Predictor:
    def __init__(self, prediction: tuple[int, ...]) -> None:
        self.tokens = prediction
        self.pointer: int | None = 0  # where the next answer token is expected; None: lost
        self.matched = 0  # answer tokens that agreed with the prediction at the pointer
        self.length = FIRST_DRAFT
        self._anchor = 0  # just past the last prediction token the answer agreed with
        self._recent: deque[int] = deque(maxlen=max(_NGRAMS))
        self._last_draft: list[int] = []
        self._index = self._ngram_index(prediction)

    @staticmethod
    def _ngram_index(tokens: tuple[int, ...]) -> dict[tuple[int, ...], list[int]]:
        """Each n-gram of the prediction -> the positions just after its occurrences, in order."""
        index: dict[tuple[int, ...], list[int]] = {}
        for n in _NGRAMS:
            for end in range(n, len(tokens) + 1):
                index.setdefault(tokens[end - n : end], []).append(end)
        return index

    @property
    def rejected(self) -> int:
        """Prediction tokens that did not appear in the answer (OpenAI bills them)."""
        return max(len(self.tokens) - self.matched, 0)

    def advance(self, new_tokens: list[int]) -> None:
        """Take the tokens the answer gained in a step."""
        if self._last_draft:
            ok = 0
            while ok < min(len(new_tokens), len(self._last_draft)) and new_tokens[ok] == self._last_draft[ok]:
                ok += 1
            whole = ok == len(self._last_draft)
            self.length = min(self.length * 2, MAX_DRAFT) if whole else MIN_DRAFT
            self._last_draft = []
        for token in new_tokens:
            self._recent.append(token)
            at = self.pointer
            if at is not None and at < len(self.tokens) and self.tokens[at] == token:
                self.pointer = self._anchor = at + 1
                self.matched += 1
            else:
                self.pointer = None
        if self.pointer is None:
            self.pointer = self._realign()
            if self.pointer is not None:
                # Back on the prediction, where the answer goes on agreeing for a while more
                # often than not (measured on code edits: pausing drafts after a miss, as an
                # earlier version did, made a rename 6% slower).
                self.length = max(self.length, FIRST_DRAFT)

    def draft(self) -> list[int]:
        if self.pointer is None:
            return []
        self._last_draft = list(self.tokens[self.pointer : self.pointer + self.length])
        return self._last_draft

    def _realign(self) -> int | None:
        recent = tuple(self._recent)
        # A replaced word: its next two tokens, or the one after it, a few positions on.
        for n in (2, 1):
            if len(recent) >= n:
                found = self._find(recent[-n:], self._anchor, self._anchor + _NEARBY + n)
                if found is not None:
                    return found
        for n in _NGRAMS:
            if len(recent) >= n:
                ends = self._index.get(recent[-n:])
                if ends:
                    return next((end for end in ends if end > self._anchor), ends[0])
        return None

    def _find(self, gram: tuple[int, ...], start: int, stop: int) -> int | None:
        """The position just after the first occurrence of ``gram`` in tokens[start:stop]."""
        n = len(gram)
        for end in range(start + n, min(stop, len(self.tokens)) + 1):
            if self.tokens[end - n : end] == gram:
                return end
        return None
