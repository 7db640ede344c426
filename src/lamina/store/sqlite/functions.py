"""FunctionStore on SQLite: identity and tags in `functions`, configs in `function_versions`."""

from __future__ import annotations

import json
import sqlite3

from lamina.model.function import LATEST, FunctionConfig, FunctionRecord, frozen_map
from lamina.store.base import check_latest, function_exists, function_not_found, revision_mismatch
from lamina.store.codec import from_json, to_json
from lamina.store.sqlite.database import Database

_SELECT = """
    SELECT f.created, f.tags, v.config
    FROM functions f JOIN function_versions v ON v.name = f.name AND v.version = ?
"""


class SqliteFunctionStore:
    def __init__(self, db: Database):
        self._db = db

    def create_function(self, record: FunctionRecord) -> None:
        check_latest(record)

        def create(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO functions (name, created, tags) VALUES (?, ?, ?)",
                    (record.config.name, record.created, json.dumps(dict(record.tags))),
                )
            except sqlite3.IntegrityError:
                raise function_exists(record.config.name) from None
            put_config(conn, record.config)

        self._db.write(create)

    def update_function(self, record: FunctionRecord, expected_revision: str | None = None) -> None:
        check_latest(record)
        name = record.config.name

        def update(conn: sqlite3.Connection) -> None:
            # Compare-and-set inside the writer's transaction: nothing can slip in between.
            row = conn.execute(
                "SELECT revision_id FROM function_versions WHERE name = ? AND version = ?", (name, LATEST)
            ).fetchone()
            if row is None:
                raise function_not_found(name)
            if expected_revision is not None and row[0] != expected_revision:
                raise revision_mismatch()
            conn.execute(
                "UPDATE functions SET created = ?, tags = ? WHERE name = ?",
                (record.created, json.dumps(dict(record.tags)), name),
            )
            put_config(conn, record.config)

        self._db.write(update)

    def get_function(self, name: str) -> FunctionRecord | None:
        rows = self._db.query(_SELECT + " WHERE f.name = ?", (LATEST, name))
        return _record(*rows[0]) if rows else None

    def delete_function(self, name: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            # Invocation records and logs are history and stay.
            conn.execute("DELETE FROM function_versions WHERE name = ?", (name,))
            conn.execute("DELETE FROM function_aliases WHERE name = ?", (name,))
            conn.execute("DELETE FROM function_concurrency WHERE name = ?", (name,))
            conn.execute("DELETE FROM provisioned_concurrency WHERE name = ?", (name,))
            conn.execute("DELETE FROM event_invoke_configs WHERE name = ?", (name,))
            return conn.execute("DELETE FROM functions WHERE name = ?", (name,)).rowcount > 0

        return bool(self._db.write(delete))

    def list_functions(self, after: str | None = None, limit: int = 50) -> list[FunctionRecord]:
        rows = self._db.query(
            _SELECT + " WHERE f.name > ? ORDER BY f.name LIMIT ?", (LATEST, after or "", max(0, limit))
        )
        return [_record(*row) for row in rows]


def put_config(conn: sqlite3.Connection, config: FunctionConfig) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO function_versions (name, version, revision_id, code_sha256, config)"
        " VALUES (?, ?, ?, ?, ?)",
        (config.name, config.version, config.revision_id, config.code_sha256, to_json(config)),
    )


def _record(created: float, tags: str, config: str) -> FunctionRecord:
    return FunctionRecord(config=from_json(FunctionConfig, config), tags=frozen_map(json.loads(tags)), created=created)
