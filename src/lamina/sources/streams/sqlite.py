"""StreamStore on the embedded SQLite database (migrations 2 and 3): appends go through the
group-committing writer, so concurrent producers share commits; reads use per-thread reader
connections (WAL), so they never wait for the writer.

The counter is `stream_records.seq` (AUTOINCREMENT: never reused, and handed out by SQLite inside
the statement that appends, under the write lock, so two writers on one database, edge workers
among them, never hand out a counter twice nor append to a shard the other closed).
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from lamina.errors import ServiceError, StreamInUse, StreamNotFound
from lamina.sources.streams.base import Appended, NewStream, ShardClosed
from lamina.sources.streams.model import Shard, Stream, StreamMode, StreamRecord
from lamina.sources.streams.resharding import NewShard
from lamina.store.sqlite.bulk import largest_chunk, padded_size
from lamina.store.sqlite.database import Database

Clock = Callable[[], float]
_RECORDS_AFTER = "FROM stream_records WHERE shard_id = ? AND seq > ?"
_READ_SIZES = (
    "SELECT group_concat(seq), group_concat(size) FROM (SELECT seq, length(data) AS size " + _RECORDS_AFTER
    + " AND arrival_ms >= ? ORDER BY seq LIMIT ?)"
)  # fmt: skip
_READ = (
    "SELECT group_concat(seq), group_concat(arrival_ms), json_group_array(partition_key), group_concat(hex(data))"
    " FROM (SELECT seq, arrival_ms, partition_key, data " + _RECORDS_AFTER + " AND seq <= ? AND arrival_ms >= ?"
    " ORDER BY seq)"
)  # fmt: skip
_tuple_new = tuple.__new__
_fromhex = bytes.fromhex
_SHARDS_STATE = "SELECT id, ending_seq FROM stream_shards WHERE id IN (SELECT value FROM json_each(?))"


def stream_not_found(name: str, account: str = "000000000000") -> StreamNotFound:
    return StreamNotFound(f"Stream {name} under account {account} not found.")


@dataclass(slots=True)
class _Append:
    shard_ids: Sequence[int]
    records: Sequence[tuple[str, bytes]]
    result: Appended | None = None


class RecordAppender:
    """A `writer.Batcher`: the queued appends of a batch in as few statements as SQLite allows
    (one for up to 1,024 records here), and a batch of appends alone as one self-committing
    statement (`write_alone`).

    Each statement does everything in SQLite: the counters are AUTOINCREMENT's (rowids handed out
    in VALUES order, consecutive, since the statement holds the write lock), the arrival time is
    the later of the clock and the newest record's, and it stores nothing unless every shard it
    names exists and is open. Nothing is cached between batches, so another process's writes
    (edge workers share the file) cannot make an append wrong. Why one statement matters: Python's
    sqlite3 gives up the interpreter lock for each SQLite call and must win it back from the event
    loop, all while holding the database's write lock; one statement outside a transaction is a
    single call, lock taken, rows written, WAL fsynced, lock released."""

    def __init__(self) -> None:
        self.clock: Clock = time.time

    def write_batch(self, conn: sqlite3.Connection, items: list[_Append]) -> None:
        most = largest_chunk(conn, 3, extra=3)
        rows = _rows(items)
        count = len(rows) // 3
        if not count:  # appends of no records: nothing to write
            _hand_out(items, 0)
            return
        first = None
        for start in range(0, count, most):
            last = self._insert(conn, rows[start * 3 : (start + most) * 3])
            if first is None:
                first = last - min(most, count) + 1
        if first is None or last != first + count - 1:  # a gap: something else inserted between
            raise ServiceError("stream record counters were not consecutive")
        _hand_out(items, first)

    def write_alone(self, conn: sqlite3.Connection, items: list[_Append]) -> bool:
        """Write the items as one statement outside any transaction, if they fit in one (else
        write nothing and return False): the statement is its own transaction, all or nothing."""
        rows = _rows(items)
        if len(rows) // 3 > largest_chunk(conn, 3, extra=3):
            return False
        last = self._insert(conn, rows)
        _hand_out(items, last - len(rows) // 3 + 1)
        return True

    def reset(self) -> None:
        """Nothing is cached."""

    def _insert(self, conn: sqlite3.Connection, rows: list[Any]) -> int:
        """Insert `rows` (shard id, key, data, shard id, ... in order) with one statement; the last
        counter."""
        count = len(rows) // 3
        shards = sorted(set(rows[::3]))
        size = padded_size(count)
        params: list[Any] = [int(self.clock() * 1000), *rows]
        params += [None] * ((size - count) * 3)
        params += (json.dumps(shards), len(shards))
        cursor = conn.execute(_append_sql(size), params)
        if cursor.rowcount == count:
            return int(cursor.lastrowid)  # type: ignore[arg-type]
        found = dict(conn.execute(_SHARDS_STATE, (json.dumps(shards),)).fetchall())
        if len(found) < len(shards):
            raise StreamNotFound("The stream was deleted before its records could be stored.")
        raise ShardClosed()  # closed by a reshard committed before this write


def _hand_out(items: list[_Append], first: int) -> None:
    """Each item its counters, consecutive from `first` in queue order (as its rows were written)."""
    for item in items:
        item.result = Appended(list(range(first, first + len(item.records))))
        first += len(item.records)


def _rows(items: list[_Append]) -> list[Any]:
    """The items' records as one flat list, shard id, key, data, ..., made at C speed."""
    columns = (zip(item.shard_ids, map(_key, item.records), map(_data, item.records), strict=True) for item in items)
    return list(chain.from_iterable(chain.from_iterable(columns)))


