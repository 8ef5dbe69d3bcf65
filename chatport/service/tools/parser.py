"""Reads calls from output as it is written, for any format.

The output becomes events: content (with its place in the output, so that logprobs can
follow it), a call's start once the whole name of a listed tool is written, and its
arguments piece by piece as they are generated. Call markup is never content: whitespace
right before and after a call belongs to it, a call cut off by the end of the output
keeps the arguments written so far, and a cut-off output does not end in the start of a
call's opener. A call to a tool that is not listed is content, as the model wrote it.
A required call cut before its name was complete is the listed call its name began (the
first, when several fit). Feeding the output in any pieces gives the same events, joined.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import regex

from chatport.protocol.text import held_back
from chatport.service.tools.format import CallBlock

# A JSON call begins once its name is written; its arguments follow their key. In a bare
# object (no tag before it), only the arguments key tells a call from a JSON answer.
_HEAD = re.compile(r'\{\s*"name"\s*:\s*"((?:[^"\\]|\\.){1,64})"\s*,')
_ARGUMENTS_KEY = re.compile(r'\s*"(?:arguments|parameters)"\s*:')
_BARE_HEAD = re.compile(_HEAD.pattern + _ARGUMENTS_KEY.pattern)
_ARGUMENTS_KEY_MAX = 16
_CUSTOM_PREFIX = ' name="'
_CUSTOM_HEAD = re.compile(r' name="([A-Za-z0-9_-]{1,64})">')
_CUSTOM_HEAD_MAX = len(_CUSTOM_PREFIX) + 64 + 2
# A tagged block holds a call only if it begins as one (a list of calls may open it): a
# block that begins otherwise is text the model wrote after the tag, and is content.
_BLOCK_START = regex.compile(r'\s*(?:\[\s*)?\{\s*"name"\s*:\s*"')
_NAMED = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.){1,64})"')
_PARTIAL_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)$|<custom_call name="([A-Za-z0-9_-]*)$')


@cache
def _opener(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


@dataclass(frozen=True)
class Content:
    text: str
    start: int  # offset of the text in the whole output


@dataclass(frozen=True)
class CallStart:
    name: str
    custom: bool = False


@dataclass(frozen=True)
class CallArguments:
    text: str  # the next piece of the arguments (of the input, for a custom tool)


Event = Content | CallStart | CallArguments


class _ValueEnd:
    """Where a JSON value ends, found one character at a time."""

    def __init__(self) -> None:
        self.done = False
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._scalar: bool | None = None  # known at the first character

    def take(self, text: str) -> int:
        """How many characters of ``text`` belong to the value (it starts at text[0])."""
        for i, ch in enumerate(text):
            if self._scalar is None:
                self._scalar = ch not in '{["'
            if self._in_string:
                self._string_char(ch)
                if not self._in_string and self._depth == 0:  # a string value has ended
                    self.done = True
                    return i + 1
            elif self._scalar and ch in ",}] \n\t\r":
                self.done = True
                return i
            elif ch == '"':
                self._in_string = True
            elif ch in "{[":
                self._depth += 1
            elif ch in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self.done = True
                    return i + 1
        return len(text)

    def _string_char(self, ch: str) -> None:
        if self._escaped:
            self._escaped = False
        elif ch == "\\":
            self._escaped = True
        elif ch == '"':
            self._in_string = False


class CallParser:
    def __init__(self, blocks: tuple[CallBlock, ...], names: Iterable[str], forced: tuple[CallStart, ...] = ()) -> None:
        """``names``: the tools the model may call; ``forced``: a call is required, and
        may be any of these."""
        self._blocks = blocks
        self._openers = [_opener(b.opener) for b in blocks]
        self._names = frozenset(names)
        self._forced = forced
        self._started = 0  # calls begun in the whole output
        self._content_chars = 0  # characters of output that were content
        self._fed = 0  # characters of output seen
        self._buffer = ""  # output not decided on yet
        self._offset = 0  # where the buffer starts in the whole output
        self._block: CallBlock | None = None  # the call block being read
        self._raw_start = 0  # where that block starts in the whole output
        self._raw = ""  # the block's text so far, for when it proves not to be a call
        self._calls = 0  # calls begun in the block
        self._value: _ValueEnd | None = None  # the arguments being read
        self._awaiting_arguments = False  # a call's name is read, its arguments key is not yet
        self._in_input = False  # inside a custom call's input
        self._after_call = False  # whitespace after a call belongs to it

    @property
    def markup(self) -> bool:
        """Some of the output was call markup (no call may have come of it)."""
        return self._content_chars < self._fed

    def feed(self, text: str, *, final: bool = False) -> list[Event]:
        self._buffer += text
        self._fed += len(text)
        events: list[Event] = []
        while True:
            before = (len(self._buffer), self._block)
            if self._block is None:
                self._content(events, final)
            elif self._block.custom:
                self._custom(self._block, events)
            else:
                self._json(self._block, events)
            if (len(self._buffer), self._block) == before:
                self._content_chars += sum(len(e.text) for e in events if isinstance(e, Content))
                return events

    def finish(self, *, cut: bool = False) -> list[Event]:
        """The output has ended (``cut``: by ``max_tokens`` or the context). A block that
        held no call is content; what is left of a block with calls (an unfinished call's
        markup) is dropped, as is the start of an opener a cut-off output ends in."""
        events = self.feed("", final=True)
        written = self._raw + self._buffer  # for a required call cut before its name
        if self._block is None:
            text = self._buffer
            if cut:
                text = text[: len(text) - self._opener_start(text)].rstrip()
            if text and not self._after_call:
                events.append(Content(text, self._offset))
        elif self._calls == 0 and self._block.keep_opener and (named := _NAMED.search(written)):
            events.append(CallStart(json.loads(f'"{named.group(1)}"')))  # cut after a listed name
            self._started += 1
        elif self._calls == 0 and not self._cut_head():
            events.append(Content(self._raw + self._buffer, self._raw_start))
        self._content_chars += sum(len(e.text) for e in events if isinstance(e, Content))
        if self._forced and not self._started:
            events = [*(e for e in events if not isinstance(e, Content)), *self._forced_call(written)]
        self._buffer, self._block, self._value, self._in_input, self._awaiting_arguments = "", None, None, False, False
        return events

    def _forced_call(self, written: str) -> list[Event]:
        """A required call cut before its name was whole: the listed call it began."""
        named, partial = _NAMED.search(written), _PARTIAL_NAME.search(written)
        if named is not None:
            fits = [c for c in self._forced if c.name == json.loads(f'"{named.group(1)}"')]
        else:
            begun = (partial.group(1) or partial.group(2) or "") if partial else ""
            fits = [c for c in self._forced if c.name.startswith(begun)]
        self._started += 1
        self._content_chars = 0
        return [(fits or list(self._forced))[0]]

    # --- content ------------------------------------------------------------------------

    def _content(self, events: list[Event], final: bool = False) -> None:
        if self._after_call:
            self._skip(len(self._buffer) - len(self._buffer.lstrip()))
            if not self._buffer:
                return
            self._after_call = False
        # The earliest opener, whole or (output still to come) begun at the end.
        hits = []
        for i, opener in enumerate(self._openers):
            match = opener.search(self._buffer, partial=not final)
            if match is not None and match.start() < len(self._buffer):  # (a partial match may be empty)
                hits.append((match.start(), not match.partial, match.end() - match.start(), i))
        if hits:
            at, whole, length, i = min(hits)
            if whole:
                text = self._buffer[:at].rstrip()
                self._release(text, events)
                self._open(self._blocks[i], at - len(text), length)
                return
            # Hold back what may begin an opener, and trailing whitespace (a call may follow).
            self._release(self._buffer[:at].rstrip(), events)
        elif not final:  # at the end, what is left is for finish() to decide
            self._release(self._buffer.rstrip(), events)

    def _opener_start(self, text: str) -> int:
        """How many trailing characters of ``text`` are the start of an opener."""
        starts = [len(text) - m.start() for o in self._openers if (m := o.search(text, partial=True)) is not None and m.partial]
        starts = [n for n in starts if n]
        return max(starts, default=0)

    def _release(self, text: str, events: list[Event]) -> None:
        if text:
            events.append(Content(text, self._offset))
            self._skip(len(text))

    def _open(self, block: CallBlock, whitespace: int, length: int) -> None:
        """Whitespace right before a call is the call's (content again if it is not one)."""
        self._block, self._raw, self._raw_start, self._calls = block, "", self._offset, 0
        self._take(whitespace)
        if not block.keep_opener:
            self._take(length)

    # --- JSON calls -----------------------------------------------------------------

    def _json(self, block: CallBlock, events: list[Event]) -> None:
        if self._value is not None:
            self._arguments(events)
            return
        if self._awaiting_arguments:
            key = _ARGUMENTS_KEY.match(self._buffer)
            if key is not None:
                self._take(key.end())
                self._awaiting_arguments = False
                self._value = _ValueEnd()
            elif len(self._buffer) > _ARGUMENTS_KEY_MAX:
                self._awaiting_arguments = False  # a call without arguments: the block goes on
            return
        if block.closer is not None and not self._calls and not _BLOCK_START.match(self._buffer, partial=True):
            self._close(0, events)  # not a call after all: the opener and what follows are content
            return
        closer = self._buffer.find(block.closer) if block.closer is not None else -1
        pattern = _BARE_HEAD if block.keep_opener else _HEAD
        head = None if block.closer is not None and self._calls else pattern.search(self._buffer)
        if closer >= 0 and (head is None or closer < head.start()):
            self._close(closer + len(block.closer or ""), events)
        elif head is not None:
            name = json.loads(f'"{head.group(1)}"')
            if name not in self._names:
                self._not_a_call(head, events)
                return
            events.append(CallStart(name))
            self._calls += 1
            self._started += 1
            self._take(head.end())
            if block.keep_opener:
                self._value = _ValueEnd()
            else:
                self._awaiting_arguments = True

    def _arguments(self, events: list[Event]) -> None:
        assert self._value is not None
        if self._value._scalar is None:  # whitespace before the value is not part of it
            self._take(len(self._buffer) - len(self._buffer.lstrip()))
            if not self._buffer:
                return
        used = self._value.take(self._buffer)
        if used:
            events.append(CallArguments(self._buffer[:used]))
            self._take(used)
        if self._value.done:
            self._value = None

    # --- custom calls: <custom_call name="NAME">INPUT</custom_call> -----------------------

    def _custom(self, block: CallBlock, events: list[Event]) -> None:
        closer = block.closer or ""
        if not self._in_input:
            head = _CUSTOM_HEAD.match(self._buffer)
            if head is not None and head.group(1) not in self._names:
                self._close(head.end(), events)  # a tool that is not listed: content
            elif head is not None:
                events.append(CallStart(head.group(1), custom=True))
                self._calls += 1
                self._started += 1
                self._take(head.end())
                self._in_input = True
            elif (
                not (self._buffer.startswith(_CUSTOM_PREFIX) or _CUSTOM_PREFIX.startswith(self._buffer))
                or len(self._buffer) > _CUSTOM_HEAD_MAX
            ):
                self._close(0, events)  # not a custom call after all
            return
        end = self._buffer.find(closer)
        piece = self._buffer[: len(self._buffer) - held_back(self._buffer, [closer])] if end < 0 else self._buffer[:end]
        if piece:
            events.append(CallArguments(piece))
            self._take(len(piece))
        if end >= 0:
            self._in_input = False
            self._close(len(closer), events)

    # --- helpers ----------------------------------------------------------------------

    def _not_a_call(self, head: re.Match[str], events: list[Event]) -> None:
        """A call head naming a tool that is not listed: the block so far and the head are
        content; in a block that already held calls, the block ends before it."""
        if self._calls == 0:
            self._close(head.end(), events)
        else:
            self._close(head.start(), events)
            self._after_call = False

    def _close(self, length: int, events: list[Event]) -> None:
        """The block ends ``length`` characters on; without a call, it was content."""
        self._take(length)
        if self._calls == 0:
            events.append(Content(self._raw, self._raw_start))
        self._block = None
        self._after_call = self._calls > 0

    def _cut_head(self) -> bool:
        """The output ended inside an opened call block, before a call's name: markup of a
        call the model began (a block that runs to the end holds JSON that is no call)."""
        block = self._block
        if block is None or block.closer is None:
            return False
        if block.custom:
            return self._buffer.startswith(_CUSTOM_PREFIX) or _CUSTOM_PREFIX.startswith(self._buffer)
        return True

    def _take(self, length: int) -> None:
        """Move ``length`` characters from the buffer into the open block."""
        self._raw += self._buffer[:length]
        self._skip(length)

    def _skip(self, length: int) -> None:
        self._buffer = self._buffer[length:]
        self._offset += length
