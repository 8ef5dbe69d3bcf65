"""The thread pools that keep a request's blocking work off the event loop, one per kind of
work so that no kind can starve another (a flood of PDFs or images leaves plain prompts
their own workers), and the one way work is run in them: stopped when its caller is
cancelled (the client left)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TypeVar

T = TypeVar("T")


def _pool(workers: int, name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"chatport-{name}")


@dataclass(frozen=True)
class WorkerPools:
    prompt: ThreadPoolExecutor = field(default_factory=lambda: _pool(2, "prompt"))  # templates and tokenizing
    grammar: ThreadPoolExecutor = field(default_factory=lambda: _pool(2, "grammar-wait"))  # waiting for a compile
    files: ThreadPoolExecutor = field(default_factory=lambda: _pool(1, "files"))  # PDFs and text files
    images: ThreadPoolExecutor = field(default_factory=lambda: _pool(1, "images"))  # decoding and encoding images
    pages: ThreadPoolExecutor = field(default_factory=lambda: _pool(1, "pages"))  # web search result pages read

    def shutdown(self) -> None:
        for pool in (self.prompt, self.grammar, self.files, self.images, self.pages):
            pool.shutdown(wait=False, cancel_futures=True)


async def run_stoppable(pool: ThreadPoolExecutor, work: Callable[[threading.Event], T]) -> T:
    """``work(stop)`` in ``pool``; if the caller is cancelled, ``stop`` is set (the work
    checks it as it goes) and a job that has not started never does."""
    stop = threading.Event()
    job = pool.submit(work, stop)
    try:
        return await asyncio.wrap_future(job)
    except asyncio.CancelledError:
        stop.set()
        job.cancel()
        raise


# The child's niceness: it gets about a tenth of a busy core beside the engine's threads (nice
# 19 starved it under a full load: a Markdown render of 1 CPU-s took over 10 s).
LOW_PRIORITY = 10


class WorkStopped(Exception):
    """The caller left (its stop flag was set) or its time ran out; the child was stopped."""


class LowPriorityProcess:
    """One child process, at a low CPU priority, that runs pure-Python work (PDF text,
    Markdown) away from the server's interpreter: such work holds Python's lock while it
    runs, and in a thread of the server it slowed every stream on 2 cores (small requests
    10x slower while PDFs were read); in a niced child it costs them nothing measurable
    (docs/benchmarks.md). One call at a time; a call whose caller leaves or whose time runs
    out stops the child, which starts again for the next call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    def call(self, work: Callable[..., T], *args: object, stop: threading.Event | None = None, timeout: float = 60.0) -> T:
        """``work(*args)`` in the child (a function importable by name). Raises WorkStopped
        when ``stop`` is set or ``timeout`` passes first; what ``work`` raises is raised here
        as RuntimeError (work should return its refusals as values instead)."""
        with self._lock:
            conn = self._connected()
            conn.send((work, args))
            deadline = time.monotonic() + timeout
            while not conn.poll(0.05):
                if (stop is not None and stop.is_set()) or time.monotonic() > deadline or not self._alive():
                    self._stop()
                    raise WorkStopped(self.name)
            try:
                ok, value = conn.recv()
            except (EOFError, OSError):
                self._stop()
                raise WorkStopped(self.name) from None
            if not ok:
                raise RuntimeError(f"{self.name}: {value}")
            return value  # type: ignore[no-any-return]

    def start(self) -> None:
        """Start the child now (it imports what it runs in about a second), so that the first
        call does not wait for it."""
        with self._lock:
            self._connected()

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _connected(self) -> Connection:
        if self._conn is None or not self._alive():
            self._stop()
            context = multiprocessing.get_context("spawn")  # never fork a process with threads
            parent, child = context.Pipe()
            self._process = context.Process(target=_serve, args=(child,), name=f"chatport-{self.name}", daemon=True)
            self._process.start()
            child.close()
            self._conn = parent
        return self._conn

    def _alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None


def _serve(conn: Connection) -> None:
    """The child: lowest priority, then calls until the parent goes away."""
    os.nice(LOW_PRIORITY)
    while True:
        try:
            work, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((True, work(*args)))
        except Exception as exc:
            conn.send((False, f"{type(exc).__name__}: {exc}"))
