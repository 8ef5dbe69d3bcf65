"""Where replicas post their engine's stats once a second, and the front reads them all:
Serve's deployment handles reach one replica per call, so a broadcast would not see each."""

from __future__ import annotations

import time

from chatport.replicas.remote import ReplicaReport

# A replica silent for this long is reported down (it posts every second).
STALE_SECONDS = 5.0


class StatsBoard:
    """A Ray actor (created by ``deploy``), one per model."""

    def __init__(self) -> None:
        self._reports: dict[str, ReplicaReport] = {}

    def post(self, report: ReplicaReport) -> None:
        self._reports[report.replica] = report

    def forget(self, replica: str) -> None:
        self._reports.pop(replica, None)

    def reports(self) -> list[ReplicaReport]:
        """Every replica heard from in the last minute, the silent ones included (as down)."""
        now = time.time()
        for name in [n for n, r in self._reports.items() if now - r.at > 60]:
            del self._reports[name]
        return sorted(self._reports.values(), key=lambda r: r.replica)
