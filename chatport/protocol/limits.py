"""A project's rate limits, as OpenAI sets them per organization and project: requests and
tokens per minute, and requests at once. None means no limit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimits:
    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens per minute (prompt + completion, as usage counts them)
    max_concurrent: int | None = None  # requests in flight at once

    @property
    def any(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.max_concurrent is not None


NO_LIMITS = RateLimits()
