"""The scaling rate: how many NEW execution environments a function may start.

Lambda lets each function start at most 1,000 environments every 10 seconds, "refilled
continuously" rather than once per window, and unused rate does not accumulate beyond 1,000
(https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html; reference §6). That is a
token bucket per function: capacity `per_10s`, refilled at `per_10s / 10` tokens a second. A cold
start takes a token; reusing a warm environment takes none. With the bucket empty the invoke is
throttled: 429 with Reason FunctionInvocationRateLimitExceeded (AWS documents the 429 but not
which Reason it carries; this is the ThrottleReason of the model that names a per-function rate).

Called on the event loop only (the pool's thread), so it takes no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lamina.errors import TooManyRequests

SCALING_LIMIT = "FunctionInvocationRateLimitExceeded"
WINDOW_S = 10.0


class ScalingRate:
    """`per_10s` <= 0 switches the limit off."""

    def __init__(self, per_10s: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_10s)
        self.refill_per_s = per_10s / WINDOW_S
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # function -> (tokens, as of)

    def take(self, function: str) -> None:
        """Take one new environment's token for `function`, or raise TooManyRequests."""
        if self.capacity <= 0:
            return
        now = self._clock()
        tokens, then = self._buckets.get(function, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.refill_per_s)
        if tokens < 1.0:
            self._buckets[function] = (tokens, now)
            raise TooManyRequests("Rate Exceeded.", reason=SCALING_LIMIT)
        self._buckets[function] = (tokens - 1.0, now)

    def tokens(self, function: str) -> float:
        """How many new environments `function` could start right now."""
        if self.capacity <= 0:
            return float("inf")
        now = self._clock()
        tokens, then = self._buckets.get(function, (self.capacity, now))
        return min(self.capacity, tokens + (now - then) * self.refill_per_s)
