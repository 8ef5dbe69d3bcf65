"""A simulation of chatport on many replicas: throughput and prefix-cache hit rate under a
workload of many users who each repeat a long system prompt, routed round-robin or by
prefix affinity with a load bound (chatport's ``PrefixAffinityRouter``).

    python scripts/scaling_model.py                 # the table in docs/scaling.md

Each replica is one engine: a request costs it ``prefill`` seconds per prompt token not in
its cache plus ``decode`` seconds per output token (rates measured on this machine, one
replica per 2 cores: see docs/scaling.md), and it serves its queue in arrival order. A
replica's cache holds the most recently used prefixes of ``cache_prefixes`` users (its
slots plus its host-memory prompt cache). Requests arrive as a Poisson stream at a fixed
fraction of what the replicas could serve if every prefix missed: at twice that rate every
replica is always busy and the delivered throughput is the cluster's capacity under the
policy; at 70% the latencies show what queueing costs.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import random
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    users_per_replica: int = 40
    system_tokens: int = 1000  # each user's own long system prompt
    turn_tokens: int = 60  # the new part of each request
    output_tokens: int = 120
    prefill: float = 1 / 240  # seconds per uncached prompt token (SmolLM2 Q4_1, 2 cores)
    decode: float = 1 / 200  # seconds per output token at a full batch (16 streams)
    cache_prefixes: int = 24  # users' prefixes one replica keeps (16 slots + host memory)
    load: float = 0.9  # arrival rate as a fraction of the all-miss capacity
    imbalance: int = 8  # the router's load bound: queue length above the least busy replica


@dataclass
class Result:
    replicas: int
    policy: str
    hit_rate: float
    throughput: float  # requests per second delivered
    p50_latency: float
    p99_latency: float


def simulate(replicas: int, policy: str, w: Workload, requests_per_replica: int = 400, seed: int = 1) -> Result:
    rng = random.Random(seed)
    users = w.users_per_replica * replicas
    miss_cost = (w.system_tokens + w.turn_tokens) * w.prefill + w.output_tokens * w.decode
    rate = w.load * replicas / miss_cost
    caches: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(replicas)]
    free_at = [0.0] * replicas  # when each replica finishes its queue
    queued: list[list[float]] = [[] for _ in range(replicas)]  # finish times of requests not yet done
    now, served_tokens, prompt_tokens, latencies = 0.0, 0, 0, []
    next_rr = 0
    total = requests_per_replica * replicas
    for _ in range(total):
        now += rng.expovariate(rate)
        user = rng.randrange(users)
        for q in queued:
            while q and q[0] <= now:
                heapq.heappop(q)
        if policy == "round-robin":
            target = next_rr
            next_rr = (next_rr + 1) % replicas
        else:
            target = _affinity(user, replicas, queued, w.imbalance)
        cache = caches[target]
        hit = user in cache
        if hit:
            cache.move_to_end(user)
        else:
            cache[user] = None
            if len(cache) > w.cache_prefixes:
                cache.popitem(last=False)
        uncached = w.turn_tokens + (0 if hit else w.system_tokens)
        served_tokens += w.system_tokens if hit else 0
        prompt_tokens += w.system_tokens + w.turn_tokens
        start = max(now, free_at[target])
        free_at[target] = start + uncached * w.prefill + w.output_tokens * w.decode
        heapq.heappush(queued[target], free_at[target])
        latencies.append(free_at[target] - now)
    latencies.sort()
    makespan = max(free_at)
    return Result(
        replicas,
        policy,
        served_tokens / prompt_tokens,
        total / makespan,
        latencies[len(latencies) // 2],
        latencies[int(len(latencies) * 0.99)],
    )


def _affinity(user: int, replicas: int, queued: list[list[float]], imbalance: int) -> int:
    """Rendezvous hashing, unless the preferred replica's queue is ``imbalance`` longer
    than the shortest (then the shortest), as chatport's router ranks them."""
    preferred = max(range(replicas), key=lambda r: hashlib.blake2b(f"{user}|{r}".encode(), digest_size=8).digest())
    shortest = min(range(replicas), key=lambda r: len(queued[r]))
    if len(queued[preferred]) - len(queued[shortest]) >= imbalance:
        return shortest
    return preferred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", default="8,32,128")
    parser.add_argument("--imbalance", type=int, default=Workload.imbalance, help="the router's load bound")
    args = parser.parse_args()
    saturated, steady = Workload(load=2.0, imbalance=args.imbalance), Workload(load=0.7, imbalance=args.imbalance)
    print(
        "| replicas | routing | cache hit rate | throughput, saturated (req/s) | per replica "
        "| p50 / p99 latency at 70% load (s) |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for n in (int(x) for x in args.replicas.split(",")):
        for policy in ("round-robin", "prefix affinity"):
            full = simulate(n, policy, saturated)
            calm = simulate(n, policy, steady)
            print(
                f"| {n} | {policy} | {full.hit_rate:.0%} | {full.throughput:.1f} | {full.throughput / n:.2f} "
                f"| {calm.p50_latency:.1f} / {calm.p99_latency:.1f} |"
            )


if __name__ == "__main__":
    main()
