"""Prompt prefixes kept beyond their slot: in host memory, and on disk for 24 hours.

A slot keeps its KV after a request ends, so the next prompt that shares its prefix skips
that work; but with 16 slots, the 17th different system prompt pushes one out. Before a
slot's cells are overwritten, a prefix (``min_tokens`` or more about to be lost) is
copied out of the KV cache (``llama_state_seq_get_data``) into this cache, least recently
used first out when it passes ``ram_bytes``. A prompt that shares more with a saved prefix
than with any slot gets it written back into a free slot (``llama_state_seq_set_data``)
instead of being computed again; ``cached_tokens`` counts it.

Every entry belongs to one scope (the project of the request whose prompt it is): a prompt
is matched only against its own scope's entries, so one project's prefixes never speed up,
or show in the ``cached_tokens`` of, another project's requests.

Requests with ``prompt_cache_retention: "24h"`` also have their prefix written to disk when
they end, under the data directory, one file per prefix, named by a hash of the model and
its tokens. A file holds the model's fingerprint, the tokens and the state with its SHA-256,
and is checked whole before use: a file of another model, cut short, corrupted or older
than 24 hours is a clean miss (and is deleted). The directory is capped in bytes, oldest
files out first; its index (tokens of each file) is read at start, so the prefixes outlive
a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from chatport.protocol.prompt import common_prefix

log = logging.getLogger("chatport.engine")

MAGIC = b"CHATPORT-KV 1\n"
DISK_SECONDS = 24 * 3600

# A sequence's saved KV cells: the array the context wrote them into, or a file's bytes.
KVState = bytes | npt.NDArray[np.uint8]


@dataclass
class SavedPrefix:
    cells: list[int]  # the prompt tokens whose KV the state holds
    size: int  # bytes of state
    scope: str  # whose prompt it is (GenerationRequest.cache_scope)
    state: KVState | None = None  # held in memory
    path: str | None = None  # written to disk


@dataclass(frozen=True)
class Header:
    """What a prompt-cache file says of itself, on its second line (JSON)."""

    fingerprint: str
    scope: str
    n_cells: int
    state_bytes: int
    state_sha256: str
    created: float

    @classmethod
    def parse(cls, line: bytes) -> Header | None:
        """The header, or None when the line is not one this cache wrote (any shape at all)."""
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
        fingerprint, scope, digest = (data.get(k) for k in ("fingerprint", "scope", "state_sha256"))
        n_cells, state_bytes, created = (data.get(k) for k in ("n_cells", "state_bytes", "created"))
        if not (isinstance(fingerprint, str) and isinstance(scope, str) and isinstance(digest, str)):
            return None
        if not (type(n_cells) is int and type(state_bytes) is int and n_cells >= 0 and state_bytes >= 0):
            return None
        if isinstance(created, bool) or not isinstance(created, (int, float)) or created != created:  # NaN
            return None
        return cls(fingerprint, scope, n_cells, state_bytes, digest, float(created))


class PromptCache:
    def __init__(
        self,
        ram_bytes: int,
        *,
        fingerprint: str,
        disk_dir: str | None = None,
        disk_bytes: int = 0,
        min_tokens: int = 32,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``fingerprint``: names the model (its weights): states of one model never load
        into another. ``min_tokens``: shorter prefixes are not worth a copy (a chat turn's
        prompt and answer are longer: the next turn, or the same prompt asked again after
        16 others, comes back from here as llama-server's --cache-ram does)."""
        self.ram_bytes = ram_bytes
        self.fingerprint = fingerprint
        self.min_tokens = min_tokens
        self._clock = clock
        self._ram: OrderedDict[tuple[str, tuple[int, ...]], SavedPrefix] = OrderedDict()  # (scope, cells), LRU order
        self._ram_used = 0
        self.disk_dir = disk_dir if disk_bytes > 0 else None
        self.disk_bytes = disk_bytes
        self._disk: dict[str, SavedPrefix] = {}  # path -> entry (state not loaded)
        self._lock = threading.Lock()  # the disk writer thread and the engine thread
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatport-kv-disk") if self.disk_dir else None
        if self.disk_dir is not None:
            os.makedirs(self.disk_dir, exist_ok=True)
            self._read_index()

    # --- lookup -----------------------------------------------------------------------

    def best(self, cells: list[int], scope: str) -> tuple[SavedPrefix | None, int]:
        """The saved prefix of ``scope`` that shares the most leading cells with ``cells``, and how many."""
        found, shared = None, 0
        with self._lock:
            candidates = [e for e in (*self._ram.values(), *self._disk.values()) if e.scope == scope]
        for entry in candidates:
            n = common_prefix(entry.cells, cells)
            if n > shared:
                found, shared = entry, n
        return found, shared

    def load(self, entry: SavedPrefix) -> KVState | None:
        """The entry's state, or None (the entry is dropped) when it cannot be used."""
        if entry.state is not None:
            key = (entry.scope, tuple(entry.cells))
            with self._lock:
                if key in self._ram:
                    self._ram.move_to_end(key)
            return entry.state
        assert entry.path is not None
        state = self._read_state(entry.path)
        if state is None:
            self._forget_file(entry.path)
        return state

    # --- saving -----------------------------------------------------------------------

    def keep(self, cells: list[int], state: KVState, scope: str) -> None:
        """Hold a prefix's state in memory (least recently used out past ``ram_bytes``)."""
        if len(state) > self.ram_bytes:
            return
        key = tuple(cells)
        with self._lock:
            # A longer prefix makes every saved prefix of it (in the same scope) redundant.
            for other in [k for k in self._ram if k[0] == scope and len(k[1]) <= len(key) and key[: len(k[1])] == k[1]]:
                self._ram_used -= self._ram.pop(other).size
            self._ram[(scope, key)] = SavedPrefix(list(cells), len(state), scope, state=state)
            self._ram_used += len(state)
            while self._ram_used > self.ram_bytes and self._ram:
                _, old = self._ram.popitem(last=False)
                self._ram_used -= old.size

    def holds(self, cells: list[int], scope: str) -> bool:
        """Whether memory already holds these cells of ``scope`` (or a longer prefix that has them)."""
        key, n = tuple(cells), len(cells)
        with self._lock:
            return any(s == scope and len(k) >= n and k[:n] == key for s, k in self._ram)

    def on_disk(self, cells: list[int], scope: str) -> bool:
        """Whether a file already holds these cells of ``scope`` (or a longer prefix that has them)."""
        with self._lock:
            entries = list(self._disk.values())
        return any(e.scope == scope and len(e.cells) >= len(cells) and e.cells[: len(cells)] == cells for e in entries)

    def write(self, cells: list[int], state: KVState, scope: str) -> None:
        """Also keep the prefix on disk for 24 hours (written by a background thread)."""
        if self._writer is None or len(state) > self.disk_bytes:
            return
        self._writer.submit(self._write_file, list(cells), state, scope)

    def flush(self) -> None:
        """Wait for pending disk writes (tests, shutdown)."""
        if self._writer is not None:
            self._writer.submit(lambda: None).result()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    @property
    def ram_used(self) -> int:
        return self._ram_used

    # --- disk ---------------------------------------------------------------------------

    def _path(self, cells: list[int], scope: str) -> str:
        assert self.disk_dir is not None
        named = self.fingerprint.encode() + b"\0" + scope.encode() + b"\0"
        digest = hashlib.sha256(named + np.asarray(cells, dtype="<i4").tobytes()).hexdigest()
        return os.path.join(self.disk_dir, f"{digest[:32]}.kv")

    def _write_file(self, cells: list[int], kv: KVState, scope: str) -> None:
        path = self._path(cells, scope)
        state = kv if isinstance(kv, bytes) else kv.data  # the array's bytes, not a copy
        header = {
            "fingerprint": self.fingerprint,
            "scope": scope,
            "n_cells": len(cells),
            "state_bytes": len(state),
            "state_sha256": hashlib.sha256(state).hexdigest(),
            "created": self._clock(),
        }
        partial = f"{path}.{os.getpid()}.partial"
        try:
            with open(partial, "wb") as f:
                f.write(MAGIC + json.dumps(header).encode() + b"\n")
                f.write(np.asarray(cells, dtype="<i4").tobytes())
                f.write(state)
            os.replace(partial, path)
        except OSError as exc:
            log.warning("prompt cache: could not write %s: %s", path, exc)
            return
        with self._lock:
            self._disk[path] = SavedPrefix(list(cells), len(state), scope, path=path)
        self._enforce_disk_cap()

    def _read_header(self, f: BinaryIO) -> tuple[Header, list[int]] | None:
        if f.read(len(MAGIC)) != MAGIC:
            return None
        header = Header.parse(f.readline(4096))
        if header is None:
            return None
        raw = f.read(4 * header.n_cells)
        if len(raw) != 4 * header.n_cells:
            return None
        return header, np.frombuffer(raw, dtype="<i4").tolist()

    def _usable(self, header: Header) -> bool:
        return header.fingerprint == self.fingerprint and self._clock() - header.created < DISK_SECONDS

    def _read_index(self) -> None:
        assert self.disk_dir is not None
        for name in os.listdir(self.disk_dir):
            path = os.path.join(self.disk_dir, name)
            if name.endswith(".partial"):
                _remove(path)  # a write cut off by a crash
                continue
            if not name.endswith(".kv"):
                continue
            try:
                with open(path, "rb") as f:
                    read = self._read_header(f)
            except OSError:
                read = None
            if read is None or not self._usable(read[0]):
                _remove(path)  # not a file of ours, of another model, or expired: dropped, never fatal
                continue
            header, cells = read
            self._disk[path] = SavedPrefix(cells, header.state_bytes, header.scope, path=path)
        self._enforce_disk_cap()

    def _read_state(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as f:
                read = self._read_header(f)
                if read is None or not self._usable(read[0]):
                    return None
                header = read[0]
                state = f.read(header.state_bytes + 1)
        except OSError:
            return None
        if len(state) != header.state_bytes or hashlib.sha256(state).hexdigest() != header.state_sha256:
            log.warning("prompt cache: %s is corrupt; computing the prompt instead", path)
            return None
        return state

    def _forget_file(self, path: str) -> None:
        with self._lock:
            self._disk.pop(path, None)
        _remove(path)

    def _enforce_disk_cap(self) -> None:
        with self._lock:
            files = sorted(self._disk, key=_mtime)
            used = sum(self._disk[p].size for p in files)
            while files and used > self.disk_bytes:
                oldest = files.pop(0)
                used -= self._disk.pop(oldest).size
                _remove(oldest)


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
