"""Reads calls back from streamed output, for any format."""

from __future__ import annotations

from chatport.protocol.text import held_back
from chatport.service.tools.format import CallBlock, ParsedCall


class CallParser:
    """Splits streamed output into content and completed calls; never releases part of a
    call marker as content. A block that runs to the end of the output is complete only
    when the output ends; one that does not parse as calls is content after all."""

    def __init__(self, blocks: tuple[CallBlock, ...]) -> None:
        self._blocks = blocks
        self._openers = [b.opener for b in blocks]
        self._buffer = ""
        self._open: CallBlock | None = None  # the block the buffer starts with
        # Newlines right after a call belong to it, however the output was cut into pieces.
        self._after_call = False

    def feed(self, text: str) -> tuple[str, list[ParsedCall]]:
        self._buffer += text
        content, calls = "", list[ParsedCall]()
        while True:
            if self._after_call:
                self._buffer = self._buffer.lstrip("\n")
                self._after_call = not self._buffer
            if self._open is None:
                hits = [(at, i) for i, b in enumerate(self._blocks) if (at := self._buffer.find(b.opener)) >= 0]
                if not hits:
                    keep = held_back(self._buffer, self._openers)
                    content += self._buffer[: len(self._buffer) - keep]
                    self._buffer = self._buffer[len(self._buffer) - keep :]
                    return content, calls
                at, i = min(hits)
                content += self._buffer[:at]
                self._buffer = self._buffer[at:]
                self._open = self._blocks[i]
            block = self._open
            if block.closer is None:
                return content, calls
            end = self._buffer.find(block.closer, len(block.opener))
            if end < 0:
                return content, calls
            end += len(block.closer)
            raw, self._buffer = self._buffer[:end], self._buffer[end:]
            self._open = None
            parsed = block.parse(raw)
            if parsed is None:
                content += raw
            else:
                calls += parsed
                self._after_call = True

    def finish(self) -> tuple[str, list[ParsedCall]]:
        """What is left when generation ends: a block that runs to the end, or text (an
        unfinished call stays text)."""
        buffer, block = self._buffer, self._open
        self._buffer, self._open, self._after_call = "", None, False
        if block is not None and block.closer is None:
            parsed = block.parse(buffer)
            if parsed is not None:
                return "", parsed
        return buffer, []
