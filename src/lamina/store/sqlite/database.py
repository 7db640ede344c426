"""One SQLite database in WAL mode: a group-committing writer thread and per-thread readers.

WAL lets readers run against the last committed snapshot while the writer appends, so readers
never block the writer and the writer never blocks readers. Reader connections are autocommit
and `query_only`; each read statement sees everything committed before it started, which gives
read-your-writes to any thread once a write method has returned.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from lamina.errors import ConfigError, ServiceError
from lamina.store.sqlite.migrations import migrate
from lamina.store.sqlite.writer import BUSY_TIMEOUT_S, Batcher, GroupCommitWriter, Write, WriterStats

Synchronous = Literal["FULL", "NORMAL"]
B = TypeVar("B", bound=Batcher)


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the base class cannot)."""


class Database:
    """Owns the connections of one database file. Thread-safe."""

    def __init__(self, path: Path, synchronous: Synchronous = "FULL", max_batch: int = 1024):
        if synchronous not in ("FULL", "NORMAL"):
            raise ConfigError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:  # the stream store's one-statement appends and reads use JSON functions
            conn.execute("SELECT json_array(1)").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            raise ConfigError(
                f"SQLite {sqlite3.sqlite_version} has no JSON functions (built in since 3.38; older builds need JSON1)"
            ) from None
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            conn.close()
            raise ConfigError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        # FULL: the WAL is fsynced at every commit, so a commit survives power loss, not only a
        # crash of the process. Group commit is what makes that affordable.
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA journal_size_limit=67108864")  # truncate the WAL back to 64 MB
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        # Weak: a thread's reader is closed when the thread ends and its threading.local goes.
        self._readers: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._closed = False
        self._batchers: dict[type, Batcher] = {}  # one of each: their caches mirror this database
        self._batchers_lock = threading.Lock()
        self.writer = GroupCommitWriter(conn, max_batch=max_batch)

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False: the writer connection is opened here and used by its thread;
        # readers are closed by close() from whichever thread calls it.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, factory=_Connection)
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    # --- writes ------------------------------------------------------------------------------

    def write(self, fn: Write[Any]) -> Any:
        """Run `fn(connection)` in the writer's next transaction; returns once committed."""
        return self.writer.run(fn)

    def batcher(self, cls: type[B]) -> B:
        """This database's one `cls()`, for `writer.submit_item`: store objects share its cache."""
        with self._batchers_lock:
            batcher = self._batchers.get(cls)
            if batcher is None:
                batcher = self._batchers[cls] = cls()
            return batcher  # type: ignore[return-value]

    def stats(self) -> WriterStats:
        return self.writer.stats()

    # --- reads -------------------------------------------------------------------------------

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection."""
        if self._closed:
            raise ServiceError("the store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            with self._readers_lock:
                self._readers.add(conn)
            self._local.conn = conn
        return conn

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return self.reader().execute(sql, params).fetchall()

    def close(self) -> None:
        """Commit what is queued, stop the writer, fold the WAL into the database, close all."""
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        with self._readers_lock:
            readers = list(self._readers)
        for conn in readers:
            conn.close()
        # A last connection to checkpoint: the next open then starts from a short WAL.
        conn = self._connect()
        try:
            conn.execute("PRAGMA optimize")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # another process still reads: its last close will checkpoint
        finally:
            conn.close()
