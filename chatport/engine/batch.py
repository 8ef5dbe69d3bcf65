"""What one engine step computes, and the one map from logits rows to sequences.

An entry feeds tokens of one sequence and owns the logits rows of its last tokens: none
for a prefill chunk that does not end the prompt, one for a decode step or the chunk that
ends a prompt, 1 + k to verify k draft tokens. A fork (choice 1..n-1 of a request) feeds
nothing and samples from its leader's row. A media chunk is decoded on its own, before
the token batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from chatport.engine.sampler import TokenChoice
from chatport.engine.sequence import Sequence
from chatport.protocol.prompt import MediaChunk


class TokenBatch(Protocol):
    """The model's input buffer for one decode (``llama.BatchView``)."""

    def clear(self) -> None: ...

    def add(self, tokens: list[int], start_pos: int, seq_id: int, n_logits: int) -> None: ...


@dataclass
class Entry:
    seq: Sequence
    tokens: list[int]  # fed this step, at consecutive positions
    first_cell: int  # the cell of tokens[0] in the sequence
    rows: range  # logits rows this entry samples from, in order
    draft: list[int] = field(default_factory=list)  # row i + 1 is sampled only if row i picked draft[i]
    fork_of: Sequence | None = None  # a fork copies its leader's KV and shares its rows
    picks: list[TokenChoice] = field(default_factory=list)  # sampled this step, in row order


@dataclass
class MediaStep:
    seq: Sequence
    chunk: MediaChunk
    first_cell: int


class StepPlan:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.media: list[MediaStep] = []
        self.n_rows = 0
        self.n_tokens = 0

    @property
    def empty(self) -> bool:
        return not self.entries and not self.media

    def add_decode(self, seq: Sequence, draft: list[int]) -> None:
        """The sequence's last token, then the draft tokens to verify; one row each."""
        tokens = [seq.tokens[-1], *draft]
        self._add(Entry(seq, tokens, len(seq.tokens) - 1, self._rows(len(tokens)), list(draft)))

    def add_prefill(self, seq: Sequence, first_cell: int, end_cell: int) -> Entry:
        """Prompt cells [first_cell, end_cell); the chunk that ends the prompt gets a row."""
        completes = end_cell == seq.prompt_len
        entry = Entry(seq, seq.tokens[first_cell:end_cell], first_cell, self._rows(int(completes)))
        self._add(entry)
        return entry

    def _rows(self, count: int) -> range:
        return range(self.n_rows, self.n_rows + count)

    def _add(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.n_rows += len(entry.rows)
        self.n_tokens += len(entry.tokens)

    def add_fork(self, seq: Sequence, leader: Entry) -> None:
        self.entries.append(Entry(seq, [], leader.first_cell + len(leader.tokens), leader.rows, fork_of=leader.seq))

    def graphs(self, n_ubatch: int) -> int:
        """How many forward passes llama.cpp runs this batch as (see ``ubatches``)."""
        return ubatches([(e.seq.slot_id, len(e.tokens)) for e in self.entries if e.tokens], n_ubatch)

    def add_media(self, seq: Sequence, chunk: MediaChunk, first_cell: int) -> None:
        self.media.append(MediaStep(seq, chunk, first_cell))

    def fill(self, batch: TokenBatch) -> None:
        """Write the token entries into the model's batch; rows come out in entry order."""
        batch.clear()
        for entry in self.entries:
            if entry.tokens:
                start = entry.seq.position(entry.first_cell)
                batch.add(entry.tokens, start, entry.seq.slot_id, len(entry.rows))


def ubatches(runs: list[tuple[int, int]], n_ubatch: int) -> int:
    """The number of ubatches (one graph each) llama.cpp cuts a batch into over per-slot KV
    streams, for ``runs`` of (sequence id, tokens) in batch order, as
    ``llama_batch_allocr::split_equal(n_ubatch, sequential=true)`` does: a ubatch takes the
    first unused sequence and then only sequences whose id is one more than the last
    taken, and the same number of tokens from each, as many as the shortest has left.
    So decoding slots 0-3 is one graph, slots 0, 2, 5, 9 four, and a step that mixes
    one-token decodes with prompt chunks at least two."""
    left = [n for _, n in runs]
    count = 0
    while any(left):
        chain: list[int] = []
        for i, (seq_id, _) in enumerate(runs):
            if left[i] and (not chain or seq_id == runs[chain[-1]][0] + 1):
                chain.append(i)
        shortest = min(left[i] for i in chain)
        each = max(min(shortest, n_ubatch // len(chain)), 1)
        for i in chain:
            left[i] -= each
        count += 1
    return count
