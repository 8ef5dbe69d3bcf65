"""Readiness of an engine, judged from its stats (no model)."""

from __future__ import annotations


def test_readiness_of_an_engine_from_its_stats():
    from chatport.protocol.backend import BackendStats
    from chatport.service.services import STUCK_SECONDS, engine_state

    def stats(**kw) -> BackendStats:
        return BackendStats(
            **{"running": 0, "waiting": 0, "steps": 0, "tokens": 0, "decode_seconds": 0.0, "step_seconds": 0.0, **kw}
        )

    assert engine_state(stats()) == "ok"
    assert engine_state(stats(idle_seconds=STUCK_SECONDS * 10)) == "ok"  # idle is not stuck
    assert engine_state(stats(running=2, idle_seconds=STUCK_SECONDS + 1)).startswith("stuck")
    assert engine_state(stats(waiting=1, idle_seconds=1.0)) == "ok"
    assert engine_state(stats(alive=False)).startswith("stopped")
