"""What each choice has produced so far, as the client sees it: reasoning (a thinking
model's think block, apart from the content), content, tool calls (begun as soon as their
name is written, their arguments growing as they are generated), logprobs of content
tokens, and finish reasons; step by step and as the final message."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chatport.protocol import responses as rs
from chatport.protocol.backend import ChoiceDelta, TokenLogprob
from chatport.service.reasoning import ReasoningSplitter
from chatport.service.search.citations import CitationWriter
from chatport.service.search.sources import Source
from chatport.service.tools.format import CallBlock
from chatport.service.tools.parser import CallArguments, CallParser, CallStart, Content, Event
from chatport.service.tools.plan import ToolPlan


@dataclass
class ChoiceUpdate:
    """What one backend delta means for one choice: in order, reasoning and content pieces,
    the stream deltas of calls and, last, the answer's citations (``("reasoning", text)``,
    ``("content", text)``, ``("call", delta)`` or ``("annotations", list)``)."""

    index: int
    pieces: list[tuple[str, Any]] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None


class _Choice:
    def __init__(
        self, logprobs: bool, parser: CallParser | None, splitter: ReasoningSplitter | None, citer: CitationWriter | None
    ) -> None:
        self.citer = citer
        self.text = ""
        self.reasoning = ""
        self.splitter = splitter
        self.content_fed = 0  # characters of content (output past the think block) seen
        self.calls: list[dict[str, Any]] = []
        self.logprobs: list[TokenLogprob] | None = [] if logprobs else None
        self.finish: str | None = None
        self.parser = parser
        self.fed = 0  # characters of output seen
        # (start, end, logprobs) of deltas whose text is not yet known to be content
        self.pending: deque[tuple[int, int, list[TokenLogprob]]] = deque()

    def logprobs_for(self, start: int, end: int) -> list[TokenLogprob]:
        """Logprobs of the tokens that wrote output [start, end), now known as content;
        those of tokens that wrote only call markup before it are dropped."""
        out: list[TokenLogprob] = []
        while self.pending and self.pending[0][0] < end:
            lo, hi, entries = self.pending.popleft()
            if hi > start or lo == hi >= start:
                out += entries
        return out


class Choices:
    def __init__(
        self,
        n: int,
        *,
        logprobs: bool,
        tools: ToolPlan | None,
        blocks: tuple[CallBlock, ...] = (),
        forced: tuple[CallStart, ...] = (),
        think_tags: tuple[str, str] | None = None,
        show_reasoning: bool = True,
        sources: Sequence[Source] | None = None,
    ) -> None:
        """``blocks``: where calls show in the output (``DecodingPlan``), none when no call
        can be made; ``forced``: a call is required and may be any of these;
        ``think_tags``: the answers open with a think block with these tags;
        ``show_reasoning``: return its text as ``reasoning_content`` (else only count it);
        ``sources``: a web search's, cited by number in the content (``CitationWriter``)."""
        self.n = n
        self.legacy = bool(tools and tools.legacy)
        self.show_reasoning = show_reasoning and think_tags is not None
        names = tools.callable if tools is not None and tools.active else []
        self._choices = [
            _Choice(
                logprobs,
                CallParser(blocks, names, forced) if blocks and names else None,
                ReasoningSplitter(*think_tags) if think_tags is not None else None,
                CitationWriter(sources) if sources is not None else None,
            )
            for _ in range(n)
        ]
        self.completion_tokens = 0
        self.reasoning_tokens = 0
        self.accepted_prediction_tokens = 0
        self.rejected_prediction_tokens = 0

    @property
    def done(self) -> bool:
        return all(c.finish is not None for c in self._choices)

    def add(self, delta: ChoiceDelta) -> ChoiceUpdate:
        choice = self._choices[delta.index]
        seen = ChoiceUpdate(delta.index)
        if choice.parser is None and choice.splitter is None:
            events: list[Event] = [Content(delta.text, choice.fed)] if delta.text else []
            seen.logprobs = delta.logprobs
        else:
            # Logprobs go out with the content their tokens wrote, found by output offset.
            choice.pending.append((choice.fed, choice.fed + len(delta.text), delta.logprobs or []))
            events = self._content_events(choice, seen, delta)
            if delta.logprobs is not None:
                seen.logprobs = []
        choice.fed += len(delta.text)
        for event in events:
            self._apply(choice, seen, event)
        if delta.finish_reason and choice.citer is not None:
            self._cite_rest(choice, seen)
        if seen.logprobs and choice.logprobs is not None:
            choice.logprobs.extend(seen.logprobs)
        if delta.finish_reason:
            reason: str = delta.finish_reason
            if choice.calls and reason == "stop":
                reason = "function_call" if self.legacy else "tool_calls"
            choice.finish = seen.finish_reason = reason
            self.completion_tokens += delta.completion_tokens
            self.reasoning_tokens += delta.reasoning_tokens
            self.accepted_prediction_tokens += delta.accepted_prediction_tokens
            self.rejected_prediction_tokens += delta.rejected_prediction_tokens
        return seen

    def _content_events(self, choice: _Choice, seen: ChoiceUpdate, delta: ChoiceDelta) -> list[Event]:
        """The delta's reasoning goes to ``seen``; its content becomes events (calls and
        plain content, with offsets into the whole output)."""
        pieces = [("content", delta.text)]
        if choice.splitter is not None:
            pieces = choice.splitter.feed(delta.text) + (choice.splitter.finish() if delta.finish_reason else [])
        events: list[Event] = []
        for kind, text in pieces:
            if kind == "reasoning":
                choice.reasoning += text
                if self.show_reasoning:
                    seen.pieces.append(("reasoning", text))
                continue
            start = choice.content_fed
            choice.content_fed += len(text)
            events += choice.parser.feed(text) if choice.parser is not None else [Content(text, start)]
        if choice.parser is not None and delta.finish_reason:
            events += choice.parser.finish(cut=delta.finish_reason == "length")
        # Content offsets count from the answer's start; pending logprobs, from the output's.
        shift = (choice.splitter.content_start or 0) if choice.splitter is not None else 0
        return [Content(e.text, e.start + shift) if isinstance(e, Content) else e for e in events]

    def _cite_rest(self, choice: _Choice, seen: ChoiceUpdate) -> None:
        """The answer's last held text, its Sources line if it cited nothing, and its
        annotations (a chunk of their own, before the finish)."""
        assert choice.citer is not None
        rest = choice.citer.finish()
        if rest:
            choice.text += rest
            seen.pieces.append(("content", rest))
        if choice.citer.annotations:
            seen.pieces.append(("annotations", choice.citer.annotations))

    def _apply(self, choice: _Choice, seen: ChoiceUpdate, event: Event) -> None:
        if isinstance(event, Content):
            text = choice.citer.feed(event.text) if choice.citer is not None else event.text
            choice.text += text
            if text or choice.citer is None:
                seen.pieces.append(("content", text))
            if seen.logprobs is not None and (choice.parser is not None or choice.splitter is not None):
                seen.logprobs += choice.logprobs_for(event.start, event.start + len(event.text))
        elif isinstance(event, CallStart):
            kind = "custom" if event.custom else "function"
            body: dict[str, str] = {"name": event.name, "input" if event.custom else "arguments": ""}
            call: dict[str, Any] = {"id": rs.random_id("call_", 24), "type": kind, kind: body}
            choice.calls.append(call)
            seen.pieces.append(("call", self._call_delta(len(choice.calls) - 1, call, head=True)))
        elif isinstance(event, CallArguments):
            call = choice.calls[-1]
            written: dict[str, str] = call[call["type"]]
            written["input" if call["type"] == "custom" else "arguments"] += event.text
            seen.pieces.append(("call", self._call_delta(len(choice.calls) - 1, call, piece=event.text)))

    def _call_delta(self, position: int, call: dict[str, Any], *, head: bool = False, piece: str = "") -> dict[str, Any] | None:
        """OpenAI's shape for a streamed call: a first delta with id, type, name and empty
        arguments, then the arguments in pieces as they are written."""
        kind = call["type"]
        key = "input" if kind == "custom" else "arguments"
        if self.legacy:
            if position:
                return None  # the legacy API answers with one call
            return {"function_call": {"name": call[kind]["name"], key: ""} if head else {key: piece}}
        if head:
            return {
                "tool_calls": [{"index": position, "id": call["id"], "type": kind, kind: {"name": call[kind]["name"], key: ""}}]
            }
        return {"tool_calls": [{"index": position, kind: {key: piece}}]}

    def message(self, i: int) -> dict[str, Any]:
        choice = self._choices[i]
        # Null, never "", when the output was nothing but call markup.
        markup = choice.calls or (choice.parser is not None and choice.parser.markup)
        message = rs.assistant_message(choice.text or None if markup else choice.text)
        if self.show_reasoning:
            message["reasoning_content"] = choice.reasoning
        if choice.citer is not None:
            message["annotations"] = choice.citer.annotations
        if not choice.calls:
            return message
        if self.legacy:
            message["function_call"] = dict(choice.calls[0]["function"])
        else:
            message["tool_calls"] = choice.calls
        return message

    def choice_objects(self) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "message": self.message(i),
                "logprobs": rs.choice_logprobs(c.logprobs),
                "finish_reason": c.finish,
            }
            for i, c in enumerate(self._choices)
        ]
