"""The limiter: reserved pools, the shared pool, provisioned set-asides, Reasons, thread-safety."""

from __future__ import annotations

import threading
from contextlib import ExitStack

import pytest

from lamina.errors import TooManyRequests
from lamina.invoke.concurrency import ACCOUNT_LIMIT, RESERVED_LIMIT, ConcurrencyLimiter


def hold(limiter: ConcurrencyLimiter, stack: ExitStack, function: str, n: int) -> None:
    for _ in range(n):
        stack.enter_context(limiter.lease(function))


def reason_of(limiter: ConcurrencyLimiter, function: str) -> str:
    with pytest.raises(TooManyRequests) as caught, limiter.lease(function):
        pass
    assert caught.value.message == "Rate Exceeded." and caught.value.status == 429
    return caught.value.reason


def test_unreserved_functions_share_the_account_pool():
    limiter = ConcurrencyLimiter(3)
    with ExitStack() as stack:
        hold(limiter, stack, "a", 2)
        hold(limiter, stack, "b", 1)
        assert limiter.available("a") == 0 and limiter.in_use == 3
        assert reason_of(limiter, "c") == ACCOUNT_LIMIT
    assert limiter.in_use == 0 and limiter.available("c") == 3


def test_a_reserved_pool_is_its_own_and_carved_out_of_the_shared_one():
    limiter = ConcurrencyLimiter(5)
    limiter.set_reserved("r", 2)
    assert limiter.reserved("r") == 2 and limiter.reserved("x") is None
    assert limiter.unreserved() == 3 and limiter.available("x") == 3
    with ExitStack() as stack:
        hold(limiter, stack, "r", 2)
        assert reason_of(limiter, "r") == RESERVED_LIMIT
        hold(limiter, stack, "x", 3)  # the others still have their 3
        assert reason_of(limiter, "y") == ACCOUNT_LIMIT
    with ExitStack() as stack:
        hold(limiter, stack, "x", 3)
        hold(limiter, stack, "r", 2)  # nobody can take the reserved units
        assert limiter.in_use == 5


def test_zero_throttles_everything_and_deleting_the_reservation_frees_it():
    limiter = ConcurrencyLimiter(10)
    limiter.set_reserved("r", 0)
    assert limiter.available("r") == 0
    assert reason_of(limiter, "r") == RESERVED_LIMIT
    limiter.set_reserved("r", None)
    with limiter.lease("r"):
        assert limiter.running("r") == 1


def test_a_reservation_changed_while_invocations_run_keeps_the_counts_right():
    limiter = ConcurrencyLimiter(4)
    with ExitStack() as stack:
        hold(limiter, stack, "f", 2)  # counted in the shared pool
        limiter.set_reserved("f", 3)
        assert limiter.available("f") == 1
        assert limiter.available("g") == 0  # 4 - 3 reserved = 1, and f's two still hold the shared pool
    assert limiter.available("g") == 1 and limiter.available("f") == 3 and limiter.in_use == 0


def test_provisioned_concurrency_of_an_unreserved_function_is_set_aside():
    limiter = ConcurrencyLimiter(4)
    limiter.set_provisioned("p", 2)
    assert limiter.available("q") == 2 and limiter.available("p") == 4
    with ExitStack() as stack:
        hold(limiter, stack, "q", 2)
        assert reason_of(limiter, "q") == ACCOUNT_LIMIT
        hold(limiter, stack, "p", 2)  # its set-aside is still there
        assert reason_of(limiter, "p") == ACCOUNT_LIMIT
    limiter.set_reserved("p", 3)  # with a reservation, provisioned lives inside it
    assert limiter.available("q") == 1
    limiter.forget("p")
    assert limiter.available("q") == 4


def test_leases_are_thread_safe_and_never_exceed_the_limit():
    limiter = ConcurrencyLimiter(8)
    limiter.set_reserved("r", 3)
    peak = {"r": 0, "all": 0}
    throttles = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def worker(function: str) -> None:
        start.wait()
        for _ in range(300):
            try:
                with limiter.lease(function), lock:
                    peak["all"] = max(peak["all"], limiter.in_use)
                    if function == "r":
                        peak["r"] = max(peak["r"], limiter.running("r"))
            except TooManyRequests as exc:
                throttles.append(exc.reason)

    threads = [threading.Thread(target=worker, args=("r" if i % 2 else f"u{i}",)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert limiter.in_use == 0 and limiter.running("r") == 0 and limiter.available("x") == 5
    assert peak["r"] <= 3 and peak["all"] <= 8
    assert set(throttles) <= {RESERVED_LIMIT, ACCOUNT_LIMIT}
