"""The SQLite stream store's own promises: counters across batches, rollbacks and restarts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lamina.errors import StreamNotFound
from lamina.sources.streams import NewStream, SqliteStreamStore, StreamMode
from lamina.sources.streams.model import even_ranges
from lamina.store.sqlite import SqliteStore
from tests.unit.store.sqlite.holding import hold_writer


def new(name: str, shards: int = 2) -> NewStream:
    return NewStream(name, StreamMode.PROVISIONED, 24, 1024, even_ranges(shards), {}, 0)


def test_a_bad_append_fails_alone_and_counters_stay_consecutive(tmp_path):
    store = SqliteStore.open(tmp_path / "lamina.db")
    try:
        streams = SqliteStreamStore(store.database)
        shard = streams.create_stream(new("s")).shards[0].id
        futures = [streams.append_nowait([shard if i != 5 else 987654], [("k", b"%d" % i)]) for i in range(20)]
        outcomes = [f.exception() for f in futures]
        assert isinstance(outcomes[5], StreamNotFound)
        assert all(e is None for i, e in enumerate(outcomes) if i != 5)
        counters = [f.result().counters[0] for i, f in enumerate(futures) if i != 5]
        assert counters == sorted(counters) and len(set(counters)) == 19
        assert [r.counter for r in streams.read(shard, 0, 100)] == counters
    finally:
        store.close()


def test_counters_are_never_reused_after_deletes_and_restarts(tmp_path):
    store = SqliteStore.open(tmp_path / "lamina.db")
    streams = SqliteStreamStore(store.database)
    shard = streams.create_stream(new("s")).shards[0].id
    first = streams.append_nowait([shard] * 3, [("k", b"a")] * 3).result().counters
    streams.delete_stream("s")
    store.close()

    store = SqliteStore.open(tmp_path / "lamina.db")
    try:
        streams = SqliteStreamStore(store.database)
        assert streams.last_counter() == first[-1]
        shard = streams.create_stream(new("s")).shards[0]
        assert shard.starting_counter == first[-1] + 1
        again = streams.append_nowait([shard.id], [("k", b"b")]).result().counters
        assert again == [first[-1] + 1]
    finally:
        store.close()


def test_arrival_time_never_goes_backwards(tmp_path):
    now = [1_000.0]
    store = SqliteStore.open(tmp_path / "lamina.db")
    try:
        streams = SqliteStreamStore(store.database, clock=lambda: now[0])
        shard = streams.create_stream(new("s", 1)).shards[0].id
        a = streams.append_nowait([shard], [("k", b"a")]).result()
        now[0] = 500.0  # the wall clock steps back
        b = streams.append_nowait([shard], [("k", b"b")]).result()
        assert [r.arrival_ms for r in streams.read(shard, 0, 10)] == [1_000_000, 1_000_000]
        assert streams.first_counter_at(shard, 1_000_000) == a.counters[0] == b.counters[0] - 1
    finally:
        store.close()


def test_two_writers_on_one_database_share_counters_and_see_each_others_reshards(tmp_path):
    """Two stores, each with its own writer connection (as two server processes would have): the
    appenders' cached high-water marks and open-shard sets must not outlive the other's commits."""
    from lamina.sources.streams.base import ShardClosed
    from lamina.sources.streams.resharding import NewShard

    first = SqliteStore.open(tmp_path / "lamina.db")
    second = SqliteStore.open(tmp_path / "lamina.db")
    try:
        a, b = SqliteStreamStore(first.database), SqliteStreamStore(second.database)
        shards = [s.id for s in a.create_stream(new("s", 2)).shards]
        counters = []
        for n in range(30):  # interleaved: each store's cache is stale after the other's commit
            store = a if n % 2 else b
            counters += store.append_nowait([shards[n % 2]] * 3, [("k", b"%d" % n)] * 3).result(10).counters
        assert len(set(counters)) == 90 and counters == sorted(counters)
        seen = a.read(shards[0], 0, 1000) + a.read(shards[1], 0, 1000)
        assert sorted(r.counter for r in seen) == counters
        arrivals = [r.arrival_ms for r in sorted(seen, key=lambda r: r.counter)]
        assert arrivals == sorted(arrivals)
        b.append_nowait([shards[0]], [("k", b"cached")]).result(10)  # b now knows shard 0 is open
        ((lo, hi),) = even_ranges(1)
        a.reshard("s", [0, 1], [NewShard(2, lo, hi, 0, 1)])  # a merge: both shards close
        closed = b.append_nowait([shards[0]], [("k", b"late")])
        assert isinstance(closed.exception(10), ShardClosed)
    finally:
        second.close()
        first.close()


def test_appends_queued_together_each_get_their_own_records_counters(tmp_path):
    """One statement writes the whole batch (AUTOINCREMENT hands out the counters): each append's
    counters must be exactly the rows holding its own records."""
    store = SqliteStore.open(tmp_path / "lamina.db")
    try:
        streams = SqliteStreamStore(store.database)
        shards = [s.id for s in streams.create_stream(new("s", 3)).shards]
        release = hold_writer(store.database.writer)
        sent = [[(shards[(n + i) % 3], (f"k{n}", b"%d-%d" % (n, i))) for i in range(1 + n % 4)] for n in range(30)]
        futures = [streams.append_nowait([s for s, _ in rows], [r for _, r in rows]) for rows in sent]
        release.set()
        appended = [f.result(10).counters for f in futures]
        stored = {r.counter: (r.partition_key, r.data) for shard in shards for r in streams.read(shard, 0, 1000)}
        for rows, counters in zip(sent, appended, strict=True):
            assert [stored[c] for c in counters] == [r for _, r in rows]
        assert store.database.stats().commits == 3  # create, hold, then the 30 appends at once
    finally:
        store.close()


@pytest.fixture
def one_shard(tmp_path) -> Iterator[tuple[SqliteStore, SqliteStreamStore, int]]:
    """A store, its stream store, and the id of the one shard of stream "s"."""
    store = SqliteStore.open(tmp_path / "lamina.db")
    streams = SqliteStreamStore(store.database)
    yield store, streams, streams.create_stream(new("s", 1)).shards[0].id
    store.close()


def test_an_append_of_no_records_stores_nothing_alone_or_next_to_others(one_shard):
    store, streams, shard = one_shard
    assert streams.append_nowait([], []).result(10).counters == []
    release = hold_writer(store.database.writer)
    empty = streams.append_nowait([], [])
    store.database.writer.submit(lambda c: None)  # a closure: the batch is a transaction
    full = streams.append_nowait([shard], [("k", b"x")])
    release.set()
    assert empty.result(10).counters == [] and len(full.result(10).counters) == 1
    assert [r.data for r in streams.read(shard, 0, 10)] == [b"x"]


def test_an_append_past_one_statements_rows_is_one_transaction(one_shard):
    _, streams, shard = one_shard
    records = [(f"k{i}", b"%d" % i) for i in range(2_500)]  # 1,024 rows at most per statement
    counters = streams.append_nowait([shard] * len(records), records).result(10).counters
    assert counters == list(range(counters[0], counters[0] + 2_500))
    assert [(r.counter, r.partition_key, r.data) for r in streams.read(shard, 0, 10_000)] == [
        (c, k, d) for c, (k, d) in zip(counters, records, strict=True)
    ]
