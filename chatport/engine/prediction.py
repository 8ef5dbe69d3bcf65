"""Predicted outputs: drafts from the answer the client expects (``prediction``).

The prediction may match anywhere in the answer (an edited file keeps most of its lines,
in order, with changes between them). A pointer follows the prediction while the answer
agrees with it; after a disagreement the last few generated tokens are looked up in the
prediction (an n-gram index) and the pointer re-aligns after them. Drafts are the next
tokens at the pointer, verified by the engine like any draft: the answer is exactly what
it would be without the prediction, only sooner.

Draft length adapts: it doubles while drafts are accepted whole and shrinks to what was
accepted otherwise, so a prediction that has stopped matching costs little.
"""

from __future__ import annotations

from collections import deque

_NGRAMS = (4, 3)  # longest first; a 2-gram ("of the") re-aligns on chance as often as not
MIN_DRAFT = 2
MAX_DRAFT = 8
FIRST_DRAFT = 4
# After a draft rejected whole, this many steps go by without drafting: each rejected row
# costs as much as a useful one, and an answer that has left the prediction rarely comes
# straight back.
COOLDOWN_STEPS = 4


class Predictor:
    def __init__(self, prediction: tuple[int, ...]) -> None:
        self.tokens = prediction
        self.pointer: int | None = 0  # where the next answer token is expected; None: lost
        self.matched = 0  # answer tokens that agreed with the prediction at the pointer
        self.length = FIRST_DRAFT
        self._cooldown = 0
        self._recent: deque[int] = deque(maxlen=max(_NGRAMS))
        self._last_draft: list[int] = []
        self._index = self._ngram_index(prediction)

    @staticmethod
    def _ngram_index(tokens: tuple[int, ...]) -> dict[tuple[int, ...], list[int]]:
        """Each n-gram of the prediction -> the positions just after its occurrences."""
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
            self.length = min(self.length * 2, MAX_DRAFT) if whole else max(ok + 1, MIN_DRAFT)
            if ok == 0:
                self._cooldown = COOLDOWN_STEPS
            self._last_draft = []
        elif self._cooldown:
            self._cooldown -= 1
        for token in new_tokens:
            self._recent.append(token)
            at = self.pointer
            if at is not None and at < len(self.tokens) and self.tokens[at] == token:
                self.pointer = at + 1
                self.matched += 1
            else:
                self.pointer = None
        if self.pointer is None:
            self.pointer = self._realign()

    def draft(self) -> list[int]:
        if self.pointer is None or self._cooldown:
            return []
        self._last_draft = list(self.tokens[self.pointer : self.pointer + self.length])
        return self._last_draft

    def _realign(self) -> int | None:
        recent = tuple(self._recent)
        for n in _NGRAMS:
            if len(recent) >= n:
                ends = self._index.get(recent[-n:])
                if ends:
                    return ends[0]
        return None
