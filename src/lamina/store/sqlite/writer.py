"""The one writer: a thread that owns the write connection and group-commits.

Every write is a closure `fn(connection) -> result` queued with a Future. The writer thread takes
everything queued (up to `max_batch`), runs each closure inside its own SAVEPOINT of one
transaction, commits once, and only then resolves the futures. A closure that raises is rolled
back to its savepoint, so it fails alone: the others in the batch still commit. While one batch
is being fsynced the next one piles up in the queue, so the cost of a commit is shared by all
writers that arrived meanwhile: no timer, no added latency for a lone writer.

Why futures are resolved after COMMIT and not after each closure: "durable before acknowledged"
(DESIGN.md principle 3). A caller that sees its future done may tell the world.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from lamina.errors import ServiceError

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], T]

_STOP = object()


@dataclass(frozen=True)
class WriterStats:
    """Counters since open: `writes / commits` is the mean batch size group commit achieved."""

    writes: int = 0  # closures run (and committed or failed)
    failed: int = 0  # closures that raised
    commits: int = 0  # transactions committed
    largest_batch: int = 0


class GroupCommitWriter:
    """Owns `connection` from its own thread; `submit` is safe from any thread."""

    def __init__(self, connection: sqlite3.Connection, max_batch: int = 1024, name: str = "lamina-writer"):
        if connection.isolation_level is not None:
            raise ServiceError("the writer connection must be in autocommit mode (isolation_level=None)")
        self._conn = connection
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closing = threading.Lock()
        self._closed = False
        self._stats = WriterStats()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Write[T]) -> Future[T]:
        """Queue a write; the future resolves with its result once committed, or with its error."""
        future: Future[T] = Future()
        with self._closing:  # a write queued after _STOP would never be answered
            if self._closed:
                raise ServiceError("the store is closed")
            self._queue.put((fn, future))
        return future

    def run(self, fn: Write[T]) -> T:
        """Queue a write and wait until it is committed."""
        return self.submit(fn).result()

    def stats(self) -> WriterStats:
        return self._stats

    def close(self) -> None:
        """Commit everything queued so far, then stop the thread and close the connection."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self._commit_batch(batch)
                except Exception as exc:  # a bug here must not leave callers waiting forever
                    self._rollback_quietly()
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
        self._conn.close()

    def _commit_batch(self, batch: list[tuple[Write[Any], Future[Any]]]) -> None:
        batch = [(fn, fut) for fn, fut in batch if fut.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            outcomes = self._run_in_one_transaction(batch)
        except sqlite3.Error:
            # The transaction as a whole was lost (SQLite rolls back by itself on some I/O, disk
            # full and memory errors, or COMMIT failed). Nothing of it is durable, so fall back to
            # one transaction per write: each future then learns its own fate.
            self._rollback_quietly()
            outcomes = [self._run_alone(fn) for fn, _ in batch]
            commits = sum(1 for error, _ in outcomes if error is None)
        else:
            commits = 1
        failed = sum(1 for error, _ in outcomes if error is not None)
        s = self._stats
        self._stats = WriterStats(
            writes=s.writes + len(batch),
            failed=s.failed + failed,
            commits=s.commits + commits,
            largest_batch=max(s.largest_batch, len(batch)),
        )
        for (_, future), (error, result) in zip(batch, outcomes, strict=True):
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def _run_in_one_transaction(self, batch: list[tuple[Write[Any], Future[Any]]]) -> list[tuple[Any, Any]]:
        conn = self._conn
        outcomes: list[tuple[BaseException | None, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        for fn, _ in batch:
            conn.execute("SAVEPOINT write")
            try:
                result = fn(conn)
            except Exception as exc:
                if not conn.in_transaction:
                    raise sqlite3.OperationalError("transaction rolled back by SQLite") from exc
                conn.execute("ROLLBACK TO write")
                conn.execute("RELEASE write")
                outcomes.append((exc, None))
            else:
                conn.execute("RELEASE write")
                outcomes.append((None, result))
        conn.execute("COMMIT")
        return outcomes

    def _run_alone(self, fn: Write[Any]) -> tuple[BaseException | None, Any]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            result = fn(self._conn)
            self._conn.execute("COMMIT")
        except Exception as exc:
            self._rollback_quietly()
            return exc, None
        return None, result

    def _rollback_quietly(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
