"""StreamStore on the embedded SQLite database (migrations 2 and 3): appends go through the
group-committing writer, so concurrent producers share commits; reads use per-thread reader
connections (WAL), so they never wait for the writer.

The counter is `stream_records.seq` (AUTOINCREMENT: never reused). `RecordAppender` assigns
counters itself, inside the writer's transaction: it reads the high-water mark, hands out the next
ones in queue order, and writes them explicitly (SQLite then keeps `sqlite_sequence` at the
maximum). It keeps the mark, and which shards are open, between transactions, and forgets them
whenever they may be wrong (`reset`, called by the writer): after any rollback or closure, and
when another connection (another process) committed since, so two writers on one database never
hand out a counter twice nor append to a shard the other closed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from lamina.errors import StreamInUse, StreamNotFound
from lamina.sources.streams.base import Appended, NewStream, ShardClosed
from lamina.sources.streams.model import Shard, Stream, StreamMode, StreamRecord
from lamina.sources.streams.resharding import NewShard
from lamina.store.sqlite.bulk import execute_rows
from lamina.store.sqlite.database import Database

Clock = Callable[[], float]
_INSERT = "INSERT OR FAIL INTO stream_records (seq, shard_id, arrival_ms, partition_key, data) VALUES "


def stream_not_found(name: str, account: str = "000000000000") -> StreamNotFound:
    return StreamNotFound(f"Stream {name} under account {account} not found.")


@dataclass(slots=True)
class _Append:
    shard_ids: Sequence[int]
    records: Sequence[tuple[str, bytes]]
    result: Appended | None = None


class RecordAppender:
    """A `writer.Batcher`: writes the queued appends of a batch in a few multi-row inserts."""

    def __init__(self) -> None:
        self.clock: Clock = time.time
        self._last: int | None = None  # highest counter written (None: unknown)
        self._last_arrival = 0
        self._live: set[int] = set()  # shard ids known to exist

    def write_batch(self, conn: sqlite3.Connection, items: list[_Append]) -> None:
        if self._last is None:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'stream_records'").fetchone()
            self._last = row[0] if row else 0
            row = conn.execute("SELECT arrival_ms FROM stream_records ORDER BY seq DESC LIMIT 1").fetchone()
            self._last_arrival = max(self._last_arrival, row[0] if row else 0)
        # Arrival never goes backwards with the counter, even if the wall clock does.
        arrival = self._last_arrival = max(self._last_arrival, int(self.clock() * 1000))
        counter = self._last
        params: list[object] = []
        for item in items:
            for shard_id in set(item.shard_ids) - self._live:
                row = conn.execute("SELECT ending_seq FROM stream_shards WHERE id = ?", (shard_id,)).fetchone()
                if row is None:
                    raise StreamNotFound("The stream was deleted before its records could be stored.")
                if row[0] is not None:  # closed by a reshard committed before this batch
                    raise ShardClosed()
                self._live.add(shard_id)  # open; a reshard is a closure, after which reset() runs
            first = counter + 1
            for shard_id, (key, data) in zip(item.shard_ids, item.records, strict=True):
                counter += 1
                params += (counter, shard_id, arrival, key, data)
            item.result = Appended(list(range(first, counter + 1)), arrival)
        execute_rows(conn, _INSERT, 5, params)
        self._last = counter

    def reset(self) -> None:
        self._last = None
        self._live.clear()


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
        cursor = self._db.reader().execute(
            "SELECT seq, arrival_ms, partition_key, data FROM stream_records"
            " WHERE shard_id = ? AND seq > ? AND arrival_ms >= ? ORDER BY seq LIMIT ?",
            (shard_id, after, min_arrival_ms, max(0, limit)),
        )
        out: list[StreamRecord] = []
        size = 0
        for seq, arrival, key, data in cursor:
            size += len(data)
            if out and size > max_bytes:
                break
            out.append(StreamRecord(seq, arrival, key, data))
        cursor.close()
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
