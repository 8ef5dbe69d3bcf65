"""Prefix-affinity routing on Ray Serve's public request-router API: a request goes to the
replica its affinity key hashes to (rendezvous hashing, so a replica that leaves or joins
moves only its own share of keys), unless that replica is much busier than the least busy
one, when load decides. Its KV cache then holds the prefix the request shares with earlier
ones (the same ``prompt_cache_key``, or the same leading prompt tokens)."""

from __future__ import annotations

import hashlib
from typing import Any

from ray.serve.request_router import FIFOMixin, PendingRequest, RequestRouter, RunningReplica

# "Much busier": this many more requests in flight than the least busy replica.
DEFAULT_IMBALANCE = 8


def rendezvous(key: str, replicas: list[str]) -> list[str]:
    """``replicas`` ordered by preference for ``key`` (highest random weight first)."""
    return sorted(replicas, key=lambda r: hashlib.blake2b(f"{key}|{r}".encode(), digest_size=8).digest(), reverse=True)


def rank(key: str | None, loads: dict[str, int | None], imbalance: int) -> list[list[str]]:
    """Ranks of replica ids, best first (Ray tries a rank's replicas before the next rank's).
    ``loads``: requests in flight per replica, None where not known yet."""
    names = list(loads)
    if key is None or len(names) < 2:
        return [names]
    order = rendezvous(key, names)
    known = [v for v in loads.values() if v is not None]
    preferred = loads[order[0]]
    if known and preferred is not None and preferred - min(known) >= imbalance:
        by_load = sorted(order[1:], key=lambda r: (loads[r] is None, loads[r] or 0))
        return [by_load, [order[0]]]
    return [[order[0]], order[1:]]


class PrefixAffinityRouter(FIFOMixin, RequestRouter):  # type: ignore[misc]  # Ray is not type-checked
    def initialize_state(self, imbalance: int = DEFAULT_IMBALANCE, **kwargs: Any) -> None:
        self.imbalance = imbalance

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None
    ) -> list[list[RunningReplica]]:
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        key = None
        if pending_request is not None and pending_request.args and isinstance(pending_request.args[0], str):
            key = pending_request.args[0]
        cache = self.replica_queue_len_cache
        loads = {name: cache.get(r.replica_id) for name, r in by_id.items()}
        return [
            [by_id[name] for name in group] for group in rank(key, loads, getattr(self, "imbalance", DEFAULT_IMBALANCE)) if group
        ]
