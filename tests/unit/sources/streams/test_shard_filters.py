"""ListShards' ShardFilter types over shards' open and close times, and closed shards dropping out
of the listing once retention has passed them; on both stores, with the fake clock."""

from __future__ import annotations

import sqlite3

import pytest

from lamina.errors import InvalidArgument
from lamina.sources.streams import SqliteStreamStore, StreamService
from lamina.sources.streams.model import Entry
from lamina.store.sqlite import SqliteStore
from lamina.store.sqlite.migrations import MIGRATIONS, migrate

DAY = 86_400


def names(streams: StreamService, select: str | None = None, at: float | None = None) -> list[int]:
    shards, more = streams.list_shards("s", select=select, timestamp=at)
    assert not more
    return [s.index for s in shards]


@pytest.fixture
def resharded(streams: StreamService, clock) -> tuple[float, float, float]:
    """Stream "s": shards 0-1 open at t0; at t1 they close and 2-5 open; at t2 2-5 close and 6-7 open."""
    t0 = clock.now
    streams.create_stream("s", 2)
    streams.put_records("s", [Entry(b"old", f"k{i}") for i in range(10)])
    clock.advance(100)
    t1 = clock.now
    assert streams.update_shard_count("s", 4) == (2, 4)
    clock.advance(100)
    t2 = clock.now
    assert streams.update_shard_count("s", 2) == (4, 2)
    clock.advance(50)
    return t0, t1, t2


def test_open_and_close_times_are_recorded(streams: StreamService, resharded) -> None:
    t0, t1, t2 = (int(t * 1000) for t in resharded)
    times = {s.index: (s.opened_ms, s.closed_ms) for s in streams.describe("s").shards}
    assert times == {
        0: (t0, t1), 1: (t0, t1),
        2: (t1, t2), 3: (t1, t2), 4: (t1, t2), 5: (t1, t2),
        6: (t2, None), 7: (t2, None),
    }  # fmt: skip


def test_each_filter_type_lists_the_right_shards(streams: StreamService, resharded) -> None:
    t0, t1, t2 = resharded
    assert names(streams) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert names(streams, "AT_LATEST") == [6, 7]
    assert names(streams, "AT_TRIM_HORIZON") == [0, 1]  # the horizon is before the stream was created
    assert names(streams, "FROM_TRIM_HORIZON") == [0, 1, 2, 3, 4, 5, 6, 7]

    assert names(streams, "AT_TIMESTAMP", t0 - 1) == []  # nothing was open yet
    assert names(streams, "AT_TIMESTAMP", t0) == [0, 1]
    assert names(streams, "AT_TIMESTAMP", t0 + 50) == [0, 1]
    assert names(streams, "AT_TIMESTAMP", t1 - 0.001) == [0, 1]
    assert names(streams, "AT_TIMESTAMP", t1) == [0, 1, 2, 3, 4, 5]  # parents close as children open
    assert names(streams, "AT_TIMESTAMP", t1 + 50) == [2, 3, 4, 5]
    assert names(streams, "AT_TIMESTAMP", t2 + 10) == [6, 7]
    assert names(streams, "AT_TIMESTAMP", t2 + DAY) == [6, 7]

    assert names(streams, "FROM_TIMESTAMP", t0 - 1) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert names(streams, "FROM_TIMESTAMP", t0 + 50) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert names(streams, "FROM_TIMESTAMP", t1 + 50) == [2, 3, 4, 5, 6, 7]
    assert names(streams, "FROM_TIMESTAMP", t2 + 10) == [6, 7]

    shards, more = streams.list_shards("s", "shardId-000000000003", 2, "FROM_TIMESTAMP", t1 + 50)
    assert [s.index for s in shards] == [4, 5] and more
    with pytest.raises(InvalidArgument, match="requires a Timestamp"):
        streams.list_shards("s", select="AT_TIMESTAMP")


def test_closed_shards_drop_out_once_past_retention(streams: StreamService, clock, resharded) -> None:
    t0, t1, t2 = resharded
    # The trim horizon (now - 24 h) reaches t1: shards 0-1 closed at it, not before; still listed.
    clock.advance(t1 + DAY - clock.now)
    assert names(streams) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert names(streams, "AT_TRIM_HORIZON") == [0, 1, 2, 3, 4, 5]
    clock.advance(0.001)
    assert streams.trim_expired() == 10  # every record of shards 0-1 has aged out
    assert names(streams) == [2, 3, 4, 5, 6, 7]
    assert names(streams, "AT_TRIM_HORIZON") == [2, 3, 4, 5]
    assert names(streams, "FROM_TRIM_HORIZON") == [2, 3, 4, 5, 6, 7]
    assert names(streams, "AT_TIMESTAMP", t0 + 50) == []  # those shards are gone
    assert names(streams, "FROM_TIMESTAMP", t0 + 50) == [2, 3, 4, 5, 6, 7]
    assert names(streams, "AT_LATEST") == [6, 7]

    clock.advance(t2 + DAY + 1 - clock.now)
    assert names(streams) == [6, 7]
    assert names(streams, "AT_TRIM_HORIZON") == [6, 7]
    assert names(streams, "FROM_TRIM_HORIZON") == [6, 7]
    assert names(streams, "AT_TIMESTAMP", t1 + 50) == []


def test_intermediate_shards_open_and_close_at_once(streams: StreamService, clock) -> None:
    streams.create_stream("s", 5)
    clock.advance(10)
    streams.update_shard_count("s", 3)  # a target overlaps three shards: through an intermediate generation
    now = int(clock.now * 1000)
    closed = [s for s in streams.describe("s").shards if s.index >= 5 and not s.is_open]
    assert closed and all(s.opened_ms == s.closed_ms == now for s in closed)
    assert names(streams, "AT_LATEST") == names(streams, "AT_TIMESTAMP", clock.now + 1)


def test_shards_from_before_migration_3_are_listed_as_before(tmp_path, clock) -> None:
    path = tmp_path / "lamina.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:2])
    conn.execute(
        "INSERT INTO streams (name, created_ms, mode, retention_hours, max_record_kib) VALUES ('s', 0, 'PROVISIONED', 24, 1024)"
    )
    conn.execute(
        "INSERT INTO stream_shards (stream_id, shard_index, start_hash, end_hash, starting_seq, ending_seq)"
        " VALUES (1, 0, '0', ?, 1, 1)",
        (str(2**128 - 1),),
    )
    conn.execute(
        "INSERT INTO stream_shards (stream_id, shard_index, start_hash, end_hash, parent_index, starting_seq)"
        " VALUES (1, 1, '0', ?, 0, 2)",
        (str(2**128 - 1),),
    )
    conn.close()
    store = SqliteStore.open(path)
    try:
        streams = StreamService(SqliteStreamStore(store.database, clock=clock), clock=clock)
        shards = streams.describe("s").shards
        assert [(s.opened_ms, s.closed_ms) for s in shards] == [(None, None), (None, None)]
        assert names(streams) == [0, 1]
        assert names(streams, "AT_TIMESTAMP", clock.now) == [0, 1]
        assert names(streams, "AT_TRIM_HORIZON") == [0]
    finally:
        store.close()
