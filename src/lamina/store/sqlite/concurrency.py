"""ConcurrencyStore on SQLite: tables `function_concurrency` and `provisioned_concurrency`
(migration 4). Rows go with their function (SqliteFunctionStore.delete_function)."""

from __future__ import annotations

import sqlite3

from lamina.model.concurrency import ProvisionedConfig
from lamina.store.base import function_not_found
from lamina.store.sqlite.database import Database

_EXISTS = "SELECT 1 FROM functions WHERE name = ?"


class SqliteConcurrencyStore:
    _db: Database

    def put_reserved_concurrency(self, function: str, reserved: int) -> None:
        def put(conn: sqlite3.Connection) -> None:
            if conn.execute(_EXISTS, (function,)).fetchone() is None:
                raise function_not_found(function)
            conn.execute(
                "INSERT OR REPLACE INTO function_concurrency (name, reserved) VALUES (?, ?)", (function, reserved)
            )

        self._db.write(put)

    def get_reserved_concurrency(self, function: str) -> int | None:
        rows = self._db.query("SELECT reserved FROM function_concurrency WHERE name = ?", (function,))
        return int(rows[0][0]) if rows else None

    def delete_reserved_concurrency(self, function: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM function_concurrency WHERE name = ?", (function,)).rowcount > 0

        return bool(self._db.write(delete))

    def reserved_concurrencies(self) -> dict[str, int]:
        return {name: int(n) for name, n in self._db.query("SELECT name, reserved FROM function_concurrency", ())}

    def put_provisioned_config(self, config: ProvisionedConfig) -> None:
        def put(conn: sqlite3.Connection) -> None:
            if conn.execute(_EXISTS, (config.function,)).fetchone() is None:
                raise function_not_found(config.function)
            conn.execute(
                "INSERT OR REPLACE INTO provisioned_concurrency (name, qualifier, requested, last_modified)"
                " VALUES (?, ?, ?, ?)",
                (config.function, config.qualifier, config.requested, config.last_modified),
            )

        self._db.write(put)

    def get_provisioned_config(self, function: str, qualifier: str) -> ProvisionedConfig | None:
        rows = self._db.query(
            "SELECT name, qualifier, requested, last_modified FROM provisioned_concurrency"
            " WHERE name = ? AND qualifier = ?",
            (function, qualifier),
        )
        return ProvisionedConfig(*rows[0]) if rows else None

    def delete_provisioned_config(self, function: str, qualifier: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM provisioned_concurrency WHERE name = ? AND qualifier = ?", (function, qualifier)
            )
            return cursor.rowcount > 0

        return bool(self._db.write(delete))

    def list_provisioned_configs(self, function: str | None = None) -> list[ProvisionedConfig]:
        sql = "SELECT name, qualifier, requested, last_modified FROM provisioned_concurrency"
        if function is None:
            rows = self._db.query(sql + " ORDER BY name, qualifier", ())
        else:
            rows = self._db.query(sql + " WHERE name = ? ORDER BY qualifier", (function,))
        return [ProvisionedConfig(*row) for row in rows]
