"""How many engine replicas a model runs (--replicas, --autoscale); no Ray needed to read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Fixed ``replicas``, or autoscaled between ``minimum`` and ``maximum`` (then
    ``replicas`` is None)."""

    replicas: int | None = 1
    minimum: int = 1
    maximum: int = 1

    @classmethod
    def parse(cls, replicas: int | None, autoscale: str | None) -> Scale:
        if autoscale:
            low, sep, high = autoscale.partition(":")
            if not sep or not low.isdigit() or not high.isdigit() or not 0 < int(low) <= int(high):
                raise ValueError(f"--autoscale takes MIN:MAX with 0 < MIN <= MAX, not {autoscale!r}")
            return cls(None, int(low), int(high))
        if replicas is not None and replicas < 1:
            raise ValueError(f"--replicas takes a positive count, not {replicas}")
        return cls(replicas or 1)
