"""SqliteStore: the embedded Store, everything in one SQLite database `<data_dir>/lamina.db`."""

from __future__ import annotations

from pathlib import Path

from lamina.config import Settings
from lamina.store.sqlite.concurrency import SqliteConcurrencyStore
from lamina.store.sqlite.database import Database, Synchronous
from lamina.store.sqlite.functions import SqliteFunctionStore
from lamina.store.sqlite.invocations import SqliteInvocationStore
from lamina.store.sqlite.logs import SqliteLogStore
from lamina.store.sqlite.versions import SqliteVersionStore
from lamina.store.sqlite.writer import WriterStats

DB_NAME = "lamina.db"


class SqliteStore(
    SqliteFunctionStore, SqliteVersionStore, SqliteConcurrencyStore, SqliteInvocationStore, SqliteLogStore
):
    """Implements `lamina.store.base.Store`. Each part is a class of its own over one Database."""

    def __init__(self, db: Database):
        SqliteFunctionStore.__init__(self, db)
        SqliteInvocationStore.__init__(self, db)
        SqliteLogStore.__init__(self, db)

    @classmethod
    def open(cls, path: Path | str, synchronous: Synchronous = "FULL", max_batch: int = 1024) -> SqliteStore:
        """Open (creating and migrating as needed) the database file at `path`."""
        return cls(Database(Path(path), synchronous=synchronous, max_batch=max_batch))

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteStore:
        return cls.open(settings.data_dir / DB_NAME)

    @property
    def database(self) -> Database:
        """The underlying database, for stores of other parts (streams) that share its writer."""
        return self._db

    @property
    def path(self) -> Path:
        return self._db.path

    def stats(self) -> WriterStats:
        """Group-commit counters: writes, commits, failed writes, largest batch."""
        return self._db.stats()

    def close(self) -> None:
        """Commit everything queued, then close every connection. Idempotent."""
        self._db.close()
