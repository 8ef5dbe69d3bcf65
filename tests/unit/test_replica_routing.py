"""Prefix-affinity routing and replica counts, without Ray running."""

from __future__ import annotations

import pytest

from chatport.protocol.backend import GenerationRequest, SamplingParams
from chatport.protocol.prompt import Prompt
from chatport.replicas.remote import AFFINITY_TOKENS, affinity_key
from chatport.replicas.router import rank, rendezvous
from chatport.replicas.scale import Scale

REPLICAS = [f"r{i}" for i in range(8)]


def test_a_key_keeps_its_replica_when_another_leaves():
    moved = 0
    for n in range(1000):
        key = f"user-{n}"
        first = rendezvous(key, REPLICAS)[0]
        if first == "r3":
            continue  # its keys must move somewhere
        moved += rendezvous(key, [r for r in REPLICAS if r != "r3"])[0] != first
    assert moved == 0


def test_keys_spread_over_the_replicas():
    counts = {r: 0 for r in REPLICAS}
    for n in range(8000):
        counts[rendezvous(f"user-{n}", REPLICAS)[0]] += 1
    assert min(counts.values()) > 800 and max(counts.values()) < 1200, counts


def test_the_preferred_replica_first_unless_it_is_much_busier():
    loads = {r: 2 for r in REPLICAS}
    preferred = rendezvous("k", REPLICAS)[0]
    assert rank("k", loads, imbalance=8)[0] == [preferred]
    loads[preferred] = 9  # 7 more than the least busy: still preferred
    assert rank("k", loads, imbalance=8)[0] == [preferred]
    loads[preferred] = 10  # 8 more: load decides, the preferred replica comes last
    ranks = rank("k", loads, imbalance=8)
    assert ranks[-1] == [preferred] and preferred not in ranks[0]
    assert rank("k", {r: None for r in REPLICAS}, imbalance=8)[0] == [preferred]  # loads unknown yet


def test_no_key_leaves_the_choice_to_load():
    assert rank(None, {"a": 1, "b": 0}, imbalance=8) == [["a", "b"]]


def request(tokens: list[int], key: str | None = None, scope: str = "default") -> GenerationRequest:
    return GenerationRequest(prompt=Prompt.of_tokens(tokens), params=SamplingParams(), cache_key=key, cache_scope=scope)


def test_affinity_is_the_cache_key_or_the_leading_tokens():
    system = list(range(AFFINITY_TOKENS))
    assert affinity_key(request([*system, 1, 2])) == affinity_key(request([*system, 3]))
    assert affinity_key(request([1, 2, 3])) != affinity_key(request([1, 2, 4]))
    assert affinity_key(request([1], key="t")) == affinity_key(request([2], key="t"))
    assert affinity_key(request([1], key="t")) != affinity_key(request([1, 2, 3]))


def test_affinity_stays_within_a_project():
    # Two projects' identical prompts (or cache keys) are different keys: each project's
    # prefixes can only be reused by its own requests anyway.
    system = list(range(AFFINITY_TOKENS))
    assert affinity_key(request(system, scope="a")) != affinity_key(request(system, scope="b"))
    assert affinity_key(request([1], key="t", scope="a")) != affinity_key(request([1], key="t", scope="b"))


@pytest.mark.parametrize(
    ("replicas", "autoscale", "expected"),
    [(None, None, Scale(1)), (3, None, Scale(3)), (None, "1:4", Scale(None, 1, 4))],
)
def test_replica_counts(replicas, autoscale, expected):
    assert Scale.parse(replicas, autoscale) == expected


@pytest.mark.parametrize(("replicas", "autoscale"), [(0, None), (None, "4:1"), (None, "0:2"), (None, "2"), (None, "a:b")])
def test_bad_replica_counts(replicas, autoscale):
    with pytest.raises(ValueError):
        Scale.parse(replicas, autoscale)
