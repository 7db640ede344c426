"""The SQLite stream store's own promises: counters across batches, rollbacks and restarts."""

from __future__ import annotations

from lamina.errors import StreamNotFound
from lamina.sources.streams import NewStream, SqliteStreamStore, StreamMode
from lamina.sources.streams.model import even_ranges
from lamina.store.sqlite import SqliteStore


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
        assert b.arrival_ms == a.arrival_ms == 1_000_000
        assert streams.first_counter_at(shard, 1_000_000) == a.counters[0]
    finally:
        store.close()
