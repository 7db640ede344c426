"""The one writer: a thread that owns the write connection and group-commits.

Two kinds of writes are queued, each with a Future:
- a closure `fn(connection) -> result`, for anything (creating a function, deleting a group);
- an item for a `Batcher`, for the hot writes that come many at a time (log appends, invocation
  records): the batcher writes all the items of a batch with a few set-wise statements.

The writer thread takes everything queued (up to `max_batch`) and runs it, in queue order, in one
transaction: each closure inside its own SAVEPOINT; each run of batcher items between two closures
with one `write_batch` call per batcher, without a savepoint. Then it commits once, and only then
resolves the futures. A closure that raises is rolled back to its savepoint, so it fails alone.
If a `write_batch` raises, the whole transaction is rolled back and the batch is run again with
every write (batcher items too) in its own savepoint, so only the bad items fail. While one batch
is being fsynced the next one piles up in the queue, so the cost of a commit is shared by all
writers that arrived meanwhile: no timer, no added latency for a lone writer.

A batch made only of one `SoloBatcher`'s items (stream appends, the hottest write) skips all of
that when the batcher can write it as one statement outside any transaction: SQLite takes the
write lock, writes and fsyncs within that one call, so the lock is never held while this thread
waits to win the interpreter lock back from the event loop between statements (measured: a
500-record append held the lock ~3 ms that way, ~1 ms as one statement, with edge workers
contending for it).

Savepoints are not free: SQLite copies every page a savepoint's writes change to a sub-journal
(a temporary file past 64 KiB), and so does a statement that changes many rows and may abort
midway; batchers use `INSERT OR FAIL` and `UPDATE OR FAIL`, which need no statement journal.

A closure may run more than once (its first run rolled back with the rest of a batch), so it must
not have effects outside the connection. Batchers are for writes whose failures are exceptional
(bad data, a bug); a closure is for a write that may fail as a matter of course.

Why futures are resolved after COMMIT and not after each write: "durable before acknowledged"
(DESIGN.md principle 3). A caller that sees its future done may tell the world.

A write queued from an event loop's thread gets an `asyncio.Future` of that loop; from any other
thread, a `concurrent.futures.Future`. After a commit the writer wakes each loop once with every
outcome of the batch: a concurrent future wrapped for the loop costs a lock, a condition and a
cross-thread callback per write (~9 µs of the loop's time each, measured), a burst of hundreds of
writes per commit paid it hundreds of times. `asyncio.wrap_future` passes an asyncio future
through unchanged, so `await asyncio.wrap_future(x)` serves both kinds. An asyncio future's write
is never skipped: cancelling the awaiting task does not unqueue it (a concurrent future cancelled
before its batch runs still is).

Batchers may cache what they know of the database (log group and stream ids, the streams' last
counter, which shards are open). The writer calls their `reset()` whenever that knowledge may be
wrong: after any rollback (of a savepoint or of a transaction), after any closure ran, and when a
transaction begins after another connection committed (`PRAGMA data_version` moved: another
process writing the same database, as DESIGN.md allows; one cheap pragma per transaction).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from lamina.errors import ServiceError

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], T]

BUSY_TIMEOUT_S = 10.0  # how long a write waits for another process's lock (readers too)
BUSY_STEP_S = 0.0002

_STOP = object()
_OK: tuple[None, None] = (None, None)


class Batcher(Protocol):
    """Writes queued items of one kind together; used from the writer thread only."""

    def write_batch(self, conn: sqlite3.Connection, items: list[Any]) -> None:
        """Write `items` (in queue order) inside the current transaction, all of them or raise."""

    def reset(self) -> None:
        """Forget anything cached about the database's contents."""


class SoloBatcher(Batcher, Protocol):
    """A batcher that can write a batch of its items as one self-committing statement."""

    def write_alone(self, conn: sqlite3.Connection, items: list[Any]) -> bool:
        """Outside any transaction, write `items` with one statement (all or nothing: the statement
        is its own transaction) and return True; or write nothing and return False. `conn`'s
        `execute` waits out another process's write lock."""


# What a write resolves: see the module docstring for which kind a caller gets.
Committed = Future | asyncio.Future

# A queued write: (None, closure, future) or (batcher, item, future).
_Entry = tuple[Batcher | None, Any, Committed]


class _RunFailed(Exception):
    """A batcher's `write_batch` raised in the fast path: the batch is to be run carefully."""


@dataclass(frozen=True)
class WriterStats:
    """Counters since open: `writes / commits` is the mean batch size group commit achieved."""

    writes: int = 0  # closures and batcher items run (and committed or failed)
    failed: int = 0  # writes that raised
    commits: int = 0  # transactions committed
    largest_batch: int = 0


