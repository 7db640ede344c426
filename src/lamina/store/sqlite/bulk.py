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
