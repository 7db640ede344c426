"""Many rows per statement, for the writer's batches.

`executemany` steps its statement once per row, and Python's sqlite3 releases and retakes the GIL
about three times per row (counting parameters, stepping, resetting): under load each is a
possible hand-off with the event loop's thread (futex calls, context switches), made while the
writer holds SQLite's write lock (decision 0042). One `INSERT ... VALUES (...), (...), ...` does
the same work in one step. A batch is written in one statement per chunk of rows, as many as
the connection's parameter limit allows, padded with rows of NULLs to one of a few prepared sizes,
so a handful of distinct statements serve every batch size (they stay in the connection's
statement cache). Callers write `INSERT OR FAIL` / `UPDATE OR FAIL`: a statement that changes
many rows and may abort midway otherwise needs a statement journal (page copies, spilled to a
temporary file past 64 KiB).
"""

from __future__ import annotations

import bisect
import functools
import sqlite3
from collections.abc import Sequence
from typing import Any


def execute_padded(conn: sqlite3.Connection, head: str, width: int, params: Sequence[Any], tail: str = "") -> int:
    """Run `head + "(?, ...), (?, ...), ..." + tail` over `params`, a flat list of rows of `width`,
    for an update or a delete: in as few statements as the connection's parameter limit allows,
    each padded with rows of NULLs up to one of PADDED_SIZES.

    The statement must match its rows with `=` or `IN`, which a NULL never satisfies, so the
    padding changes nothing. Returns the number of rows the statements changed."""
    return _padded(conn, head, width, params, tail, limited=False)


def insert_padded(conn: sqlite3.Connection, head: str, width: int, params: Sequence[Any]) -> int:
    """`head` (an `INSERT ... INTO table (columns)`) over `params`, rows of `width`, in order, as
    `execute_padded` does. The rows are selected `FROM (VALUES ...) LIMIT n`: the padding comes
    last and is cut off by the limit, so a real row of NULLs still meets the table's constraints."""
    return _padded(conn, head + " SELECT * FROM (VALUES ", width, params, ") LIMIT ?", limited=True)


def _padded(conn: sqlite3.Connection, head: str, width: int, params: Sequence[Any], tail: str, limited: bool) -> int:
    count = len(params) // width
    if count * width != len(params):
        raise ValueError(f"{len(params)} parameters do not make rows of {width}")
    most = largest_chunk(conn, width, extra=1 if limited else 0)
    changed = 0
    for first in range(0, count, most):
        rows = min(most, count - first)
        size = padded_size(rows)
        chunk = params[first * width : (first + rows) * width] if rows < count else params
        if size > rows or limited:
            chunk = [*chunk, *(None,) * ((size - rows) * width), *((rows,) if limited else ())]
        changed += conn.execute(_sql(head, width, size, tail), chunk).rowcount
    return changed


@functools.cache
def _sql(head: str, width: int, rows: int, tail: str) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return head + ", ".join([row] * rows) + tail


# Row counts a padded statement is prepared for: powers of two and 1.5 times them, so padding
# wastes at most a third of a statement and a handful of statements serve every batch size.
PADDED_SIZES = tuple(sorted({n for k in range(12) for n in (1 << k, 3 << k >> 1)} - {0}))


def padded_size(rows: int) -> int:
    """The smallest of PADDED_SIZES that holds `rows` (callers keep rows ≤ their largest chunk)."""
    return PADDED_SIZES[bisect.bisect_left(PADDED_SIZES, rows)]


def largest_chunk(conn: sqlite3.Connection, width: int, extra: int = 0, cap: int = 1024) -> int:
    """The most rows of `width` parameters (plus `extra` others) one statement may bind: this
    SQLite's own limit (999 in old builds, 32,766 since 3.32, more in some distributions)."""
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(n for n in PADDED_SIZES if n <= cap and n * width + extra <= limit)