class GroupCommitWriter:
    """Owns `connection` from its own thread; `submit` and `submit_item` are safe from any thread."""

    def __init__(self, connection: sqlite3.Connection, max_batch: int = 1024, name: str = "lamina-writer"):
        if connection.isolation_level is not None:
            raise ServiceError("the writer connection must be in autocommit mode (isolation_level=None)")
        self._conn = connection
        connection.execute("PRAGMA busy_timeout=0")  # _begin waits for the write lock itself
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closing = threading.Lock()
        self._closed = False
        self._stats = WriterStats()
        self._batchers: set[Batcher] = set()  # every batcher seen (writer thread only)
        self._data_version: int | None = None  # as of our last transaction: others' commits move it
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Write[T]) -> Committed:
        """Queue a write; the future resolves with its result once committed, or with its error."""
        return self._put(None, fn)

    def submit_item(self, batcher: Batcher, item: Any) -> Committed:
        """Queue `item` for `batcher.write_batch`; the future resolves with None once committed."""
        return self._put(batcher, item)

    def _put(self, batcher: Batcher | None, payload: Any, blocking: bool = False) -> Committed:
        future: Committed
        if blocking:
            future = Future()
        else:
            try:
                future = asyncio.get_running_loop().create_future()
            except RuntimeError:  # not on an event loop's thread
                future = Future()
        with self._closing:  # a write queued after _STOP would never be answered
            if self._closed:
                raise ServiceError("the store is closed")
            self._queue.put((batcher, payload, future))
        return future

    def run(self, fn: Write[T]) -> T:
        """Queue a write and wait until it is committed."""
        future = self._put(None, fn, blocking=True)
        assert isinstance(future, Future)
        return future.result()

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
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while not stopping:
            batch: list[_Entry] = []
            item = get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= self._max_batch:
                    break
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self._commit_batch(batch)
                except Exception as exc:  # a bug here must not leave callers waiting forever
                    self._rollback_quietly()
                    _settle([entry[2] for entry in batch], [(exc, None)] * len(batch))
        self._conn.close()

    def _commit_batch(self, batch: list[_Entry]) -> None:
        batch = [e for e in batch if not isinstance(e[2], Future) or e[2].set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            outcomes = self._solo(batch)
            if outcomes is None:
                outcomes = self._run_in_one_transaction(batch)
            commits = 1
        except sqlite3.Error:
            # The transaction as a whole was lost (SQLite rolls back by itself on some I/O, disk
            # full and memory errors, or COMMIT failed). Nothing of it is durable, so fall back to
            # one transaction per write: each future then learns its own fate.
            self._rollback_quietly()
            outcomes = [self._run_alone(entry) for entry in batch]
            commits = sum(1 for error, _ in outcomes if error is None)
        failed = sum(1 for error, _ in outcomes if error is not None)
        s = self._stats
        self._stats = WriterStats(
            writes=s.writes + len(batch),
            failed=s.failed + failed,
            commits=s.commits + commits,
            largest_batch=max(s.largest_batch, len(batch)),
        )
        _settle([entry[2] for entry in batch], outcomes)

    def _solo(self, batch: list[_Entry]) -> list[tuple[Any, Any]] | None:
        """A batch of one SoloBatcher's items, written as its one statement: no BEGIN, no COMMIT,
        and no interpreter lock needed while SQLite holds the write lock. None: not that kind of
        batch (or it does not fit one statement), to be run in a transaction. If the statement
        fails (raised as an sqlite3.Error), each write is run again alone, in its own transaction,
        to learn its own fate, as when a transaction is lost."""
        batcher = batch[0][0]
        write_alone = getattr(batcher, "write_alone", None)
        if write_alone is None or any(entry[0] is not batcher for entry in batch):
            return None
        self._batchers.add(batcher)  # type: ignore[arg-type]
        items = [entry[1] for entry in batch]
        try:
            if not write_alone(_Patient(self._conn, self._when_unlocked), items):
                return None
        except sqlite3.Error:
            raise
        except Exception as exc:  # e.g. a shard closed under an append: stored nothing either
            raise sqlite3.DatabaseError("the solo statement failed") from exc
        return [_OK] * len(batch)

    def _run_in_one_transaction(self, batch: list[_Entry]) -> list[tuple[Any, Any]]:
        try:
            return self._attempt(batch, careful=False)
        except _RunFailed:
            # Some batcher item is bad. Undo everything and run the batch again, each write in
            # its own savepoint this time: only the bad items fail.
            self._rollback_quietly()
            return self._attempt(batch, careful=True)

    def _attempt(self, batch: list[_Entry], careful: bool) -> list[tuple[Any, Any]]:
        """One transaction for the batch, in queue order.

        Fast (careful=False): each run of batcher items between two closures is written with one
        `write_batch` per batcher, with no savepoint (a savepoint copies every page it changes
        to a sub-journal), so a failure there raises _RunFailed with half the run written.
        Careful: each batcher item in its own savepoint. Closures always get their own savepoint:
        that they raise is a normal outcome (a conflict, a missing function).
        """
        conn = self._conn
        outcomes: list[tuple[BaseException | None, Any]] = [_OK] * len(batch)
        run: list[int] = []  # indices of the batcher items since the last closure
        self._begin()
        for i, (batcher, payload, _) in enumerate(batch):
            if batcher is not None:
                if careful:
                    self._batchers.add(batcher)
                    outcomes[i] = self._in_savepoint(lambda c, b=batcher, p=payload: b.write_batch(c, [p]))
                else:
                    run.append(i)
                continue
            if run:
                self._write_run(batch, run)
                run = []
            outcomes[i] = self._in_savepoint(payload)
            self._reset_batchers()  # the closure may have changed what they cache
        if run:
            self._write_run(batch, run)
        conn.execute("COMMIT")
        return outcomes

    def _in_savepoint(self, fn: Write[Any]) -> tuple[BaseException | None, Any]:
        conn = self._conn
        conn.execute("SAVEPOINT write")
        try:
            result = fn(conn)
        except Exception as exc:
            if not conn.in_transaction:
                raise sqlite3.OperationalError("transaction rolled back by SQLite") from exc
            conn.execute("ROLLBACK TO write")
            conn.execute("RELEASE write")
            self._reset_batchers()
            return exc, None
        conn.execute("RELEASE write")
        return None, result

    def _write_run(self, batch: list[_Entry], run: list[int]) -> None:
        """Write consecutive batcher items set-wise: one `write_batch` call per batcher."""
        groups: dict[Batcher, list[Any]] = {}
        for i in run:
            batcher, payload, _ = batch[i]
            items = groups.get(batcher)
            if items is None:
                groups[batcher] = [payload]  # type: ignore[index]
            else:
                items.append(payload)
        self._batchers.update(groups)
        try:
            for batcher, items in groups.items():
                batcher.write_batch(self._conn, items)
        except Exception as exc:
            if not self._conn.in_transaction:
                raise sqlite3.OperationalError("transaction rolled back by SQLite") from exc
            raise _RunFailed from exc

    def _run_alone(self, entry: _Entry) -> tuple[BaseException | None, Any]:
        batcher, payload, _ = entry
        try:
            self._begin()
            if batcher is None:
                result = payload(self._conn)
                self._reset_batchers()
            else:
                self._batchers.add(batcher)
                result = batcher.write_batch(self._conn, [payload])
            self._conn.execute("COMMIT")
        except Exception as exc:
            self._rollback_quietly()
            return exc, None
        return None, result

    def _begin(self) -> None:
        """BEGIN IMMEDIATE (the write lock), then forget cached state if others wrote meanwhile."""
        self._when_unlocked(lambda: self._conn.execute("BEGIN IMMEDIATE"))
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self._reset_batchers()

    def _when_unlocked(self, fn: Callable[[], T]) -> T:
        """`fn()`, a statement that takes the write lock, tried again while another process holds it.

        Edge workers write the same file. SQLite's own busy handler sleeps 1, 2, 5, 10 ... up to
        100 ms between tries, so a waiter could sleep through many short transactions of the other
        writer: measured, a mapping's checkpoints stalled for 250 ms at a time. This waits in steps
        of 0.2 ms instead, up to the same 10 s."""
        deadline = None
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                now = time.monotonic()
                deadline = deadline or now + BUSY_TIMEOUT_S
                if now > deadline:
                    raise
                time.sleep(BUSY_STEP_S)

    def _reset_batchers(self) -> None:
        for batcher in self._batchers:
            batcher.reset()

    def _rollback_quietly(self) -> None:
        self._reset_batchers()
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass


class _Patient:
    """The writer's connection for `write_alone`: `execute` waits out another process's write lock
    (the statement is tried again, its parameters built once)."""

    def __init__(self, conn: sqlite3.Connection, when_unlocked: Callable[[Callable[[], Any]], Any]) -> None:
        self._conn = conn
        self._when_unlocked = when_unlocked

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self._when_unlocked(lambda: self._conn.execute(sql, params))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _settle(futures: list[Committed], outcomes: list[tuple[Any, Any]]) -> None:
    """Resolve concurrent futures here, and each loop's futures with one wake-up of that loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, Any]]] = {}
    for future, (error, result) in zip(futures, outcomes, strict=True):
        if isinstance(future, Future):
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        else:
            by_loop.setdefault(future.get_loop(), []).append((future, error, result))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_on_loop, settled)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _settle_on_loop(settled: list[tuple[asyncio.Future[Any], Any, Any]]) -> None:
    for future, error, result in settled:
        if future.done():  # its waiter was cancelled
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
