"""The async event store contract, run against SQLite and the in-memory twin."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from lamina.errors import ResourceConflict
from lamina.model.events import Condition, EventInvokeConfig, EventState, QueuedEvent
from lamina.store.events import Enqueue, EventStore, Remove, Update
from lamina.store.memory_events import MemoryEventStore
from lamina.store.sqlite.database import Database
from lamina.store.sqlite.events import SqliteEventStore


@pytest.fixture(params=["sqlite", "memory"])
def events(request: pytest.FixtureRequest, tmp_path) -> Iterator[EventStore]:
    if request.param == "memory":
        yield MemoryEventStore()
        return
    db = Database(tmp_path / "lamina.db")
    yield SqliteEventStore(db)
    db.close()


def event(n: int, function: str = "f", **changes) -> QueuedEvent:
    return QueuedEvent(id=f"id-{n}", function=function, qualifier=None, payload=b'{"n": %d}' % n,
                       enqueued=1000.0 + n, next_attempt=1000.0 + n, **changes)  # fmt: skip


def test_enqueued_events_are_pending_in_order_without_payloads(events):
    events.apply_nowait([Enqueue(event(1)), Enqueue(event(2))]).result()
    events.apply_nowait([Enqueue(event(3, "g"))]).result()
    pending = events.pending_events()
    assert [e.id for e in pending] == ["id-1", "id-2", "id-3"]
    assert all(e.payload == b"" and e.state == EventState.QUEUED for e in pending)
    assert events.event_payload("id-2") == b'{"n": 2}'
    assert events.event_payload("nope") is None


def test_update_keeps_the_payload_and_remove_deletes(events):
    events.apply_nowait([Enqueue(event(1)), Enqueue(event(2))]).result()
    retried = event(1).with_changes(payload=b"", attempts=1, next_attempt=2000.0, last_error="Unhandled: x")
    events.apply_nowait([Update(retried), Remove("id-2")]).result()
    (pending,) = events.pending_events()
    assert (pending.id, pending.attempts, pending.next_attempt, pending.last_error) == (
        "id-1",
        1,
        2000.0,
        "Unhandled: x",
    )
    assert events.event_payload("id-1") == b'{"n": 1}'
    assert events.event_payload("id-2") is None


def test_failed_events_are_kept_with_condition_and_listed_per_function(events):
    events.apply_nowait([Enqueue(event(1)), Enqueue(event(2)), Enqueue(event(3, "g"))]).result()
    failed = event(2, attempts=3, state=EventState.FAILED, condition=Condition.RETRIES_EXHAUSTED, last_error="boom")
    events.apply_nowait([Update(failed)]).result()
    (kept,) = events.failed_events("f")
    assert kept.id == "id-2" and kept.payload == b'{"n": 2}' and kept.condition == Condition.RETRIES_EXHAUSTED
    assert kept.attempts == 3 and kept.last_error == "boom"
    assert [e.id for e in events.pending_events()] == ["id-1", "id-3"]
    stats = events.queue_stats("f")
    assert (stats.queued, stats.failed, stats.oldest_enqueued) == (1, 1, 1001.0)


def test_queue_stats_count_events_in_retry(events):
    events.apply_nowait([Enqueue(event(1)), Enqueue(event(2)), Enqueue(event(3))]).result()
    events.apply_nowait([Update(event(2, attempts=1)), Update(event(3, throttles=2))]).result()
    stats = events.queue_stats("f")
    assert (stats.queued, stats.in_retry, stats.failed) == (3, 2, 0)
    assert events.queue_stats("other").queued == 0 and events.queue_stats("other").oldest_enqueued is None


def test_a_duplicate_id_fails_alone(events):
    events.apply_nowait([Enqueue(event(1))]).result()
    with pytest.raises(ResourceConflict):
        events.apply_nowait([Enqueue(event(1))]).result()
    assert [e.id for e in events.pending_events()] == ["id-1"]


def test_ops_of_one_call_are_atomic(events):
    events.apply_nowait([Enqueue(event(1))]).result()
    with pytest.raises(ResourceConflict):
        events.apply_nowait([Enqueue(event(2)), Enqueue(event(1))]).result()  # the second fails: both undone
    assert [e.id for e in events.pending_events()] == ["id-1"]


def test_concurrent_enqueues_all_land(events):
    def worker(base: int) -> None:
        futures = [events.apply_nowait([Enqueue(event(base + i))]) for i in range(50)]
        for future in futures:
            future.result()

    threads = [threading.Thread(target=worker, args=(1000 * t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(events.pending_events()) == 400


def test_event_invoke_configs_round_trip(events):
    a = EventInvokeConfig("f", "$LATEST", 10.0, maximum_retry_attempts=0, on_failure="arn:x")
    b = EventInvokeConfig("f", "live", 11.0, maximum_event_age=60)
    events.put_event_config(a)
    events.put_event_config(b)
    events.put_event_config(EventInvokeConfig("g", "$LATEST", 12.0, maximum_retry_attempts=1))
    assert events.get_event_config("f", "$LATEST") == a
    assert events.list_event_configs("f") == [a, b]
    events.put_event_config(a.with_changes(maximum_retry_attempts=2))
    assert events.get_event_config("f", "$LATEST").maximum_retry_attempts == 2
    assert events.delete_event_config("f", "live") and not events.delete_event_config("f", "live")
    assert events.delete_event_configs("f") == 1
    assert events.list_event_configs("f") == [] and events.get_event_config("g", "$LATEST") is not None


def test_sqlite_queue_survives_reopen(tmp_path):
    db = Database(tmp_path / "lamina.db")
    SqliteEventStore(db).apply_nowait([Enqueue(event(1)), Enqueue(event(2))]).result()
    db.close()
    db = Database(tmp_path / "lamina.db")
    try:
        assert [e.id for e in SqliteEventStore(db).pending_events()] == ["id-1", "id-2"]
    finally:
        db.close()
