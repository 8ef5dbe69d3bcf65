"""A model context for engine tests: no weights, but a KV cache it keeps honest.

Each sequence's KV is a dict position -> token. Every decode checks that a token goes to
the next free position of its sequence (no hole, no stale cell left behind by a
rollback), so the engine's bookkeeping of ``num_computed``, forks and ``remove`` is
checked on every step. The logits make the next token a function of the current one
(``NEXT``): a-z count up, "z" ends generation, anything else leads to "a".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from chatport.protocol.prompt import MediaChunk
from tests.support.bytes_vocab import EOG, N_VOCAB


def next_token(token: int) -> int:
    if token == ord("z"):
        return EOG
    if ord("a") <= token < ord("z"):
        return token + 1
    return ord("a")


@dataclass
class FakeBatch:
    rows: list[tuple[int, int, int]] = field(default_factory=list)  # (seq_id, pos, token) asking for logits
    fed: list[tuple[int, int, int]] = field(default_factory=list)  # every (seq_id, pos, token)

    def clear(self) -> None:
        self.rows.clear()
        self.fed.clear()

    def add(self, tokens: list[int], start_pos: int, seq_id: int, n_logits: int) -> None:
        entries = [(seq_id, start_pos + i, t) for i, t in enumerate(tokens)]
        self.fed += entries
        self.rows += entries[len(entries) - n_logits :]


class FakeContext:
    def __init__(self, n_seqs: int, batch_capacity: int = 64, peak: float = 30.0) -> None:
        self.kv: list[dict[int, int]] = [{} for _ in range(n_seqs)]
        self.batch = FakeBatch()
        self.batch_capacity = batch_capacity
        self.n_ubatch = batch_capacity
        self.peak = peak  # logit of the scripted next token over the others (0 elsewhere)
        self.decodes = 0
        self.media: list[tuple[int, int, MediaChunk]] = []  # (seq_id, start_pos, chunk)
        self.saved = self.restored = 0  # prompt-cache copies out of and into the KV cache
        self.closed = False

    def decode(self) -> np.ndarray:
        for seq_id, pos, token in self.batch.fed:
            cells = self.kv[seq_id]
            assert pos not in cells, f"seq {seq_id}: position {pos} already holds KV (stale cell)"
            assert pos == len(cells), f"seq {seq_id}: position {pos} fed with {len(cells)} cells in place"
            cells[pos] = token
        self.decodes += 1
        logits = np.zeros((len(self.batch.rows), N_VOCAB), dtype=np.float32)
        for row, (_, _, token) in enumerate(self.batch.rows):
            logits[row, next_token(token)] = self.peak
        return logits

    def decode_media(self, chunk: MediaChunk, seq_id: int, start_pos: int) -> None:
        cells = self.kv[seq_id]
        assert start_pos == len(cells), f"media at {start_pos} with {len(cells)} cells in place"
        for i in range(chunk.n_pos):
            cells[start_pos + i] = -1
        self.media.append((seq_id, start_pos, chunk))

    def remove(self, seq_id: int, from_pos: int) -> None:
        cells = self.kv[seq_id]
        for pos in [p for p in cells if p >= from_pos]:
            del cells[pos]

    def copy_sequence(self, src: int, dst: int) -> None:
        self.kv[dst] = dict(self.kv[src])

    def state_size(self, seq_id: int) -> int:
        return len(self._state(seq_id))

    def save_sequence(self, seq_id: int) -> bytes:
        self.saved += 1
        return self._state(seq_id)

    def _state(self, seq_id: int) -> bytes:
        return json.dumps(sorted(self.kv[seq_id].items())).encode()

    def restore_sequence(self, seq_id: int, state: bytes) -> bool:
        try:
            self.kv[seq_id] = {int(p): int(t) for p, t in json.loads(state)}
        except ValueError:
            return False
        self.restored += 1
        return True

    def close(self) -> None:
        self.closed = True