_key, _data = itemgetter(0), itemgetter(1)


@functools.cache
def _append_sql(rows: int) -> str:
    return (
        "INSERT OR FAIL INTO stream_records (shard_id, arrival_ms, partition_key, data)"
        " SELECT v.column1, max(?1, coalesce((SELECT arrival_ms FROM stream_records ORDER BY seq DESC LIMIT 1), 0)),"
        f" v.column2, v.column3 FROM (VALUES {', '.join(['(?, ?, ?)'] * rows)}) AS v WHERE v.column1 IS NOT NULL"
        " AND (SELECT count(*) FROM stream_shards WHERE id IN (SELECT value FROM json_each(?)) AND ending_seq IS NULL)"
        " = ?"
    )


class SqliteStreamStore:
    """Implements `StreamStore` over a `Database` it shares with the rest of the embedded store."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self._db = db
        self._appender = db.batcher(RecordAppender)
        self._appender.clock = clock

    # --- streams ---------------------------------------------------------------------------------

    def create_stream(self, new: NewStream) -> Stream:
        def create(conn: sqlite3.Connection) -> int:
            if conn.execute("SELECT 1 FROM streams WHERE name = ?", (new.name,)).fetchone():
                raise StreamInUse(f"Stream {new.name} under account 000000000000 already exists.")
            cur = conn.execute(
                "INSERT INTO streams (name, created_ms, mode, retention_hours, max_record_kib, tags)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (new.name, new.created_ms, str(new.mode), new.retention_hours, new.max_record_kib, _tags(new.tags)),
            )
            stream_id = cur.lastrowid
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'stream_records'").fetchone()
            starting = (row[0] if row else 0) + 1
            conn.executemany(
                "INSERT INTO stream_shards (stream_id, shard_index, start_hash, end_hash, starting_seq, opened_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(stream_id, i, str(lo), str(hi), starting, new.created_ms) for i, (lo, hi) in enumerate(new.ranges)],
            )
            return int(stream_id)  # type: ignore[arg-type]

        self._db.write(create)
        stream = self.get_stream(new.name)
        assert stream is not None  # just committed; nothing deletes it but a later write
        return stream

    def delete_stream(self, name: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT id FROM streams WHERE name = ?", (name,)).fetchone()
            if row is None:
                return False
            shards = [r[0] for r in conn.execute("SELECT id FROM stream_shards WHERE stream_id = ?", row)]
            for shard_id in shards:
                conn.execute("DELETE FROM stream_records WHERE shard_id = ?", (shard_id,))
            conn.execute("DELETE FROM stream_shards WHERE stream_id = ?", row)
            conn.execute("DELETE FROM streams WHERE id = ?", row)
            return True

        return bool(self._db.write(delete))

    def get_stream(self, name: str) -> Stream | None:
        rows = self._db.query(_SELECT_STREAMS + " WHERE name = ?", (name,))
        return self._with_shards(rows[0]) if rows else None

    def list_streams(self, after: str | None = None, limit: int = 100) -> list[Stream]:
        rows = self._db.query(_SELECT_STREAMS + " WHERE name > ? ORDER BY name LIMIT ?", (after or "", max(0, limit)))
        return [self._with_shards(row) for row in rows]

    def reshard(
        self, name: str, closing: Sequence[int], shards: Sequence[NewShard], now_ms: int | None = None
    ) -> Stream:
        now = int(self._appender.clock() * 1000) if now_ms is None else now_ms

        def reshard(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT id FROM streams WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise stream_not_found(name)
            stream_id = row[0]
            open_now = [r[0] for r in conn.execute(
                "SELECT shard_index FROM stream_shards WHERE stream_id = ? AND ending_seq IS NULL", (stream_id,)
            )]  # fmt: skip
            if sorted(open_now) != sorted(closing):
                raise StreamInUse(f"Stream {name} under account 000000000000 is being resharded.")
            # Appends write their counters explicitly, inside the write lock this transaction holds:
            # sqlite_sequence holds the last counter of everything before this closure.
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'stream_records'").fetchone()
            last = row[0] if row else 0
            conn.execute(
                "UPDATE stream_shards SET ending_seq = MAX(?, starting_seq), closed_ms = ?"
                " WHERE stream_id = ? AND ending_seq IS NULL",
                (last, now, stream_id),
            )
            conn.executemany(
                "INSERT INTO stream_shards (stream_id, shard_index, start_hash, end_hash, parent_index,"
                " adjacent_parent_index, starting_seq, ending_seq, opened_ms, closed_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (stream_id, n.index, str(n.start_hash), str(n.end_hash), n.parent_index,
                     n.adjacent_parent_index, last + 1, last + 1 if n.closed else None, now,
                     now if n.closed else None)
                    for n in shards
                ],
            )  # fmt: skip

        self._db.write(reshard)
        stream = self.get_stream(name)
        if stream is None:
            raise stream_not_found(name)
        return stream

    def set_retention(self, name: str, hours: int) -> None:
        def update(conn: sqlite3.Connection) -> None:
            if conn.execute("UPDATE streams SET retention_hours = ? WHERE name = ?", (hours, name)).rowcount == 0:
                raise stream_not_found(name)

        self._db.write(update)

    def add_tags(self, name: str, tags: Mapping[str, str]) -> None:
        def update(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT tags FROM streams WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise stream_not_found(name)
            merged = {**json.loads(row[0]), **tags}
            conn.execute("UPDATE streams SET tags = ? WHERE name = ?", (json.dumps(merged), name))

        self._db.write(update)

    def _with_shards(self, row: tuple) -> Stream:
        stream_id, name, created_ms, mode, retention, max_kib, tags = row
        shards = tuple(
            Shard(sid, index, int(lo), int(hi), start, end, parent, adjacent, opened, closed)
            for sid, index, lo, hi, start, end, parent, adjacent, opened, closed in self._db.query(
                "SELECT id, shard_index, start_hash, end_hash, starting_seq, ending_seq, parent_index,"
                " adjacent_parent_index, opened_ms, closed_ms FROM stream_shards WHERE stream_id = ?"
                " ORDER BY shard_index",
                (stream_id,),
            )
        )
        return Stream(stream_id, name, created_ms, StreamMode(mode), retention, max_kib, shards, json.loads(tags))

    # --- records ---------------------------------------------------------------------------------

    def append_nowait(self, shard_ids: Sequence[int], records: Sequence[tuple[str, bytes]]) -> Future[Appended]:
        item = _Append(shard_ids, records)
        committed = self._db.writer.submit_item(self._appender, item)
        # The same kind of future as the writer's (an event loop's own, on its thread): no hand-off.
        done: Any = committed.get_loop().create_future() if isinstance(committed, asyncio.Future) else Future()

        def resolve(committed: Any) -> None:
            error = committed.exception()
            if error is not None:
                done.set_exception(error)
            else:
                assert item.result is not None  # write_batch filled it before the commit
                done.set_result(item.result)

        committed.add_done_callback(resolve)
        return done

    def read(
        self, shard_id: int, after: int, limit: int, min_arrival_ms: int = 0, max_bytes: int = 10 << 20
    ) -> list[StreamRecord]:
        # Two statements of one step each. Python's sqlite3 gives up the interpreter lock at every
        # step, so a row-by-row read of a batch would hand it back and forth once per record, a
        # convoy with the event loop and the other pollers. First the sizes, to stop at max_bytes
        # without loading what lies past it; then the records up to the last that fits.
        reader = self._db.reader()
        seqs, sizes = reader.execute(_READ_SIZES, (shard_id, after, min_arrival_ms, max(0, limit))).fetchone()
        if seqs is None:
            return []
        candidates, lengths = seqs.split(","), [int(n) for n in sizes.split(",")]
        last = int(candidates[-1])
        if sum(lengths) > max_bytes:
            total = 0
            for i, (seq, size) in enumerate(zip(candidates, lengths, strict=True)):
                total += size
                if i and total > max_bytes:
                    break
                last = int(seq)
        seqs, arrivals, keys, data = reader.execute(_READ, (shard_id, after, last, min_arrival_ms)).fetchone()
        if seqs is None:  # trimmed meanwhile
            return []
        # Each column split at C speed; the records made by `map` with no Python frame per record.
        counters = list(map(int, seqs.split(",")))
        columns = zip(
            counters, map(int, arrivals.split(",")), json.loads(keys), map(_fromhex, data.split(",")), strict=True
        )
        out = list(map(_tuple_new, repeat(StreamRecord), columns))
        if counters != sorted(counters):
            out.sort()  # SQLite does not promise group_concat's order (the scan gives it anyway)
        return out

    def last_counter(self) -> int:
        rows = self._db.query("SELECT seq FROM sqlite_sequence WHERE name = 'stream_records'")
        return int(rows[0][0]) if rows else 0

    def first_counter_at(self, shard_id: int, arrival_ms: int) -> int | None:
        rows = self._db.query(
            "SELECT seq FROM stream_records WHERE shard_id = ? AND arrival_ms >= ? ORDER BY seq LIMIT 1",
            (shard_id, arrival_ms),
        )
        return int(rows[0][0]) if rows else None

    def trim(self, shard_ids: Sequence[int], before_ms: int) -> int:
        def trim(conn: sqlite3.Connection) -> int:
            deleted = 0
            for shard_id in shard_ids:
                # Arrival never decreases with seq: everything below the first kept seq goes.
                row = conn.execute(
                    "SELECT seq FROM stream_records WHERE shard_id = ? AND arrival_ms >= ? ORDER BY seq LIMIT 1",
                    (shard_id, before_ms),
                ).fetchone()
                if row is None:
                    cur = conn.execute("DELETE FROM stream_records WHERE shard_id = ?", (shard_id,))
                else:
                    cur = conn.execute("DELETE FROM stream_records WHERE shard_id = ? AND seq < ?", (shard_id, row[0]))
                deleted += cur.rowcount
            return deleted

        return int(self._db.write(trim))


def _tags(tags: Mapping[str, str]) -> str:
    return json.dumps(dict(tags), sort_keys=True)


_SELECT_STREAMS = "SELECT id, name, created_ms, mode, retention_hours, max_record_kib, tags FROM streams"
