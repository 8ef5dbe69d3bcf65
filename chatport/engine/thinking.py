"""A reasoning model's think block, seen from one sequence: the tokens forced to open it
(when the prompt did not), the tokens spent inside it, and the end tag forced once the
budget is spent. The block's end is found in the output text, however the model's
tokenizer splits the tag."""

from __future__ import annotations

from collections import deque

from chatport.protocol.backend import Thinking


class ThinkTracker:
    def __init__(self, spec: Thinking) -> None:
        self._spec = spec
        self.forced: deque[int] = deque(spec.open_tokens)
        self.tokens = 0  # output tokens up to and including the one that ended the block
        self.closed = False
        self._closing = False  # the close tokens are queued
        self._tail = ""  # output tail that may hold the start of the end tag

    @property
    def thinking(self) -> bool:
        return not self.closed

    def next_forced(self) -> int | None:
        """The token the next step must pick, if one is forced."""
        return self.forced[0] if self.forced else None

    def took(self, token: int) -> None:
        """A token was appended (before its text is known)."""
        if self.forced and self.forced[0] == token:
            self.forced.popleft()

    def feed(self, text: str) -> str | None:
        """One accepted token's text. When it ends the block, returns the text the token
        carried past the end tag (usually ""); else None."""
        if self.closed:
            return None
        self.tokens += 1
        self._tail += text
        end = self._spec.end
        at = self._tail.find(end)
        if at >= 0:
            self.closed = True
            self.forced.clear()  # what is left of a forced close the model wrote itself
            return self._tail[at + len(end) :]
        self._tail = self._tail[-(len(end) - 1) :] if len(end) > 1 else ""
        budget = self._spec.budget
        if budget is not None and self.tokens >= budget and not self._closing and not self.forced:
            self._closing = True
            self.forced.extend(self._spec.close_tokens)
        return None
