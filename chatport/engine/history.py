"""What the server wrote before, as drafts for what it writes next, kept per project.

Agents re-ask with a grown prompt, an edit is asked again after a tweak, a JSON extraction
repeats the keys of the last one: much of an answer is what an earlier answer of the same
project said. ``AnswerHistory`` keeps the latest answers of each scope (the request's
``cache_scope``: its project) and finds where the last tokens of a running answer occurred
in them; the continuation there is a draft, verified like any other.

Scopes never mix. An accepted draft makes an answer faster, so an index shared across
projects would let one project learn, by timing its own requests, what another's answers
said: a lookup reads only its own scope's answers. Memory is bounded twice: each scope
keeps its latest ``scope_tokens`` tokens of answers (the oldest answers go first), and all
scopes together ``total_tokens`` (the scope used least recently goes first).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Sequence as Tokens

# Matches are keyed and ranked as in the request's own context.
from chatport.engine.speculation import CANDIDATES, KEY, MAX_DRAFT, agreement

_END = -1  # follows each answer: no continuation or agreement runs across it


class _ScopeAnswers:
    """One scope's answers, oldest first, as one list of tokens with _END after each."""

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.base = 0  # the absolute position of tokens[0] (earlier answers were dropped)
        self.lengths: deque[int] = deque()  # each answer's length, its _END included
        self.index: dict[tuple[int, ...], list[int]] = {}  # key -> absolute positions after it

    def add(self, answer: Tokens[int]) -> None:
        start = self.base + len(self.tokens)
        self.tokens.extend(answer)
        self.tokens.append(_END)
        self.lengths.append(len(answer) + 1)
        # A key's position must have a continuation: the last token's is the answer's end.
        for at in range(KEY, len(answer)):
            self.index.setdefault(tuple(answer[at - KEY : at]), []).append(start + at)

    def drop_oldest(self) -> None:
        n = self.lengths.popleft()
        oldest = self.tokens[: n - 1]
        new_base = self.base + n
        for at in range(KEY, len(oldest)):
            key = tuple(oldest[at - KEY : at])
            positions = self.index.get(key)
            if positions is None:
                continue
            del positions[: bisect_left(positions, new_base)]  # appended in order: the oldest lead
            if not positions:
                del self.index[key]
        del self.tokens[:n]
        self.base = new_base

    def lookup(self, tail: Tokens[int]) -> tuple[list[int], int]:
        found = self.index.get(tuple(tail[-KEY:]))
        if not found:
            return [], 0
        best, best_agree = -1, -1
        for at in reversed(found[-CANDIDATES:]):
            agree = agreement(self.tokens, at - self.base, tail, len(tail))
            if agree > best_agree:
                best, best_agree = at - self.base, agree
        return self._continuation(best), best_agree

    def _continuation(self, at: int) -> list[int]:
        out = []
        for token in self.tokens[at : at + MAX_DRAFT]:
            if token == _END:
                break
            out.append(token)
        return out


class AnswerHistory:
    """The latest answers of each scope, bounded in tokens per scope and in all."""

    def __init__(self, scope_tokens: int = 32_768, total_tokens: int = 262_144) -> None:
        self.scope_tokens = scope_tokens
        self.total_tokens = total_tokens
        self._scopes: OrderedDict[str, _ScopeAnswers] = OrderedDict()  # least recently used first
        self._held = 0

    @property
    def tokens_held(self) -> int:
        """Tokens of answers kept (their ends included), across every scope."""
        return self._held

    @property
    def scopes(self) -> int:
        return len(self._scopes)

    def add(self, scope: str, answer: Tokens[int]) -> None:
        """Keep a finished answer of ``scope`` (one longer than the scope's bound keeps its
        start, where the next answer most likely agrees with it)."""
        if len(answer) <= KEY or self.scope_tokens <= KEY + 1:
            return
        answer = answer[: min(self.scope_tokens, self.total_tokens) - 1]
        answers = self._scopes.get(scope)
        if answers is None:
            answers = self._scopes[scope] = _ScopeAnswers()
        self._scopes.move_to_end(scope)
        before = len(answers.tokens)
        answers.add(answer)
        self._held += len(answers.tokens) - before
        while len(answers.tokens) > self.scope_tokens:
            self._drop_oldest(scope, answers)
        while self._held > self.total_tokens:
            lru, oldest = next(iter(self._scopes.items()))
            self._drop_oldest(lru, oldest)

    def lookup(self, scope: str, tail: Tokens[int]) -> tuple[list[int], int]:
        """What followed the latest best-agreeing earlier occurrence, in ``scope``'s answers,
        of the last KEY tokens of ``tail``, and over how many tokens it agrees with ``tail``
        (``agreement``); nothing when they never occurred."""
        answers = self._scopes.get(scope)
        if answers is None or len(tail) < KEY:
            return [], 0
        self._scopes.move_to_end(scope)
        return answers.lookup(tail)

    def _drop_oldest(self, scope: str, answers: _ScopeAnswers) -> None:
        before = len(answers.tokens)
        answers.drop_oldest()
        self._held -= before - len(answers.tokens)
        if not answers.tokens:
            del self._scopes[scope]
