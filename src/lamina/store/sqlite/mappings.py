"""MappingStore on SQLite (migration 7): mappings as JSON rows, checkpoints keyed by (mapping,
shard), failed batches with their payloads. Progress goes through the shared writer, so concurrent
pollers' checkpoints share one COMMIT (group commit). Plain checkpoints, the write after every
batch, are batcher items (`CheckpointWriter`: no savepoint, and the other batchers keep their
caches); progress that also keeps a failed batch or queues events is a closure, which fails alone."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import Future
from itertools import chain
from typing import Any

from lamina.model.mappings import Checkpoint, FailedBatch, MappingConfig
from lamina.store.events import EventOp
from lamina.store.mappings import NewFailedBatch
from lamina.store.sqlite.database import Database
from lamina.store.sqlite.events import EventWriter

_UPSERT_CHECKPOINT = (
    "INSERT OR REPLACE INTO mapping_checkpoints (uuid, shard, position, finished, window, updated)"
    " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM event_source_mappings WHERE uuid = ?)"
)
_BATCH_COLUMNS = "id, uuid, shard, condition, record, payload, failed, replayed"


def _checkpoint_rows(checkpoints: Sequence[Checkpoint]) -> list[tuple[Any, ...]]:
    now = time.time()
    return [(c.uuid, c.shard, c.position, int(c.finished), c.window, c.updated or now, c.uuid) for c in checkpoints]


class CheckpointWriter:
    """A `writer.Batcher`: the checkpoint rows of every queued item, upserted in queue order (so
    the last checkpoint of a shard wins). A checkpoint of a deleted mapping is not written."""

    def write_batch(self, conn: sqlite3.Connection, items: list[list[tuple[Any, ...]]]) -> None:
        conn.executemany(_UPSERT_CHECKPOINT, chain.from_iterable(items))

    def reset(self) -> None:
        """Nothing is cached."""


class SqliteMappingStore:
    """Implements `lamina.store.mappings.MappingStore` over the shared Database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._events = EventWriter()

    def put_mapping(self, config: MappingConfig, checkpoints: Sequence[Checkpoint] = ()) -> None:
        def write(conn: sqlite3.Connection) -> None:
            created = conn.execute(
                "SELECT created FROM event_source_mappings WHERE uuid = ?", (config.uuid,)
            ).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO event_source_mappings (uuid, function, source_arn, config, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (config.uuid, config.function, config.source_arn, config.to_json(),
                 created[0] if created else time.time()),
            )  # fmt: skip
            conn.executemany(_UPSERT_CHECKPOINT, _checkpoint_rows(checkpoints))

        self._db.write(write)

    def get_mapping(self, uuid: str) -> MappingConfig | None:
        rows = self._db.query("SELECT config FROM event_source_mappings WHERE uuid = ?", (uuid,))
        return MappingConfig.from_json(rows[0][0]) if rows else None

    def list_mappings(self, function: str | None = None, source_arn: str | None = None) -> list[MappingConfig]:
        where, args = [], []
        if function is not None:
            where.append("function = ?")
            args.append(function)
        if source_arn is not None:
            where.append("source_arn = ?")
            args.append(source_arn)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.query(f"SELECT config FROM event_source_mappings{clause} ORDER BY created, uuid", args)
        return [MappingConfig.from_json(row[0]) for row in rows]

    def delete_mapping(self, uuid: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM mapping_checkpoints WHERE uuid = ?", (uuid,))
            conn.execute("DELETE FROM mapping_failed_batches WHERE uuid = ?", (uuid,))
            return conn.execute("DELETE FROM event_source_mappings WHERE uuid = ?", (uuid,)).rowcount > 0

        return bool(self._db.write(write))

    def checkpoints(self, uuid: str) -> list[Checkpoint]:
        rows = self._db.query(
            "SELECT uuid, shard, position, finished, updated, window FROM mapping_checkpoints WHERE uuid = ?"
            " ORDER BY shard",
            (uuid,),
        )
        return [Checkpoint(u, s, p, bool(f), t, w) for u, s, p, f, t, w in rows]

    def save_progress_nowait(
        self,
        checkpoints: Sequence[Checkpoint],
        failed: NewFailedBatch | None = None,
        event_ops: Sequence[EventOp] = (),
    ) -> Future[None]:
        rows = _checkpoint_rows(checkpoints)
        ops = list(event_ops)
        if failed is None and not ops:
            return self._db.writer.submit_item(self._db.batcher(CheckpointWriter), rows)  # type: ignore[return-value]

        def write(conn: sqlite3.Connection) -> None:
            if failed is not None:
                f = failed
                conn.execute(
                    "INSERT INTO mapping_failed_batches (uuid, shard, condition, record, payload, failed)"
                    " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM event_source_mappings WHERE uuid = ?)",
                    (f.uuid, f.shard, f.condition, f.record, f.payload, f.failed, f.uuid),
                )
            if ops:
                self._events.write_batch(conn, [ops])
            conn.executemany(_UPSERT_CHECKPOINT, rows)

        return self._db.writer.submit(write)

    def failed_batches(self, uuid: str, limit: int = 100) -> list[FailedBatch]:
        rows = self._db.query(
            f"SELECT {_BATCH_COLUMNS} FROM mapping_failed_batches WHERE uuid = ? ORDER BY id LIMIT ?",
            (uuid, max(0, limit)),
        )
        return [_batch(row) for row in rows]

    def get_failed_batch(self, batch_id: int) -> FailedBatch | None:
        rows = self._db.query(f"SELECT {_BATCH_COLUMNS} FROM mapping_failed_batches WHERE id = ?", (batch_id,))
        return _batch(rows[0]) if rows else None

    def mark_replayed(self, batch_id: int, when: float) -> None:
        self._db.write(
            lambda conn: conn.execute("UPDATE mapping_failed_batches SET replayed = ? WHERE id = ?", (when, batch_id))
        )


def _batch(row: Sequence[Any]) -> FailedBatch:
    id_, uuid, shard, condition, record, payload, failed, replayed = row
    return FailedBatch(id_, uuid, shard, condition, record, bytes(payload), failed, replayed)
