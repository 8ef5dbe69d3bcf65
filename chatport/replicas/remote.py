"""What crosses between the front and the replicas: plain, picklable values. A compiled
grammar (an llguidance matcher) cannot travel, so the front sends its source and each
replica compiles it once (``RemoteGrammar``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from chatport.protocol.backend import BackendFailure, BackendStats, GenerationRequest

# Prompts that share this many leading tokens are sent to the same replica: a long system
# prompt (the workload prefix affinity is for) fills it, while short prompts differ within
# it and spread over the replicas.
AFFINITY_TOKENS = 256


@dataclass(frozen=True)
class RemoteGrammar:
    """A grammar the front has checked; replicas compile it for their own vocabulary."""

    source: str


@dataclass(frozen=True)
class Admitted:
    """The first item of every generation stream: the request holds its slots."""

    cached_tokens: int
    replica: str


@dataclass(frozen=True)
class Failed:
    """A backend failure, sent as a value so its type survives the trip."""

    failure: BackendFailure


@dataclass(frozen=True)
class ReplicaReport:
    replica: str
    pid: int
    stats: BackendStats
    requests: int  # generation requests this replica has taken since it started
    at: float  # time.time() of the report


def affinity_key(request: GenerationRequest) -> str:
    """``prompt_cache_key`` when given (as OpenAI routes by it), else the prompt's leading
    tokens; either within the request's cache scope (its project), whose prefixes are the
    only ones it can reuse."""
    scope = hashlib.blake2b(request.cache_scope.encode(), digest_size=8).hexdigest()
    if request.cache_key:
        return f"key:{scope}:{request.cache_key}"
    lead = request.prompt.cells[:AFFINITY_TOKENS]
    return f"lead:{scope}:" + hashlib.blake2b(repr(lead).encode(), digest_size=16).hexdigest()
