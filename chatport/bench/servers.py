"""Servers under test, started as subprocesses on loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx


@dataclass
class RunningServer:
    name: str
    base_url: str
    process: subprocess.Popen
    model: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(server: RunningServer, probe: str, limit: float = 180.0) -> RunningServer:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with code {server.process.returncode}")
        try:
            if httpx.get(server.base_url + probe, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{server.name} did not start")


def start_chatport(model_path: str, model_id: str, *, max_seqs: int, ctx_size: int, log) -> RunningServer:
    port = free_port()
    cmd = [
        sys.executable, "-m", "chatport", "serve", "--model", model_path, "--model-id", model_id,
        "--port", str(port), "--max-seqs", str(max_seqs), "--ctx-size", str(ctx_size),
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return _wait(RunningServer("chatport", f"http://127.0.0.1:{port}", proc, model_id), "/health")


def start_llama_cpp_server(model_path: str, model_id: str, *, ctx_size: int, log) -> RunningServer:
    port = free_port()
    cmd = [
        sys.executable, "-m", "chatport.bench.llama_cpp_server", "--model", model_path, "--model_alias", model_id,
        "--port", str(port), "--n_ctx", str(ctx_size), "--n_threads", str(os.cpu_count() or 1),
        # Queue concurrent requests instead of cutting the running one off (its default).
        "--interrupt_requests", "False",
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return _wait(RunningServer("llama-cpp-python", f"http://127.0.0.1:{port}", proc, model_id), "/v1/models")


def start_store_server(model_path: str, model_id: str, store_url: str, *, log) -> RunningServer:
    port = free_port()
    cmd = [
        sys.executable, "-m", "chatport", "serve", "--model", model_path, "--model-id", model_id,
        "--port", str(port), "--max-seqs", "1", "--ctx-size", "512", "--store", store_url,
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return _wait(RunningServer("chatport", f"http://127.0.0.1:{port}", proc, model_id), "/health")
