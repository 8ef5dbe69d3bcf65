"""A prompt as the KV cache sees it: token runs, and media chunks between them.

Each token fills one KV cell. An image or audio clip, once encoded, fills a run of cells
with embeddings and is decoded as one unit, between token steps. Its cells hold
``MEDIA_CELL`` in :attr:`Prompt.cells` so that prefix matching stays a comparison of
integer lists, with a chunk matching only a chunk of the same content (as llama.cpp's
``server_tokens`` does).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

MEDIA_CELL = -1  # stands for a media chunk's cells in token lists


@dataclass(frozen=True)
class MediaChunk:
    kind: Literal["image", "audio"]
    content_hash: str  # identity for the prefix cache: the same bytes give the same hash
    n_cells: int  # KV cells its embeddings fill
    n_pos: int  # positions it advances; M-RoPE projectors use fewer than n_cells
    payload: object = field(default=None, compare=False, repr=False)  # the backend's encoded form

    def __post_init__(self) -> None:
        if self.n_cells < 1 or not 1 <= self.n_pos <= self.n_cells:
            raise ValueError(f"a media chunk needs 1 <= n_pos <= n_cells, got {self.n_pos} and {self.n_cells}")


Segment = Sequence[int] | MediaChunk


@dataclass(frozen=True)
class Image:
    """A decoded image on its way to a vision backend: 8-bit RGB rows, top to bottom."""

    width: int
    height: int
    rgb: bytes = field(repr=False)  # width * height * 3 bytes
    digest: str  # content hash of the pixels: the same picture gives the same digest

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or len(self.rgb) != self.width * self.height * 3:
            raise ValueError(f"an RGB image of {self.width}x{self.height} needs {self.width * self.height * 3} bytes")


class Prompt:
    """Token runs and media chunks, in order."""

    def __init__(self, segments: Iterable[Segment]) -> None:
        cells: list[int] = []
        media: dict[int, MediaChunk] = {}
        for segment in segments:
            if isinstance(segment, MediaChunk):
                media[len(cells)] = segment
                cells.extend([MEDIA_CELL] * segment.n_cells)
            else:
                cells.extend(segment)
        self.cells = cells
        self.media: Mapping[int, MediaChunk] = media  # keyed by the chunk's first cell
        self._starts = sorted(media)

    @classmethod
    def of_tokens(cls, tokens: Sequence[int]) -> Prompt:
        return cls([tokens])

    def __len__(self) -> int:
        return len(self.cells)

    def next_media(self, cell: int) -> int | None:
        """The first cell of the first chunk starting at or after ``cell``."""
        i = bisect.bisect_left(self._starts, cell)
        return self._starts[i] if i < len(self._starts) else None

    def position(self, cell: int) -> int:
        """The position (RoPE index) of a cell; cells past the prompt continue after it."""
        shift = 0
        for start in self._starts:
            chunk = self.media[start]
            if start + chunk.n_cells > cell:
                break
            shift += chunk.n_cells - chunk.n_pos
        return cell - shift

    def common_prefix(self, cells: list[int], media: Mapping[int, MediaChunk]) -> int:
        """How many leading cells this prompt shares with another cell list (whose chunks
        are ``media``). A chunk counts only whole and only against the same content."""
        shared = common_prefix(self.cells, cells)
        for start in self._starts:
            if start >= shared:
                break
            if media.get(start) != self.media[start]:
                return start
            end = start + self.media[start].n_cells
            if end > shared:
                return start
        return shared


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two integer lists."""
    n = min(len(a), len(b))
    lo = 0
    # Compare in growing blocks: prompts share long prefixes, so most of the work is a
    # few list-slice comparisons done in C.
    step = 64
    while lo < n:
        hi = min(lo + step, n)
        if a[lo:hi] != b[lo:hi]:
            while a[lo] == b[lo]:
                lo += 1
            return lo
        lo = hi
        step *= 2
    return n
