"""LogStore on SQLite: CloudWatch Logs' groups, streams and events (schema notes in migrations)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from lamina.errors import ServiceError
from lamina.store.base import (
    LogEvent,
    LogGroupInfo,
    LogStreamInfo,
    log_group_exists,
    log_group_not_found,
    log_stream_exists,
    log_stream_not_found,
)
from lamina.store.sqlite.bulk import execute_padded, insert_padded
from lamina.store.sqlite.database import Database


class SqliteLogStore:
    def __init__(self, db: Database):
        self._db = db
        self._appender = db.batcher(LogAppender)

    def append_logs_nowait(self, group: str, stream: str, events: Sequence[LogEvent]) -> Future[None]:
        # The caller only queues. Sizes, time bounds and rows are worked out by the writer, once
        # for the whole batch: it is the same interpreter (one GIL) either way.
        return self._db.writer.submit_item(self._appender, (group, stream, tuple(events)))

    def get_log_events(
        self,
        group: str,
        stream: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_id: int = 0,
        limit: int = 10_000,
    ) -> list[tuple[int, str, LogEvent]]:
        clauses, params = self._where(group, stream)
        if clauses is None:
            return []
        if start_ms is not None:
            clauses.append("e.ts_ms >= ?")
            params.append(start_ms)
        if end_ms is not None:
            clauses.append("e.ts_ms < ?")
            params.append(end_ms)
        clauses.append("e.id > ?")
        params.append(after_id)
        return self._page(clauses, params, "ORDER BY e.id", limit)

    def tail_log_events(self, group: str, limit: int = 200) -> list[tuple[int, str, LogEvent]]:
        clauses, params = self._where(group, None)
        if clauses is None:
            return []
        return self._page(clauses, params, "ORDER BY e.id DESC", limit)

    def last_log_event_id(self) -> int:
        rows = self._db.query("SELECT seq FROM sqlite_sequence WHERE name = 'log_events'")
        return int(rows[0][0]) if rows else 0

    def _where(self, group: str, stream: str | None) -> tuple[list[str] | None, list[Any]]:
        """The clause selecting a group's (or one stream's) events; None if there is none."""
        ids = self._db.query(
            "SELECT g.id, s.id FROM log_groups g LEFT JOIN log_streams s ON s.group_id = g.id AND s.name = ?"
            " WHERE g.name = ?",
            (stream, group),
        )
        if not ids or (stream is not None and ids[0][1] is None):
            return None, []
        group_id, stream_id = ids[0]
        return (["e.group_id = ?"], [group_id]) if stream is None else (["e.stream_id = ?"], [stream_id])

    def _page(self, clauses: list[str], params: list[Any], order: str, limit: int) -> list[tuple[int, str, LogEvent]]:
        """Select a page of events in id (commit) order, return it in (timestamp, id) order."""
        rows = self._db.query(
            "SELECT e.id, s.name, e.ts_ms, e.message, e.ingestion_ms"
            " FROM log_events e JOIN log_streams s ON s.id = e.stream_id"
            f" WHERE {' AND '.join(clauses)} {order} LIMIT ?",
            [*params, max(0, limit)],
        )
        rows.sort(key=lambda row: (row[2], row[0]))
        return [(id_, name, LogEvent(ts, message, ingested)) for id_, name, ts, message, ingested in rows]

    def list_log_streams(self, group: str) -> list[LogStreamInfo]:
        rows = self._db.query(
            "SELECT s.name, s.created_ms, s.first_event_ms, s.last_event_ms, s.stored_bytes, s.last_ingestion_ms"
            " FROM log_streams s JOIN log_groups g ON g.id = s.group_id WHERE g.name = ?"
            " ORDER BY s.last_event_ms IS NULL, s.last_event_ms DESC, s.name",
            (group,),
        )
        return [LogStreamInfo(group, *row) for row in rows]

    def delete_log_group(self, group: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT id FROM log_groups WHERE name = ?", (group,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM log_events WHERE group_id = ?", row)
            conn.execute("DELETE FROM log_streams WHERE group_id = ?", row)
            conn.execute("DELETE FROM log_groups WHERE id = ?", row)
            return True

        return bool(self._db.write(delete))

    # --- the Logs API's explicit operations ------------------------------------------------------

    def create_log_group(self, group: str) -> None:
        def create(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM log_groups WHERE name = ?", (group,)).fetchone():
                raise log_group_exists()
            conn.execute("INSERT INTO log_groups (name, created_ms) VALUES (?, ?)", (group, _now_ms()))

        self._db.write(create)

    def create_log_stream(self, group: str, stream: str) -> None:
        def create(conn: sqlite3.Connection) -> None:
            group_id = _group_id(conn, group)
            if conn.execute("SELECT 1 FROM log_streams WHERE group_id = ? AND name = ?", (group_id, stream)).fetchone():
                raise log_stream_exists()
            insert = "INSERT INTO log_streams (group_id, name, created_ms) VALUES (?, ?, ?)"
            conn.execute(insert, (group_id, stream, _now_ms()))

        self._db.write(create)

    def delete_log_stream(self, group: str, stream: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            group_id = _group_id(conn, group)
            row = conn.execute(
                "SELECT id, stored_bytes FROM log_streams WHERE group_id = ? AND name = ?", (group_id, stream)
            ).fetchone()
            if row is None:
                raise log_stream_not_found()
            conn.execute("DELETE FROM log_events WHERE stream_id = ?", (row[0],))
            conn.execute("DELETE FROM log_streams WHERE id = ?", (row[0],))
            conn.execute("UPDATE log_groups SET stored_bytes = stored_bytes - ? WHERE id = ?", (row[1], group_id))

        self._db.write(delete)

    def get_log_group(self, group: str) -> LogGroupInfo | None:
        rows = self._db.query(f"SELECT {_GROUP_COLUMNS} FROM log_groups WHERE name = ?", (group,))
        return LogGroupInfo(*rows[0]) if rows else None

    def get_log_stream(self, group: str, stream: str) -> LogStreamInfo | None:
        rows = self._db.query(
            "SELECT s.name, s.created_ms, s.first_event_ms, s.last_event_ms, s.stored_bytes, s.last_ingestion_ms"
            " FROM log_streams s JOIN log_groups g ON g.id = s.group_id WHERE g.name = ? AND s.name = ?",
            (group, stream),
        )
        return LogStreamInfo(group, *rows[0]) if rows else None

    def describe_log_groups(
        self, prefix: str | None = None, contains: str | None = None, after: str | None = None, limit: int = 50
    ) -> list[LogGroupInfo]:
        clauses, params = ["1"], []
        if prefix:  # substr, not LIKE: names may hold % and _
            clauses.append("substr(name, 1, ?) = ?")
            params += [len(prefix), prefix]
        if contains:
            clauses.append("instr(name, ?) > 0")
            params.append(contains)
        if after is not None:
            clauses.append("name > ?")
            params.append(after)
        rows = self._db.query(
            f"SELECT {_GROUP_COLUMNS} FROM log_groups WHERE {' AND '.join(clauses)} ORDER BY name LIMIT ?",
            [*params, max(0, limit)],
        )
        return [LogGroupInfo(*row) for row in rows]

    def set_log_retention(self, group: str, days: int | None) -> None:
        def update(conn: sqlite3.Connection) -> None:
            if not conn.execute("UPDATE log_groups SET retention_days = ? WHERE name = ?", (days, group)).rowcount:
                raise log_group_not_found()

        self._db.write(update)

    def groups_with_retention(self) -> list[LogGroupInfo]:
        rows = self._db.query(f"SELECT {_GROUP_COLUMNS} FROM log_groups WHERE retention_days IS NOT NULL")
        return [LogGroupInfo(*row) for row in rows]

    def log_events_by_time(
        self,
        group: str,
        streams: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after: tuple[int, int] | None = None,
        before: tuple[int, int] | None = None,
        limit: int = 10_000,
        descending: bool = False,
    ) -> list[tuple[int, str, LogEvent]]:
        ids = self._db.query("SELECT id FROM log_groups WHERE name = ?", (group,))
        if not ids:
            return []
        clauses: list[str] = []
        params: list[Any] = []
        if streams is None:
            clauses.append("e.group_id = ?")
            params.append(ids[0][0])
        else:
            names = list(dict.fromkeys(streams))
            if not names:
                return []
            # One stream: its (stream, id) index, sorted. Several: the group's (group, ts) index,
            # skipping other streams' rows (`+` keeps SQLite off the stream index there), so a
            # page costs what it reads, not a sort of every selected stream. An index on
            # (stream_id, ts_ms) would serve both; it would take a migration.
            marks = ", ".join("?" * len(names))
            if len(names) == 1:
                clauses.append(f"s.group_id = ? AND s.name IN ({marks})")
                params += [ids[0][0], *names]
            else:
                selected = f"SELECT id FROM log_streams WHERE group_id = ? AND name IN ({marks})"
                clauses.append(f"e.group_id = ? AND +e.stream_id IN ({selected})")
                params += [ids[0][0], ids[0][0], *names]
        if start_ms is not None:
            clauses.append("e.ts_ms >= ?")
            params.append(start_ms)
        if end_ms is not None:
            clauses.append("e.ts_ms < ?")
            params.append(end_ms)
        # (ts > k OR (ts = k AND id > i)), with a plain range on ts the time index can use.
        if after is not None:
            clauses.append("e.ts_ms >= ? AND (e.ts_ms > ? OR e.id > ?)")
            params += [after[0], after[0], after[1]]
        if before is not None:
            clauses.append("e.ts_ms <= ? AND (e.ts_ms < ? OR e.id < ?)")
            params += [before[0], before[0], before[1]]
        order = "DESC" if descending else "ASC"
        rows = self._db.query(
            "SELECT e.id, s.name, e.ts_ms, e.message, e.ingestion_ms"
            " FROM log_events e JOIN log_streams s ON s.id = e.stream_id"
            f" WHERE {' AND '.join(clauses)} ORDER BY e.ts_ms {order}, e.id {order} LIMIT ?",
            [*params, max(0, limit)],
        )
        return [(id_, name, LogEvent(ts, message, ingested)) for id_, name, ts, message, ingested in rows]

    def delete_log_events_before(self, group: str, cutoff_ms: int, batch: int = 5_000) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT id FROM log_groups WHERE name = ?", (group,)).fetchone()
            if row is None:
                return 0
            rows = conn.execute(
                "SELECT id, stream_id, length(CAST(message AS BLOB)) FROM log_events"
                " WHERE group_id = ? AND ts_ms < ? ORDER BY ts_ms LIMIT ?",
                (row[0], cutoff_ms, batch),
            ).fetchall()
            if not rows:
                return 0
            freed: dict[int, int] = {}
            for _, stream_id, size in rows:
                freed[stream_id] = freed.get(stream_id, 0) + size
            execute_padded(conn, "DELETE FROM log_events WHERE id IN (VALUES ", 1, [r[0] for r in rows], ")")
            conn.executemany(
                "UPDATE log_streams SET stored_bytes = max(0, stored_bytes - ?) WHERE id = ?",
                [(size, stream_id) for stream_id, size in freed.items()],
            )
            conn.execute(
                "UPDATE log_groups SET stored_bytes = max(0, stored_bytes - ?) WHERE id = ?",
                (sum(freed.values()), row[0]),
            )
            return len(rows)

        return int(self._db.write(delete))


_GROUP_COLUMNS = "name, created_ms, retention_days, stored_bytes"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _group_id(conn: sqlite3.Connection, group: str) -> int:
    row = conn.execute("SELECT id FROM log_groups WHERE name = ?", (group,)).fetchone()
    if row is None:
        raise log_group_not_found()
    return int(row[0])


_INSERT_EVENTS = "INSERT OR FAIL INTO log_events (group_id, stream_id, ts_ms, ingestion_ms, message)"
# Rows of (stream id, first event ms, last event ms, bytes, ingestion ms). UPDATE FROM: SQLite 3.33.
_UPDATE_STREAMS = (
    "UPDATE OR FAIL log_streams SET first_event_ms = min(coalesce(first_event_ms, v.column2), v.column2),"
    " last_event_ms = max(coalesce(last_event_ms, v.column3), v.column3), last_ingestion_ms = v.column5,"
    " stored_bytes = stored_bytes + v.column4 FROM (VALUES "
)
_UPDATE_STREAMS_TAIL = ") AS v WHERE log_streams.id = v.column1"
_UPDATE_STREAM = (  # the same, one row at a time
    "UPDATE log_streams SET first_event_ms = min(coalesce(first_event_ms, ?2), ?2),"
    " last_event_ms = max(coalesce(last_event_ms, ?3), ?3), last_ingestion_ms = ?5,"
    " stored_bytes = stored_bytes + ?4 WHERE id = ?1"
)
_UPDATE_GROUP = "UPDATE log_groups SET stored_bytes = stored_bytes + ? WHERE id = ?"


class StaleIds(ServiceError):
    """A cached log group or stream id named no row: a bug; the writer retries the batch uncached."""


class LogAppender:
    """Writes the queued appends of a batch (a `writer.Batcher`; runs on the writer thread only).

    Per batch: the events of all the appends in one padded multi-row insert, in queue order (ids are
    commit order, as before); one multi-row update of the streams written to (first and last
    event time, bytes: summed over the batch first); one update per group. Group and stream ids
    are cached: the writer thread is the database's only writer, and it calls `reset()` whenever
    the cache may be wrong (after a rollback, or after any other kind of write, such as
    delete_log_group). Should an id still be stale, the stream or group update changes fewer
    rows than it should, and the batch fails and is retried by the writer with a fresh cache.
    """

    max_cached_streams = 10_000
    update_from = sqlite3.sqlite_version_info >= (3, 33, 0)

    def __init__(self) -> None:
        self._groups: dict[str, tuple[int, dict[str, int]]] = {}  # name -> (id, {stream name: id})
        self._cached_streams = 0

    def reset(self) -> None:
        self._groups = {}
        self._cached_streams = 0

    def write_batch(self, conn: sqlite3.Connection, items: list[tuple[str, str, tuple[LogEvent, ...]]]) -> None:
        now = int(time.time() * 1000)
        rows: list[Any] = []  # flat: 5 values per event
        add = rows.extend
        streams: dict[int, list[int]] = {}  # stream id -> [first ms, last ms, bytes, group id]
        groups = self._groups
        for group, stream, events in items:
            cached = groups.get(group)
            if cached is None:
                cached = self._group(conn, group, now)
            group_id, stream_ids = cached
            stream_id = stream_ids.get(stream)
            if stream_id is None:
                stream_id = self._stream(conn, group_id, stream_ids, stream, now)
            if not events:
                continue
            first = last = events[0].timestamp_ms
            size = 0
            for e in events:
                ts, message = e.timestamp_ms, e.message
                add((group_id, stream_id, ts, e.ingestion_ms or now, message))
                size += len(message) if message.isascii() else len(message.encode())
                if ts < first:
                    first = ts
                elif ts > last:
                    last = ts
            stats = streams.get(stream_id)
            if stats is None:
                streams[stream_id] = [first, last, size, group_id]
            else:
                stats[0] = min(stats[0], first)
                stats[1] = max(stats[1], last)
                stats[2] += size
        if not streams:
            return
        insert_padded(conn, _INSERT_EVENTS, 5, rows)
        updates: list[int] = []
        group_bytes: dict[int, int] = {}
        for stream_id, (first, last, size, group_id) in streams.items():
            updates += (stream_id, first, last, size, now)
            group_bytes[group_id] = group_bytes.get(group_id, 0) + size
        if self.update_from:
            changed = execute_padded(conn, _UPDATE_STREAMS, 5, updates, _UPDATE_STREAMS_TAIL)
        else:
            changed = sum(conn.execute(_UPDATE_STREAM, updates[i : i + 5]).rowcount for i in range(0, len(updates), 5))
        for group_id, size in group_bytes.items():
            changed += conn.execute(_UPDATE_GROUP, (size, group_id)).rowcount
        if changed != len(streams) + len(group_bytes):
            raise StaleIds("a cached log group or stream id names no row")

    def _group(self, conn: sqlite3.Connection, name: str, now: int) -> tuple[int, dict[str, int]]:
        row = conn.execute("SELECT id FROM log_groups WHERE name = ?", (name,)).fetchone()
        if row is None:
            row = (conn.execute("INSERT INTO log_groups (name, created_ms) VALUES (?, ?)", (name, now)).lastrowid,)
        cached = self._groups[name] = (int(row[0]), {})
        return cached

    def _stream(self, conn: sqlite3.Connection, group_id: int, ids: dict[str, int], name: str, now: int) -> int:
        row = conn.execute("SELECT id FROM log_streams WHERE group_id = ? AND name = ?", (group_id, name)).fetchone()
        if row is None:
            insert = "INSERT INTO log_streams (group_id, name, created_ms) VALUES (?, ?, ?)"
            row = (conn.execute(insert, (group_id, name, now)).lastrowid,)
        if self._cached_streams >= self.max_cached_streams:  # forget the other streams' ids
            for _, stream_ids in self._groups.values():
                stream_ids.clear()
            self._cached_streams = 0
        stream_id = ids[name] = int(row[0])
        self._cached_streams += 1
        return stream_id
