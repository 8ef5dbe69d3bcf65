"""The bench's view of the servers it started: CPU used by a server with its worker
processes (Ray's replicas run in children), which it waits to go quiet between runs."""

from __future__ import annotations

import subprocess
import sys

import psutil

from chatport.bench.servers import cpu_seconds

BURN = "import time\nwhile time.process_time() < 0.3: pass\nprint('burnt', flush=True)\ntime.sleep(60)"


def test_cpu_seconds_counts_the_server_s_worker_processes():
    launcher = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BURN!r}])"
    parent = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "burnt"
        # The parent itself only waits: the 0.3 s are its child's.
        assert psutil.Process(parent.pid).cpu_times().user < 0.3 <= cpu_seconds(parent.pid)
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()


def test_a_process_that_is_gone_has_used_nothing():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cpu_seconds(gone.pid) == 0.0
