"""Many rows per statement, for the writer's batches.

`executemany` steps its statement once per row, and Python's sqlite3 releases and retakes the GIL
about three times per row (counting parameters, stepping, resetting): under load each is a
possible hand-off with the event loop's thread (futex calls, context switches). One
`INSERT ... VALUES (...), (...), ...` per chunk of rows does the same work in one step. Callers
write `INSERT OR FAIL` / `UPDATE OR FAIL`: a statement that changes many rows and may abort midway
otherwise needs a statement journal (page copies, spilled to a temporary file past 64 KiB).
Chunks have power-of-two sizes, so a handful of distinct statements serve every batch size (they
stay in the connection's statement cache), and no statement has more than 999 parameters (the
smallest limit an SQLite build may have).
"""

from __future__ import annotations

import bisect
import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

MAX_PARAMETERS = 999


def execute_rows(conn: sqlite3.Connection, head: str, width: int, params: Sequence[Any], tail: str = "") -> int:
    """Run `head + "(?, ...), (?, ...), ..." + tail` over `params`, a flat list of rows of `width`.

    Returns the number of rows the statements changed."""
    count = len(params) // width
    if count * width != len(params):
        raise ValueError(f"{len(params)} parameters do not make rows of {width}")
    most = _largest_chunk(width)
    start = changed = 0
    while count:
        rows = min(most, 1 << (count.bit_length() - 1))  # the largest power of two that fits
        end = start + rows * width
        chunk = params[start:end] if start or end < len(params) else params
        changed += conn.execute(_sql(head, width, rows, tail), chunk).rowcount
        start = end
        count -= rows
    return changed


@functools.cache
def _largest_chunk(width: int) -> int:
    return 1 << ((MAX_PARAMETERS // width).bit_length() - 1)


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
