"""An answer's citation markers -> markdown links with ``url_citation`` annotations.

The model cites sources as it was told to, by number: ``[1]``, ``[1, 3]``, ``[2][4]``
(``[^1]`` too). Each marker becomes the sources' links in parentheses,
``([Title](https://...))``, and each link gets an annotation whose ``start_index`` and
``end_index`` are offsets in code points into the final content, ``end_index`` exclusive:
``content[start_index:end_index]`` is exactly ``[Title](url)``. A marker that names no
source given to the model is removed with the space before it. If the answer cites
nothing, a last line ``Sources: [Title](url), ...`` lists every source it was given, each
link annotated, so an answer from a search always carries at least one annotation.

Markers are rewritten only in prose: not inside code (inline or fenced), and not right
after a word or a closing bracket (``a[1]``, ``f(x)[2]`` are indexing), except when that
bracket closed a marker (``[1][2]``).

Text arrives in pieces (streamed tokens): a piece that ends in what may still become a
marker (``[1``), in backticks (a fence being opened) or in whitespace (the space a removed
marker takes with it) keeps that tail back until the next piece decides it. The output is
the same however the text is split, so a stream and a whole answer read alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import regex

from chatport.service.search.sources import Source

_MARKER = regex.compile(r"\[\^?(\d{1,3})((?:\s{0,2}[,;]\s{0,2}\^?\d{1,3}){0,9})\]")
_NUMBER = regex.compile(r"\d{1,3}")
_WORDLIKE = frozenset(")]_")


class CitationWriter:
    def __init__(self, sources: Sequence[Source]) -> None:
        self._sources = {source.number: source for source in sources}
        self._order = list(sources)
        self._held = ""  # the tail of the text so far, not yet decided
        self._space = ""  # whitespace read but not yet written
        self._prev = ""  # the last character written (of the model's text)
        self._after_marker = False  # the last thing written was a rewritten marker
        self._inline = False  # inside `code`
        self._fence = False  # inside a ``` block
        self.written = 0  # code points written so far
        self.annotations: list[dict[str, Any]] = []
        self._any_text = False

    def feed(self, text: str) -> str:
        """The text that can be written now (possibly less than was fed)."""
        buf, self._held = self._held + text, ""
        out: list[str] = []
        i, n = 0, len(buf)
        while i < n:
            ch = buf[i]
            if ch.isspace():
                self._space += ch
                i += 1
                continue
            if ch == "`":
                run = n - i - len(buf[i:].lstrip("`"))
                if i + run == n:  # a run of backticks at the end may grow into a fence
                    self._held = buf[i:]
                    break
                self._write(out, buf[i : i + run])
                if run >= 3:
                    self._fence = not self._fence
                elif not self._fence:
                    self._inline = not self._inline
                i += run
                continue
            if ch == "[" and self._may_cite():
                match = _MARKER.match(buf, i)
                if match is not None:
                    self._cite(out, match)
                    i = match.end()
                    continue
                if _MARKER.match(buf, i, partial=True) is not None:  # what follows may complete it
                    self._held = buf[i:]
                    break
            self._write(out, ch)
            i += 1
        return "".join(out)

    def finish(self) -> str:
        """The rest of the text, and the Sources line when nothing was cited."""
        held, self._held = self._held, ""
        out: list[str] = []
        for ch in held:  # a marker never completed is text
            if ch.isspace():
                self._space += ch
            else:
                self._write(out, ch)
        out.append(self._space)
        self.written += len(self._space)
        self._space = ""
        if not self.annotations and self._any_text and self._order:
            out.append(self._sources_line())
        return "".join(out)

    # --- pieces --------------------------------------------------------------------

    def _may_cite(self) -> bool:
        if self._inline or self._fence:
            return False
        if self._after_marker and not self._space:
            return True
        return bool(self._space) or not self._prev or not (self._prev.isalnum() or self._prev in _WORDLIKE)

    def _write(self, out: list[str], text: str) -> None:
        if self._space:
            out.append(self._space)
            self.written += len(self._space)
            self._space = ""
        out.append(text)
        self.written += len(text)
        self._prev = text[-1]
        self._after_marker = False
        self._any_text = True

    def _cite(self, out: list[str], match: regex.Match[str]) -> None:
        numbers: list[int] = []
        for found in _NUMBER.findall(match.group(0)):
            number = int(found)
            if number in self._sources and number not in numbers:
                numbers.append(number)
        if not numbers:
            self._space = ""  # a marker citing nothing goes, with the space before it
            return
        lead = self._space or (" " if self._prev and self._prev not in "([{" else "")
        self._space = ""
        out.append(lead + "(")
        self.written += len(lead) + 1
        for k, number in enumerate(numbers):
            if k:
                out.append("; ")
                self.written += 2
            out.append(self._link(self._sources[number]))
        out.append(")")
        self.written += 1
        self._prev = ")"
        self._after_marker = True
        self._any_text = True

    def _link(self, source: Source) -> str:
        """``[title](url)``, annotated at the offset it is written at."""
        link = f"[{_link_text(source.title)}]({_link_url(source.url)})"
        self.annotations.append(
            {
                "type": "url_citation",
                "url_citation": {
                    "start_index": self.written,
                    "end_index": self.written + len(link),
                    "url": source.url,
                    "title": source.title,
                },
            }
        )
        self.written += len(link)
        return link

    def _sources_line(self) -> str:
        lead = "\n\nSources: "
        self.written += len(lead)
        parts = [lead]
        for k, source in enumerate(self._order):
            if k:
                parts.append(", ")
                self.written += 2
            parts.append(self._link(source))
        return "".join(parts)


def _link_text(title: str) -> str:
    text = " ".join(title.split())
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]") or "source"


def _link_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")
