"""Percentiles of latency samples (milliseconds)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks; `ordered` must be sorted."""
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p90: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        ordered = sorted(samples)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            n=len(ordered),
            p50=percentile(ordered, 0.50),
            p90=percentile(ordered, 0.90),
            p99=percentile(ordered, 0.99),
            min=ordered[0],
            max=ordered[-1],
        )


def spread(groups: Sequence[Sequence[float]]) -> tuple[float, float]:
    """The lowest and highest median among repeated rounds: how much the p50 moved with noise."""
    medians = [percentile(sorted(g), 0.5) for g in groups if g]
    return (min(medians), max(medians)) if medians else (math.nan, math.nan)


def rounds(samples: Sequence[float], n: int) -> list[Sequence[float]]:
    """`samples` cut into `n` consecutive rounds of (nearly) equal size."""
    size = max(1, -(-len(samples) // n))
    return [samples[i : i + size] for i in range(0, len(samples), size)]
