"""Text primitives: UTF-8 reassembly, stop-sequence hold-back, logprob token display."""

from __future__ import annotations

import codecs

from chatport.protocol.text import held_back


class Utf8Assembler:
    """Token bytes in, complete characters out; a character split over tokens waits."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class StopMatcher:
    """Finds stop sequences in streamed text without ever releasing part of one.

    Text that could be the start of a stop sequence is held back until the next
    piece shows whether it is; when a stop sequence is found, everything from it on
    is dropped.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns (text safe to release, whether a stop sequence was hit)."""
        if not self._stops:
            return text, False
        buf = self._pending + text
        hit = min((i for i in (buf.find(s) for s in self._stops) if i >= 0), default=-1)
        if hit >= 0:
            self._pending = ""
            return buf[:hit], True
        hold = held_back(buf, self._stops)
        self._pending = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold], False

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return out


def token_display(data: bytes) -> str:
    """A token's text as OpenAI shows it in logprobs; bytes that are not whole UTF-8
    characters are spelled ``bytes:\\xNN``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in data)
