"""The embedded store: SQLite in WAL mode with one group-committing writer."""

from lamina.store.sqlite.store import SqliteStore
from lamina.store.sqlite.writer import WriterStats

__all__ = ["SqliteStore", "WriterStats"]
