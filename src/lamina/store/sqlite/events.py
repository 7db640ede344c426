"""EventStore on SQLite: the durable queue of Event invocations and the EventInvokeConfigs.

Queue ops go through one Batcher on the shared writer, so a burst of concurrent Event invokes
is inserted with one multi-row statement and acknowledged by one COMMIT. Only transitions
that must survive a crash are written: an event's insert, its reschedule after a failed attempt,
its failure, its deletion once done. Claiming an event to run it is not written (see
model/events.py EventState): the row stays 'queued', so a crash mid-run simply runs it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from concurrent.futures import Future
from itertools import chain
from typing import Any

from lamina.errors import ResourceConflict
from lamina.model.events import Condition, EventInvokeConfig, EventState, QueuedEvent, QueueStats
from lamina.store.events import Enqueue, EventOp, Update
from lamina.store.sqlite.bulk import execute_padded, insert_padded
from lamina.store.sqlite.database import Database

_FIELDS = ("id", "function", "qualifier", "payload", "enqueued", "attempts", "next_attempt", "state",
           "last_error", "condition", "throttles")  # fmt: skip
_INSERT = f"INSERT OR FAIL INTO async_events ({', '.join(_FIELDS)})"
_DELETE = "DELETE FROM async_events WHERE id IN (VALUES "
_UPDATE = (
    "UPDATE OR FAIL async_events SET qualifier = ?, enqueued = ?, attempts = ?, next_attempt = ?, state = ?,"
    " last_error = ?, condition = ?, throttles = ? WHERE id = ?"
)
_META = "id, function, qualifier, enqueued, attempts, next_attempt, state, last_error, condition, throttles"
_CONFIG_COLUMNS = "name, qualifier, last_modified, max_retries, max_age, on_success, on_failure"


def _row(e: QueuedEvent) -> tuple[Any, ...]:
    condition = str(e.condition) if e.condition else None
    return (e.id, e.function, e.qualifier, e.payload, e.enqueued, e.attempts, e.next_attempt, str(e.state),
            e.last_error, condition, e.throttles)  # fmt: skip


def _update_row(e: QueuedEvent) -> tuple[Any, ...]:
    condition = str(e.condition) if e.condition else None
    return (e.qualifier, e.enqueued, e.attempts, e.next_attempt, str(e.state), e.last_error, condition,
            e.throttles, e.id)  # fmt: skip


class EventWriter:
    """Applies queued op lists (a `writer.Batcher`): consecutive ops of one kind set-wise, in order."""

    def write_batch(self, conn: sqlite3.Connection, items: list[Sequence[EventOp]]) -> None:
        try:
            self._write(conn, list(chain.from_iterable(items)))
        except sqlite3.IntegrityError as exc:
            raise ResourceConflict(f"an event with this id is already queued ({exc})") from exc

    def _write(self, conn: sqlite3.Connection, ops: list[EventOp]) -> None:
        start = 0
        while start < len(ops):
            kind = type(ops[start])
            end = start
            while end < len(ops) and type(ops[end]) is kind:
                end += 1
            run = ops[start:end]
            if kind is Enqueue:
                rows = list(chain.from_iterable(_row(op.event) for op in run))  # type: ignore[union-attr]
                insert_padded(conn, _INSERT, len(_FIELDS), rows)
            elif kind is Update:
                conn.executemany(_UPDATE, [_update_row(op.event) for op in run])  # type: ignore[union-attr]
            else:
                execute_padded(conn, _DELETE, 1, [op.id for op in run], ")")  # type: ignore[union-attr]
            start = end

    def reset(self) -> None:
        pass


class SqliteEventStore:
    """Implements `lamina.store.events.EventStore` over the shared Database."""

    def __init__(self, db: Database):
        self._db = db
        self._writer = db.batcher(EventWriter)

    # --- the queue ---------------------------------------------------------------------------

    def apply_nowait(self, ops: Sequence[EventOp]) -> Future[None]:
        return self._db.writer.submit_item(self._writer, tuple(ops))

    def pending_events(self) -> list[QueuedEvent]:
        rows = self._db.query(f"SELECT {_META} FROM async_events WHERE state = ? ORDER BY seq", (EventState.QUEUED,))
        return [_event(row, b"") for row in rows]

    def event_payload(self, event_id: str) -> bytes | None:
        rows = self._db.query("SELECT payload FROM async_events WHERE id = ?", (event_id,))
        return bytes(rows[0][0]) if rows else None

    def failed_events(self, function: str, limit: int = 100) -> list[QueuedEvent]:
        rows = self._db.query(
            f"SELECT {_META}, payload FROM async_events WHERE function = ? AND state = ? ORDER BY seq LIMIT ?",
            (function, EventState.FAILED, max(0, limit)),
        )
        return [_event(row[:-1], bytes(row[-1])) for row in rows]

    def queue_stats(self, function: str) -> QueueStats:
        rows = self._db.query(
            "SELECT state, count(*), sum(attempts > 0 OR throttles > 0), min(enqueued)"
            " FROM async_events WHERE function = ? GROUP BY state",
            (function,),
        )
        by_state = {state: (count, retrying or 0, oldest) for state, count, retrying, oldest in rows}
        queued, in_retry, oldest = by_state.get(EventState.QUEUED, (0, 0, None))
        return QueueStats(queued=queued, in_retry=in_retry, oldest_enqueued=oldest,
                          failed=by_state.get(EventState.FAILED, (0, 0, None))[0])  # fmt: skip

    # --- EventInvokeConfigs ------------------------------------------------------------------

    def put_event_config(self, config: EventInvokeConfig) -> None:
        c = config
        self._db.write(
            lambda conn: conn.execute(
                f"INSERT OR REPLACE INTO event_invoke_configs ({_CONFIG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    c.function,
                    c.qualifier,
                    c.last_modified,
                    c.maximum_retry_attempts,
                    c.maximum_event_age,
                    c.on_success,
                    c.on_failure,
                ),
            )
        )

    def get_event_config(self, function: str, qualifier: str) -> EventInvokeConfig | None:
        rows = self._db.query(
            f"SELECT {_CONFIG_COLUMNS} FROM event_invoke_configs WHERE name = ? AND qualifier = ?",
            (function, qualifier),
        )
        return EventInvokeConfig(*rows[0]) if rows else None

    def delete_event_config(self, function: str, qualifier: str) -> bool:
        sql = "DELETE FROM event_invoke_configs WHERE name = ? AND qualifier = ?"
        return bool(self._db.write(lambda conn: conn.execute(sql, (function, qualifier)).rowcount > 0))

    def list_event_configs(self, function: str) -> list[EventInvokeConfig]:
        rows = self._db.query(
            f"SELECT {_CONFIG_COLUMNS} FROM event_invoke_configs WHERE name = ? ORDER BY qualifier", (function,)
        )
        return [EventInvokeConfig(*row) for row in rows]

    def delete_event_configs(self, function: str, qualifier: str | None = None) -> int:
        if qualifier is None:
            sql, args = "DELETE FROM event_invoke_configs WHERE name = ?", (function,)
        else:
            sql, args = "DELETE FROM event_invoke_configs WHERE name = ? AND qualifier = ?", (function, qualifier)
        return int(self._db.write(lambda conn: conn.execute(sql, args).rowcount))


def _event(row: Sequence[Any], payload: bytes) -> QueuedEvent:
    id_, function, qualifier, enqueued, attempts, next_attempt, state, last_error, condition, throttles = row
    return QueuedEvent(
        id=id_,
        function=function,
        qualifier=qualifier,
        payload=payload,
        enqueued=enqueued,
        attempts=attempts,
        next_attempt=next_attempt,
        state=EventState(state),
        last_error=last_error,
        condition=Condition(condition) if condition else None,
        throttles=throttles,
    )
