"""Servers under test, started as subprocesses on loopback ports (by the bench and the tests)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import httpx

from chatport.engine.llama import repack_is_safe


@dataclass
class RunningServer:
    name: str
    base_url: str  # the root, without /v1
    process: subprocess.Popen[bytes]
    log_path: str | None = None

    @property
    def api(self) -> str:
        return self.base_url + "/v1"

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log(self) -> str:
        if self.log_path is None:
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def cpu_seconds(pid: int) -> float:
    """CPU time a process and its descendants (Ray's workers) have used so far."""
    import psutil

    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    used = 0.0
    for member in family:
        with contextlib.suppress(psutil.Error):  # one that ended meanwhile
            times = member.cpu_times()
            used += times.user + times.system
    return used


def wait_until_quiet(servers: list[RunningServer], *, window: float = 0.25, idle: float = 0.01, timeout: float = 10.0) -> None:
    """Wait until no server uses more than ``idle`` CPU seconds in a ``window``: one server's
    work left over from its own run (chatport keeps its free slots' KV while idle) must not
    land on the next server's measured run."""
    deadline = time.monotonic() + timeout
    before = [cpu_seconds(s.process.pid) for s in servers]
    while time.monotonic() < deadline:
        time.sleep(window)
        after = [cpu_seconds(s.process.pid) for s in servers]
        if all(b - a <= idle for a, b in zip(before, after, strict=True)):
            return
        before = after


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def launch(
    name: str, cmd: list[str], port: int, probe: str, log_path: str, *, env: dict[str, str] | None = None
) -> RunningServer:
    """Start ``cmd`` (which listens on ``port``), its output going to ``log_path``, and wait
    until ``probe`` answers 200."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    server = RunningServer(name, f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}:\n{server.log()[-4000:]}")
        try:
            if httpx.get(server.base_url + probe, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} did not start:\n{server.log()[-4000:]}")


def start_chatport(*args: str, log_path: str, env: dict[str, str] | None = None) -> RunningServer:
    """``chatport serve ARGS`` on a free loopback port. Unless ARGS name them, its store and
    prompt cache live in a temporary directory, never in the user's data directory (whose
    database an older chatport cannot open once a newer one has migrated it)."""
    port = free_port()
    here = tempfile.mkdtemp(prefix="chatport-bench-")
    if "--store" not in args:
        args = ("--store", f"sqlite:///{here}/chatport-{port}.db", *args)
    if "--cache-dir" not in args:
        args = ("--cache-dir", os.path.join(here, f"chatport-{port}-prompt-cache"), *args)
    cmd = [sys.executable, "-m", "chatport", "serve", "--port", str(port), *args]
    return launch("chatport", cmd, port, "/health", log_path, env=env)


def start_llama_cpp_server(model_path: str, model_id: str, *, ctx_size: int, log_path: str) -> RunningServer:
    port = free_port()
    cmd = [
        sys.executable, "-m", "chatport.bench.llama_cpp_server", "--model", model_path, "--model_alias", model_id,
        "--port", str(port), "--n_ctx", str(ctx_size), "--n_threads", str(os.cpu_count() or 1),
        # Queue concurrent requests instead of cutting the running one off (its default).
        "--interrupt_requests", "False",
    ]  # fmt: skip
    return launch("llama-cpp-python", cmd, port, "/v1/models", log_path)


def start_llama_server(
    binary: str, model_path: str, model_id: str, *, ctx_size: int, parallel: int, log_path: str, extra: list[str] | None = None
) -> RunningServer:
    """llama.cpp's own server (scripts/build-llama-server) on the same GGUF, set up as
    chatport is: ``parallel`` slots of ``ctx_size`` tokens each, every core; ``extra``:
    more arguments (later ones win)."""
    port = free_port()
    cmd = [
        binary, "--model", model_path, "--alias", model_id, "--host", "127.0.0.1", "--port", str(port),
        "--ctx-size", str(ctx_size * parallel), "--parallel", str(parallel),
        "--threads", str(os.cpu_count() or 1), "--no-webui",
        # Its AMX kernels crash as chatport's would (engine/llama.py): off where the CPU has AMX.
        *([] if repack_is_safe() else ["--no-repack"]), *(extra or []),
    ]  # fmt: skip
    return launch("llama-server", cmd, port, "/health", log_path)
