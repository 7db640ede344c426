"""The scaling rate's token bucket, on a fake clock."""

from __future__ import annotations

import pytest

from lamina.errors import TooManyRequests
from lamina.runtime.scaling import SCALING_LIMIT, ScalingRate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_rate_then_a_throttle_with_its_reason():
    clock = Clock()
    rate = ScalingRate(3, clock)
    for _ in range(3):
        rate.take("f")
    with pytest.raises(TooManyRequests) as caught:
        rate.take("f")
    assert caught.value.reason == SCALING_LIMIT == "FunctionInvocationRateLimitExceeded"
    rate.take("g")  # per function: another one has its own bucket


def test_refilled_continuously_never_beyond_the_capacity():
    clock = Clock()
    rate = ScalingRate(10, clock)  # 1 token a second
    for _ in range(10):
        rate.take("f")
    clock.now += 0.5
    with pytest.raises(TooManyRequests):
        rate.take("f")  # half a token
    clock.now += 0.5
    rate.take("f")  # a whole one now, not after a full 10 s window
    clock.now += 3600
    assert rate.tokens("f") == 10  # unused rate does not accumulate
    for _ in range(10):
        rate.take("f")
    with pytest.raises(TooManyRequests):
        rate.take("f")


def test_zero_switches_the_limit_off():
    rate = ScalingRate(0, Clock())
    for _ in range(1000):
        rate.take("f")
