"""The in-memory tail answers a read exactly as the database would, or not at all."""

from __future__ import annotations

import random

import pytest

from lamina.sources.streams import NewStream, SqliteStreamStore, StreamMode
from lamina.sources.streams.model import even_ranges
from lamina.store.sqlite import SqliteStore


def new(name: str, shards: int) -> NewStream:
    return NewStream(name, StreamMode.PROVISIONED, 24, 1024, even_ranges(shards), {}, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def opened(tmp_path):
    store = SqliteStore.open(tmp_path / "lamina.db")
    yield store
    store.close()


def check_reads(streams: SqliteStreamStore, shards: list[int], rnd: random.Random, top: int) -> int:
    """Random reads through the tail and from the database alone; returns how many the tail served."""
    served = 0
    for _ in range(60):
        shard = rnd.choice(shards)
        after = rnd.choice([0, rnd.randrange(0, top + 2), top, max(0, top - rnd.randrange(0, 40))])
        limit = rnd.choice([1, 3, 10, 100, 10_000])
        oldest = rnd.choice([0, 0, int((1_700_000_000 + rnd.randrange(0, 30)) * 1000)])
        max_bytes = rnd.choice([1, 50, 400, 10 << 20])
        expected = streams.read_database(shard, after, limit, oldest, max_bytes)
        assert streams.read(shard, after, limit, oldest, max_bytes) == expected, (shard, after, limit, oldest)
        served += streams._tail.read(shard, after, limit, oldest, max_bytes) is not None
    return served


@pytest.mark.parametrize("budget", [64 << 20, 6_000, 0])
def test_reads_equal_the_database_through_appends_evictions_trims_and_deletes(opened, budget):
    clock = Clock()
    streams = SqliteStreamStore(opened.database, clock=clock, tail_bytes=budget)
    rnd = random.Random(budget)
    shards = [s.id for s in streams.create_stream(new("a", 3)).shards]
    shards += [s.id for s in streams.create_stream(new("b", 2)).shards]
    top, served = 0, 0
    for step in range(40):
        n = rnd.randrange(1, 30)
        routed = [rnd.choice(shards) for _ in range(n)]
        records = [(f"k{rnd.randrange(1000)}", rnd.randbytes(rnd.randrange(0, 80))) for _ in range(n)]
        top = streams.append_nowait(routed, records).result().counters[-1]
        clock.now += rnd.choice([0, 0.5, 2])
        if step % 13 == 12:
            streams.trim(shards[:2], int((clock.now - 5) * 1000))
        served += check_reads(streams, shards, rnd, top)
    streams.delete_stream("b")
    served += check_reads(streams, shards, rnd, top)
    if budget == 0:
        assert served == 0 and streams._tail.stats()["tail_bytes"] == 0
    else:
        assert served > 0  # the tail did answer
        assert streams._tail.stats()["tail_bytes"] <= max(budget, 0)


def test_records_from_before_the_server_started_come_from_the_database(tmp_path):
    store = SqliteStore.open(tmp_path / "lamina.db")
    streams = SqliteStreamStore(store.database)
    shard = streams.create_stream(new("s", 1)).shards[0].id
    old = streams.append_nowait([shard] * 3, [("k", b"old")] * 3).result().counters
    store.close()
    store = SqliteStore.open(tmp_path / "lamina.db")  # a restart: the tail starts empty
    try:
        streams = SqliteStreamStore(store.database)
        assert [r.data for r in streams.read(shard, 0, 10)] == [b"old"] * 3  # not "nothing" from the tail
        fresh = streams.append_nowait([shard], [("k", b"new")]).result().counters
        assert streams._tail.read(shard, 0, 10, 0, 1 << 20) is None  # below the floor: unknown
        assert [r.counter for r in streams.read(shard, 0, 10)] == old + fresh
        assert [r.data for r in streams._tail.read(shard, old[-1], 10, 0, 1 << 20)] == [b"new"]
    finally:
        store.close()


def test_a_failed_append_never_reaches_the_tail(opened):
    streams = SqliteStreamStore(opened.database)
    shard = streams.create_stream(new("s", 1)).shards[0].id
    good = streams.append_nowait([shard], [("k", b"a")])
    bad = streams.append_nowait([987654], [("k", b"b")])  # no such shard: fails alone
    assert good.result().counters and bad.exception() is not None
    assert [r.data for r in streams.read(shard, 0, 10)] == [b"a"]
    assert streams._tail.stats()["tail_bytes"] > 0
