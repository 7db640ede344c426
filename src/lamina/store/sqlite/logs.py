"""LogStore on SQLite: CloudWatch Logs' groups, streams and events (schema notes in migrations)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from lamina.store.base import LogEvent, LogStreamInfo
from lamina.store.sqlite.database import Database


class SqliteLogStore:
    def __init__(self, db: Database):
        self._db = db

    def append_logs_nowait(self, group: str, stream: str, events: Sequence[LogEvent]) -> Future[None]:
        # Everything that needs no database is computed here, on the caller's thread, so the
        # writer thread (which all writers share) only inserts.
        rows = [(e.timestamp_ms, e.ingestion_ms, e.message) for e in events]
        size = sum(len(e.message.encode()) for e in events)
        first = min((e.timestamp_ms for e in events), default=None)
        last = max((e.timestamp_ms for e in events), default=None)

        def append(conn: sqlite3.Connection) -> None:
            now = int(time.time() * 1000)
            group_id = _ensure(
                conn,
                ("SELECT id FROM log_groups WHERE name = ?", (group,)),
                ("INSERT INTO log_groups (name, created_ms) VALUES (?, ?)", (group, now)),
            )
            stream_id = _ensure(
                conn,
                ("SELECT id FROM log_streams WHERE group_id = ? AND name = ?", (group_id, stream)),
                (
                    "INSERT INTO log_streams (group_id, name, created_ms) VALUES (?, ?, ?)",
                    (group_id, stream, now),
                ),
            )
            if not rows:
                return
            conn.executemany(
                "INSERT INTO log_events (group_id, stream_id, ts_ms, ingestion_ms, message) VALUES (?, ?, ?, ?, ?)",
                [(group_id, stream_id, ts, ingested or now, message) for ts, ingested, message in rows],
            )
            conn.execute(
                "UPDATE log_streams SET first_event_ms = min(coalesce(first_event_ms, :first), :first),"
                " last_event_ms = max(coalesce(last_event_ms, :last), :last),"
                " last_ingestion_ms = :now, stored_bytes = stored_bytes + :size WHERE id = :id",
                {"first": first, "last": last, "now": now, "size": size, "id": stream_id},
            )
            conn.execute("UPDATE log_groups SET stored_bytes = stored_bytes + ? WHERE id = ?", (size, group_id))

        return self._db.writer.submit(append)

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
            "SELECT s.name, s.created_ms, s.first_event_ms, s.last_event_ms, s.stored_bytes"
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


def _ensure(conn: sqlite3.Connection, select: tuple[str, tuple[Any, ...]], insert: tuple[str, tuple[Any, ...]]) -> int:
    """The id of the row `select` finds, inserting it first if there is none."""
    row = conn.execute(*select).fetchone()
    if row is not None:
        return int(row[0])
    return int(conn.execute(*insert).lastrowid)  # type: ignore[arg-type]
