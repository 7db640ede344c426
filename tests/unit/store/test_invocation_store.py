"""The InvocationStore contract, against SqliteStore and MemoryStore alike."""

from __future__ import annotations

import pytest

from lamina.model.invocation import Outcome
from lamina.store.base import CostRow

from .conftest import invocation


def test_round_trip(store):
    original = invocation(
        request_id="r1",
        cold=True,
        init_duration_ms=150.25,
        outcome=Outcome.TIMEOUT,
        error_type="Sandbox.Timedout",
        log_stream="2024/01/01/[$LATEST]abc",
    )
    store.record_invocation_nowait(original).result(timeout=10)
    (got,) = store.list_invocations()
    assert got == original
    assert type(got.outcome) is Outcome and got.cold is True


def test_list_newest_first_with_filters(store):
    futures = [
        store.record_invocation_nowait(invocation("a", start=10.0, request_id="a10")),
        store.record_invocation_nowait(invocation("b", start=20.0, request_id="b20")),
        store.record_invocation_nowait(invocation("a", start=30.0, request_id="a30")),
        store.record_invocation_nowait(invocation("a", start=30.0, request_id="a30-second")),
    ]
    for f in futures:
        f.result(timeout=10)
    ids = lambda rows: [r.request_id for r in rows]  # noqa: E731
    assert ids(store.list_invocations()) == ["a30-second", "a30", "b20", "a10"]  # ties: last recorded first
    assert ids(store.list_invocations(function="a")) == ["a30-second", "a30", "a10"]
    assert ids(store.list_invocations(since=20.0)) == ["a30-second", "a30", "b20"]
    assert ids(store.list_invocations(function="a", since=11, limit=1)) == ["a30-second"]
    assert store.list_invocations(function="nobody") == []


def test_cost_by_function(store):
    rows = [
        invocation("a", start=1.0, memory_size=128, billed_ms=100),
        invocation("a", start=2.0, memory_size=1024, billed_ms=1000),
        invocation("b", start=3.0, memory_size=1769, billed_ms=7),
        invocation("a", start=4.0, memory_size=10240, billed_ms=900_000),
    ]
    for r in rows:
        store.record_invocation_nowait(r).result(timeout=10)
    cost = store.cost_by_function()
    assert [c.function for c in cost] == ["a", "b"]
    a, b = cost
    assert (a.requests, a.billed_ms) == (3, 100 + 1000 + 900_000)
    assert a.gb_seconds == pytest.approx(128 / 1024 * 0.1 + 1.0 + 10 * 900)
    assert b == CostRow("b", 1, 7, pytest.approx(1769 / 1024 * 0.007))
    assert [(c.function, c.requests) for c in store.cost_by_function(since=3.0)] == [("a", 1), ("b", 1)]
    assert store.cost_by_function(since=100.0) == []
