"""The hot writes in batches: log appends and invocation records written set-wise by the writer,
with cached group and stream ids. Each test queues its writes behind a blocked writer so they
land in one batch."""

from __future__ import annotations

import random
import sqlite3
import threading
import time

import pytest

from lamina.store.base import LogEvent
from lamina.store.sqlite import SqliteStore
from lamina.store.sqlite.logs import LogAppender

from ..conftest import invocation
from .holding import hold_writer

GROUP = "/aws/lambda/fn"


@pytest.fixture
def store(tmp_path):
    s = SqliteStore.open(tmp_path / "lamina.db")
    yield s
    s.close()


def queued(store, n):
    """Wait until `n` writes are queued (for writes submitted from other threads)."""
    deadline = time.monotonic() + 10
    while store._db.writer._queue.qsize() < n:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def events(*pairs):
    return [LogEvent(ts, message) for ts, message in pairs]


def stream_stats(store, group=GROUP):
    return {i.name: (i.first_event_ms, i.last_event_ms, i.stored_bytes) for i in store.list_log_streams(group)}


def group_bytes(store, group=GROUP):
    rows = store._db.query("SELECT stored_bytes FROM log_groups WHERE name = ?", (group,))
    return rows[0][0] if rows else None


def all_events(store):
    """(stream, timestamp, message) of every event, in id (commit) order."""
    return store._db.query(
        "SELECT s.name, e.ts_ms, e.message FROM log_events e JOIN log_streams s ON s.id = e.stream_id ORDER BY e.id"
    )


def test_one_batch_of_appends_and_records_commits_together(store):
    release = hold_writer(store._db.writer)
    futures = []
    for i in range(20):
        stream = f"env-{i % 4}"
        futures.append(store.append_logs_nowait(GROUP, stream, events((i, f"START {i}"), (i, "ü"), (i + 1, "END"))))
        futures.append(store.record_invocation_nowait(invocation(request_id=str(i), log_stream=stream)))
    release.set()
    assert [f.result(10) for f in futures] == [None] * 40
    stats = store.stats()
    assert (stats.commits, stats.failed, stats.largest_batch) == (2, 0, 40)
    assert [r.request_id for r in store.list_invocations(limit=100)] == [str(i) for i in reversed(range(20))]
    assert len(store.get_log_events(GROUP)) == 60


def test_a_bad_append_fails_alone(store):
    release = hold_writer(store._db.writer)
    before = store.append_logs_nowait(GROUP, "s1", events((1, "a")))
    bad = store.append_logs_nowait(GROUP, "bad", events((1, "fine"), (2, "lone surrogate \ud800")))
    record = store.record_invocation_nowait(invocation(request_id="r"))
    after = store.append_logs_nowait(GROUP, "s2", events((2, "b")))
    release.set()
    before.result(10), record.result(10), after.result(10)
    with pytest.raises(UnicodeEncodeError):  # not UTF-8: SQLite could not store it either
        bad.result(10)
    assert [(s, m) for s, _, m in all_events(store)] == [("s1", "a"), ("s2", "b")]
    assert set(stream_stats(store)) == {"s1", "s2"}  # the bad append's new stream was rolled back too
    assert [r.request_id for r in store.list_invocations()] == ["r"]
    assert store.stats().failed == 1
    # The ids cached while the failed attempt ran are gone: the stream is created afresh.
    store.append_logs_nowait(GROUP, "bad", events((3, "fine now"))).result(10)
    assert stream_stats(store)["bad"] == (3, 3, 8)


def test_a_bad_record_fails_alone(store):
    release = hold_writer(store._db.writer)
    good = [store.record_invocation_nowait(invocation(request_id=str(i))) for i in range(3)]
    bad = store.record_invocation_nowait(invocation(request_id=None))  # NOT NULL
    logs = store.append_logs_nowait(GROUP, "s", events((1, "x")))
    good.append(store.record_invocation_nowait(invocation(request_id="3")))
    release.set()
    for f in good:
        f.result(10)
    logs.result(10)
    with pytest.raises(sqlite3.IntegrityError):
        bad.result(10)
    assert sorted(r.request_id for r in store.list_invocations()) == ["0", "1", "2", "3"]
    assert len(store.get_log_events(GROUP)) == 1


