"""Fixtures: a StreamService over the SQLite stream store in a temporary directory (and over its
in-memory twin), with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lamina.sources.streams import SqliteStreamStore, StreamService, StreamStore
from lamina.sources.streams.memory import MemoryStreamStore
from lamina.store.sqlite import SqliteStore


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "memory"])
def stream_store(request: pytest.FixtureRequest, tmp_path, clock: FakeClock) -> Iterator[StreamStore]:
    """Each test runs against the SQLite store and its in-memory twin: one contract."""
    if request.param == "memory":
        yield MemoryStreamStore(clock=clock)
        return
    store = SqliteStore.open(tmp_path / "lamina.db")
    yield SqliteStreamStore(store.database, clock=clock)
    store.close()


@pytest.fixture
def streams(stream_store: StreamStore, clock: FakeClock) -> StreamService:
    return StreamService(stream_store, clock=clock)
