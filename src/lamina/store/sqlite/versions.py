"""VersionStore on SQLite: published configs share `function_versions` with $LATEST; aliases
live in `function_aliases`; `functions.last_version` keeps numbers from ever being reused."""

from __future__ import annotations

import json
import sqlite3
from types import MappingProxyType

from lamina.errors import ResourceConflict
from lamina.model.function import LATEST, AliasRecord, FunctionConfig
from lamina.store.base import alias_exists, alias_not_found, function_not_found, revision_mismatch
from lamina.store.codec import from_json
from lamina.store.sqlite.database import Database
from lamina.store.sqlite.functions import put_config


class SqliteVersionStore:
    _db: Database

    def create_version(self, config: FunctionConfig, latest_revision: str) -> None:
        name, number = config.name, int(config.version)

        def create(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT v.revision_id, f.last_version FROM functions f"
                " JOIN function_versions v ON v.name = f.name AND v.version = ? WHERE f.name = ?",
                (LATEST, name),
            ).fetchone()
            if row is None:
                raise function_not_found(name)
            if row[0] != latest_revision:
                raise revision_mismatch()
            if number != row[1] + 1:
                raise ResourceConflict(f"Version {number} of {name} cannot be published: next is {row[1] + 1}")
            conn.execute("UPDATE functions SET last_version = ? WHERE name = ?", (number, name))
            put_config(conn, config)

        self._db.write(create)

    def get_version(self, name: str, version: str) -> FunctionConfig | None:
        rows = self._db.query("SELECT config FROM function_versions WHERE name = ? AND version = ?", (name, version))
        return from_json(FunctionConfig, rows[0][0]) if rows else None

    def list_versions(self, name: str) -> list[FunctionConfig]:
        rows = self._db.query(
            "SELECT config FROM function_versions WHERE name = ? ORDER BY version != ?, CAST(version AS INTEGER)",
            (name, LATEST),
        )
        return [from_json(FunctionConfig, row[0]) for row in rows]

    def last_version(self, name: str) -> int:
        rows = self._db.query("SELECT last_version FROM functions WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def delete_version(self, name: str, version: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM function_versions WHERE name = ? AND version = ? AND version != ?", (name, version, LATEST)
            )
            return cursor.rowcount > 0

        return bool(self._db.write(delete))

    def put_alias(self, alias: AliasRecord, expected_revision: str | None) -> None:
        key = f"{alias.function}:{alias.name}"

        def put(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM functions WHERE name = ?", (alias.function,)).fetchone() is None:
                raise function_not_found(alias.function)
            row = conn.execute(
                "SELECT revision_id FROM function_aliases WHERE name = ? AND alias = ?", (alias.function, alias.name)
            ).fetchone()
            if expected_revision is None and row is not None:
                raise alias_exists(key)
            if expected_revision is not None:
                if row is None:
                    raise alias_not_found(key)
                if row[0] != expected_revision:
                    raise revision_mismatch()
            conn.execute(
                "INSERT OR REPLACE INTO function_aliases"
                " (name, alias, function_version, description, routing, revision_id) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    alias.function,
                    alias.name,
                    alias.function_version,
                    alias.description,
                    json.dumps(dict(alias.routing)),
                    alias.revision_id,
                ),
            )

        self._db.write(put)

    def get_alias(self, name: str, alias: str) -> AliasRecord | None:
        rows = self._db.query(_ALIAS + " WHERE name = ? AND alias = ?", (name, alias))
        return _alias(*rows[0]) if rows else None

    def list_aliases(self, name: str) -> list[AliasRecord]:
        return [_alias(*row) for row in self._db.query(_ALIAS + " WHERE name = ? ORDER BY alias", (name,))]

    def delete_alias(self, name: str, alias: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM function_aliases WHERE name = ? AND alias = ?", (name, alias)).rowcount > 0

        return bool(self._db.write(delete))


_ALIAS = "SELECT name, alias, function_version, description, routing, revision_id FROM function_aliases"


def _alias(name: str, alias: str, version: str, description: str, routing: str, revision: str) -> AliasRecord:
    weights = {str(k): float(v) for k, v in json.loads(routing).items()}
    return AliasRecord(name, alias, version, description, MappingProxyType(weights), revision)
