"""Fixtures: `store` runs a test against both the SQLite store and its in-memory twin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lamina.store.base import Store
from lamina.store.memory import MemoryStore
from lamina.store.sqlite import SqliteStore
from tests.unit.records import config, invocation, record

__all__ = ["config", "invocation", "record", "store"]


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    s: Store = SqliteStore.open(tmp_path / "lamina.db") if request.param == "sqlite" else MemoryStore()
    yield s
    s.close()