def test_stream_and_group_stats_are_summed_over_a_batch(store, tmp_path):
    rng = random.Random(7)
    appends = []
    for _ in range(200):
        stream = f"s{rng.randrange(5)}"
        batch = [
            (rng.randrange(1_000, 2_000), rng.choice(["x", "héllo", "日本", ""]) * rng.randrange(3))
            for _ in range(rng.randrange(4))
        ]
        appends.append((stream, batch))
    release = hold_writer(store._db.writer)
    futures = [store.append_logs_nowait(GROUP, stream, events(*batch)) for stream, batch in appends]
    release.set()
    for f in futures:
        f.result(10)
    assert store.stats().largest_batch == 200

    expected: dict[str, tuple[int | None, int | None, int]] = {}
    for stream, batch in appends:
        first, last, size = expected.get(stream, (None, None, 0))
        for ts, message in batch:
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)
            size += len(message.encode())
        expected[stream] = (first, last, size)
    assert stream_stats(store) == expected
    assert group_bytes(store) == sum(size for _, _, size in expected.values())
    assert [(s, ts, m) for s, ts, m in all_events(store)] == [
        (stream, ts, m) for stream, batch in appends for ts, m in batch
    ]  # ids follow the queue order

    # The same appends one at a time give the same streams.
    one_by_one = SqliteStore.open(tmp_path / "one-by-one.db")
    try:
        for stream, batch in appends:
            one_by_one.append_logs_nowait(GROUP, stream, events(*batch)).result(10)
        assert stream_stats(one_by_one) == expected
        assert all_events(one_by_one) == all_events(store)
    finally:
        one_by_one.close()


def test_stats_without_update_from(store, monkeypatch):
    monkeypatch.setattr(LogAppender, "update_from", False)  # SQLite before 3.33
    release = hold_writer(store._db.writer)
    futures = [store.append_logs_nowait(GROUP, f"s{i % 3}", events((i, "ab"), (100 - i, "c"))) for i in range(30)]
    release.set()
    for f in futures:
        f.result(10)
    assert stream_stats(store) == {"s0": (0, 100, 30), "s1": (1, 99, 30), "s2": (2, 98, 30)}
    assert group_bytes(store) == 90


def test_delete_and_recreate_in_one_batch(store):
    store.append_logs_nowait(GROUP, "s1", events((1, "old"))).result(10)  # cached ids
    release = hold_writer(store._db.writer)
    doomed = store.append_logs_nowait(GROUP, "s1", events((2, "doomed")))
    deleted: list[bool] = []
    deleter = threading.Thread(target=lambda: deleted.append(store.delete_log_group(GROUP)))
    deleter.start()
    queued(store, 2)
    kept = store.append_logs_nowait(GROUP, "s1", events((3, "new")))
    other = store.append_logs_nowait(GROUP, "s2", events((4, "new too")))
    release.set()
    doomed.result(10), kept.result(10), other.result(10)
    deleter.join(10)
    assert deleted == [True]
    assert [(s, m) for s, _, m in all_events(store)] == [("s1", "new"), ("s2", "new too")]
    assert stream_stats(store) == {"s1": (3, 3, 3), "s2": (4, 4, 7)}
    assert group_bytes(store) == 10


def test_delete_and_recreate_across_batches(store):
    for round_ in range(3):
        store.append_logs_nowait(GROUP, "s", events((round_, "abc"))).result(10)
        store.append_logs_nowait("/other", "s", events((round_, "x"))).result(10)
        assert stream_stats(store) == {"s": (round_, round_, 3)}
        assert store.delete_log_group(GROUP) is True
        assert store.list_log_streams(GROUP) == []
    assert stream_stats(store, "/other") == {"s": (0, 2, 3)}  # never deleted: one stream all along


def test_a_stale_cached_id_is_caught_and_the_batch_retried(store):
    store.append_logs_nowait(GROUP, "s1", events((1, "a"))).result(10)
    appender = store._db.batcher(LogAppender)
    appender._groups[GROUP][1]["s1"] = 999_999  # as if a stream row had vanished behind its back
    store.append_logs_nowait(GROUP, "s1", events((2, "b"))).result(10)
    assert [(s, m) for s, _, m in all_events(store)] == [("s1", "a"), ("s1", "b")]
    assert stream_stats(store) == {"s1": (1, 2, 2)}
    assert store.stats().failed == 0


def test_the_id_cache_is_bounded(store, monkeypatch):
    monkeypatch.setattr(LogAppender, "max_cached_streams", 3)
    for round_ in range(2):
        futures = [store.append_logs_nowait(GROUP, f"s{i}", events((round_, "x"))) for i in range(10)]
        for f in futures:
            f.result(10)
    assert stream_stats(store) == {f"s{i}": (0, 1, 2) for i in range(10)}
    appender = store._db.batcher(LogAppender)
    assert sum(len(ids) for _, ids in appender._groups.values()) <= 3


def test_store_objects_over_one_database_share_the_cache(store):
    other = SqliteStore(store._db)
    assert other._appender is store._appender and other._inserter is store._inserter
