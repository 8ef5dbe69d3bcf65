"""One choice's visible text: token bytes in, whole characters out, stop sequences held
back and cut, and each token's logprob released together with the text it produced."""

from __future__ import annotations

from collections import deque

from chatport.engine.text import StopMatcher, Utf8Assembler
from chatport.protocol.backend import ChoiceDelta, TokenLogprob


class OutputText:
    def __init__(self, stops: tuple[str, ...], *, logprobs: bool) -> None:
        self._utf8 = Utf8Assembler()
        self._stop = StopMatcher(stops)
        self._want_logprobs = logprobs
        self._produced = 0  # characters decoded so far, released or held back
        self._released = 0
        # (character offset where the token's text starts, its logprob)
        self._pending: deque[tuple[int, TokenLogprob]] = deque()

    def add(self, piece: bytes, logprob: TokenLogprob | None, delta: ChoiceDelta) -> tuple[str, bool]:
        """Feed one token's bytes; what may be shown now goes into ``delta``. Returns the
        characters this token completed (held back or not) and whether a stop sequence
        was hit (the choice then ends, without the stop sequence)."""
        text = self._utf8.feed(piece)
        if logprob is not None and self._want_logprobs:
            self._pending.append((self._produced, logprob))
        self._produced += len(text)
        released, hit_stop = self._stop.feed(text)
        self._release(delta, released)
        return text, hit_stop

    def close(self, delta: ChoiceDelta, *, flush: bool) -> None:
        """The choice ended. ``flush``: release what was held back (a partial character,
        a partial stop sequence) and the remaining logprobs; after a stop sequence, drop them."""
        if flush:
            tail, hit_stop = self._stop.feed(self._utf8.flush())
            if hit_stop:
                flush = False
            else:
                tail += self._stop.flush()
            self._release(delta, tail)
        if flush and self._want_logprobs:
            delta.logprobs = (delta.logprobs or []) + [lp for _, lp in self._pending]
        self._pending.clear()

    def _release(self, delta: ChoiceDelta, text: str) -> None:
        delta.text += text
        self._released += len(text)
        if self._want_logprobs:
            out = delta.logprobs if delta.logprobs is not None else []
            while self._pending and self._pending[0][0] < self._released:
                out.append(self._pending.popleft()[1])
            delta.logprobs = out
