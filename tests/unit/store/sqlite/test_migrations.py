from __future__ import annotations

import sqlite3

import pytest

from lamina.errors import ConfigError
from lamina.store.sqlite.migrations import MIGRATIONS, _statements, migrate


def connect(path):
    return sqlite3.connect(path, isolation_level=None)


def version(conn):
    return conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]


def test_fresh_database_gets_every_migration_once(tmp_path):
    conn = connect(tmp_path / "db")
    assert migrate(conn) == 0
    assert version(conn) == len(MIGRATIONS)
    assert migrate(conn) == len(MIGRATIONS)  # a second open applies nothing
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"functions", "function_versions", "invocations", "log_groups", "log_streams", "log_events"} <= tables


def test_new_migrations_apply_in_order_on_top(tmp_path):
    conn = connect(tmp_path / "db")
    migrate(conn, MIGRATIONS[:1])
    extra = [
        *MIGRATIONS,
        "ALTER TABLE functions ADD COLUMN note TEXT; CREATE TABLE b (x);",
        "INSERT INTO b VALUES (1);",
    ]
    assert migrate(conn, extra) == 1
    assert version(conn) == len(extra)
    assert conn.execute("SELECT x FROM b").fetchall() == [(1,)]


def test_a_failing_migration_leaves_the_previous_version_intact(tmp_path):
    conn = connect(tmp_path / "db")
    migrate(conn)
    broken = [*MIGRATIONS, "CREATE TABLE half (x); INSERT INTO no_such_table VALUES (1);"]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert version(conn) == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half'").fetchone()[0] == 0


def test_a_newer_database_is_refused(tmp_path):
    conn = connect(tmp_path / "db")
    migrate(conn, [*MIGRATIONS, "CREATE TABLE future (x);"])
    with pytest.raises(ConfigError, match="newer than this Lamina knows"):
        migrate(conn)


def test_statements_split_on_complete_statements_only():
    script = """
        CREATE TABLE a (x); -- a comment; with a semicolon
        CREATE TRIGGER t AFTER INSERT ON a BEGIN
            INSERT INTO a VALUES (1); INSERT INTO a VALUES (2);
        END;
    """
    parts = [s.strip() for s in _statements(script)]
    assert len(parts) == 2 and parts[1].startswith("-- a comment") and parts[1].endswith("END;")
