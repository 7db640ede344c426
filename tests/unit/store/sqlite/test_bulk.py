"""insert_padded and execute_padded: one padded statement per chunk of rows, in order, the padding
changing nothing; the padded sizes and chunk limits."""

from __future__ import annotations

import sqlite3

import pytest

from lamina.store.sqlite.bulk import (
    PADDED_SIZES,
    execute_padded,
    insert_padded,
    largest_chunk,
    padded_size,
)


@pytest.fixture
def conn():
    c = sqlite3.connect(":memory:", isolation_level=None)
    c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b, c)")
    return c


def test_padded_sizes_hold_any_count_with_little_waste():
    for rows in range(1, 3073):
        size = padded_size(rows)
        assert size in PADDED_SIZES and rows <= size <= max(1, rows * 3 // 2)


def test_largest_chunk_respects_the_connections_variable_limit(conn):
    default = largest_chunk(conn, 3, extra=3)
    assert default * 3 + 3 <= conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) and default <= 1024
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # an old SQLite's limit
    assert largest_chunk(conn, 3, extra=3) == 256 and largest_chunk(conn, 5) == 192


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7, 64, 333, 1024, 1025, 2500])
def test_padded_inserts_every_row_in_order_in_one_statement_per_chunk(conn, count):
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    params = [v for i in range(count) for v in (i, f"b{i}", None)]
    assert insert_padded(conn, "INSERT INTO t (a, b, c)", 3, params) == count
    conn.set_trace_callback(None)
    assert conn.execute("SELECT a, b, c FROM t ORDER BY id").fetchall() == [(i, f"b{i}", None) for i in range(count)]
    most = largest_chunk(conn, 3, extra=1)
    assert len(statements) == -(-count // most)  # one statement per chunk, not one per power of two
    assert all(s.count("(") - 2 in PADDED_SIZES for s in statements)  # "(a, b, c)", "FROM (VALUES", rows


def test_padded_updates_and_deletes_ignore_the_padding(conn):
    insert_padded(conn, "INSERT INTO t (a, b, c)", 3, [1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0])
    head, tail = "UPDATE t SET b = v.column2 FROM (VALUES ", ") AS v WHERE t.a = v.column1"
    assert execute_padded(conn, head, 2, [1, "x", 3, "z", 99, "none"], tail) == 2  # 3 rows: no padding
    assert execute_padded(conn, head, 2, [1, "y", 2, "y", 3, "y", 4, "y", 5, "y"], tail) == 4  # 5 padded to 6
    assert conn.execute("SELECT a, b FROM t ORDER BY a").fetchall() == [(1, "y"), (2, "y"), (3, "y"), (4, "y")]
    assert execute_padded(conn, "DELETE FROM t WHERE a IN (VALUES ", 1, [2, 4, 5, 6, 7], ")") == 2  # 5 padded to 6
    assert conn.execute("SELECT a FROM t ORDER BY a").fetchall() == [(1,), (3,)]


def test_padded_inserts_keep_real_rows_of_nulls_and_their_constraint_errors(conn):
    conn.execute("CREATE TABLE strict (a NOT NULL, b)")
    nulls = [None, None, None]
    insert_padded(conn, "INSERT INTO t (a, b, c)", 3, [*nulls, 1, 2, 3, *nulls, 4, 5, 6, *nulls])  # 5 padded to 6
    assert conn.execute("SELECT a, b, c FROM t ORDER BY id").fetchall() == [
        (None, None, None), (1, 2, 3), (None, None, None), (4, 5, 6), (None, None, None)
    ]  # fmt: skip
    insert_padded(conn, "INSERT INTO strict (a, b)", 2, [1, None, 2, None, 3, None, 4, None, 5, None])  # 5 padded to 6
    assert conn.execute("SELECT count(*) FROM strict").fetchone() == (5,)  # the padding row was not inserted
    with pytest.raises(sqlite3.IntegrityError):
        insert_padded(conn, "INSERT OR FAIL INTO strict (a, b)", 2, [6, None, None, None, 7, None])


def test_padded_refuses_a_partial_row(conn):
    with pytest.raises(ValueError):
        insert_padded(conn, "INSERT INTO t (a, b, c)", 3, [1, 2])


def test_padded_statements_split_at_an_old_sqlites_parameter_limit(conn):
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    assert insert_padded(conn, "INSERT INTO t (a, b, c)", 3, [v for i in range(700) for v in (i, None, None)]) == 700
    assert execute_padded(conn, "DELETE FROM t WHERE a IN (VALUES ", 1, list(range(0, 700, 2)), ")") == 350
    conn.set_trace_callback(None)
    assert len(statements) == 3 + 1  # 700 rows of 3 (+ the limit) in chunks of 256; 350 ids in one
    assert [a for (a,) in conn.execute("SELECT a FROM t ORDER BY id")] == list(range(1, 700, 2))
