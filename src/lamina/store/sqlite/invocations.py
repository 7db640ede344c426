"""InvocationStore on SQLite: one row per invocation, the meter behind `lamina cost`."""

from __future__ import annotations

import dataclasses
import operator
import sqlite3
from concurrent.futures import Future
from itertools import chain
from typing import Any

from lamina.model.invocation import InvocationRecord, Outcome
from lamina.store.base import CostRow
from lamina.store.sqlite.bulk import insert_padded
from lamina.store.sqlite.database import Database

# The columns are named after InvocationRecord's fields.
_FIELDS = tuple(f.name for f in dataclasses.fields(InvocationRecord))
_COLUMNS = ", ".join(_FIELDS)
_INSERT = f"INSERT OR FAIL INTO invocations ({_COLUMNS})"
_ROW = operator.attrgetter(*_FIELDS)  # record -> tuple of its fields; bool and StrEnum bind as int and str


class InvocationWriter:
    """Inserts the queued records of a batch in one padded multi-row statement (a `writer.Batcher`; bulk.py)."""

    def write_batch(self, conn: sqlite3.Connection, items: list[InvocationRecord]) -> None:
        insert_padded(conn, _INSERT, len(_FIELDS), list(chain.from_iterable(map(_ROW, items))))

    def reset(self) -> None:
        pass


class SqliteInvocationStore:
    def __init__(self, db: Database):
        self._db = db
        self._inserter = db.batcher(InvocationWriter)

    def record_invocation_nowait(self, record: InvocationRecord) -> Future[None]:
        return self._db.writer.submit_item(self._inserter, record)  # records are frozen: no copy

    def list_invocations(
        self, function: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[InvocationRecord]:
        where, params = _filter(function, since)
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM invocations {where} ORDER BY start DESC, id DESC LIMIT ?",
            [*params, max(0, limit)],
        )
        return [_record(row) for row in rows]

    def cost_by_function(self, since: float | None = None) -> list[CostRow]:
        where, params = _filter(None, since)
        rows = self._db.query(
            "SELECT function, count(*), sum(billed_ms), sum(memory_size * billed_ms)"
            f" FROM invocations {where} GROUP BY function ORDER BY function",
            params,
        )
        # GB-s = sum of memory_size/1024 * billed_ms/1000: the integer products sum exactly, then
        # one division, so the result does not depend on the order rows are summed in.
        return [CostRow(fn, requests, billed, mb_ms / 1_024_000) for fn, requests, billed, mb_ms in rows]


def _filter(function: str | None, since: float | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if function is not None:
        clauses.append("function = ?")
        params.append(function)
    if since is not None:
        clauses.append("start >= ?")
        params.append(since)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _record(row: tuple[Any, ...]) -> InvocationRecord:
    values = dict(zip(_FIELDS, row, strict=True))
    values["cold"] = bool(values["cold"])
    values["outcome"] = Outcome(values["outcome"])
    return InvocationRecord(**values)
