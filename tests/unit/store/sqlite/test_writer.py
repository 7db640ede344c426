"""Group commit: batching, per-write failure isolation, durability ordering, shutdown."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from lamina.errors import ResourceConflict, ServiceError
from lamina.store.sqlite.writer import GroupCommitWriter


@pytest.fixture
def conn(tmp_path):
    c = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    return c


def insert(key):
    return lambda c: c.execute("INSERT INTO t VALUES (?)", (key,)).lastrowid


def keys(path):
    with sqlite3.connect(path) as c:
        return sorted(k for (k,) in c.execute("SELECT k FROM t"))


def blocked(writer):
    """Hold the writer thread so the next writes queue up and land in one batch."""
    release, entered = threading.Event(), threading.Event()

    def hold(_):
        entered.set()
        release.wait(10)

    writer.submit(hold)
    entered.wait(10)
    return release


def test_a_failing_write_fails_alone_in_its_batch(conn, tmp_path):
    writer = GroupCommitWriter(conn)
    release = blocked(writer)

    def conflict(c):
        c.execute("INSERT INTO t VALUES ('half-done')")  # rolled back with its savepoint
        raise ResourceConflict("taken")

    futures = [writer.submit(insert("a")), writer.submit(conflict), writer.submit(insert("b"))]
    dup = writer.submit(insert("a"))  # a constraint error inside the same transaction
    release.set()
    assert futures[0].result(10) and futures[2].result(10)
    with pytest.raises(ResourceConflict):
        futures[1].result(10)
    with pytest.raises(sqlite3.IntegrityError):
        dup.result(10)
    writer.close()
    assert keys(tmp_path / "w.db") == ["a", "b"]
    stats = writer.stats()
    assert (stats.writes, stats.failed, stats.commits, stats.largest_batch) == (5, 2, 2, 4)


def test_results_are_visible_once_the_future_is_done(conn, tmp_path):
    writer = GroupCommitWriter(conn)
    reader = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    for i in range(50):
        writer.submit(insert(f"k{i}")).result(10)
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == i + 1
    writer.close()


def test_batches_are_bounded(conn, tmp_path):
    writer = GroupCommitWriter(conn, max_batch=10)
    release = blocked(writer)
    futures = [writer.submit(insert(f"k{i}")) for i in range(35)]
    release.set()
    for f in futures:
        f.result(10)
    writer.close()
    assert writer.stats().largest_batch == 10
    assert writer.stats().commits == 1 + 4  # the blocker, then 10 + 10 + 10 + 5


def test_a_lost_transaction_falls_back_to_one_commit_per_write(conn, tmp_path):
    writer = GroupCommitWriter(conn)
    release = blocked(writer)

    def lose_the_transaction(c):
        c.execute("ROLLBACK")  # what SQLite does by itself on SQLITE_FULL or an I/O error
        raise sqlite3.OperationalError("disk I/O error")

    first = writer.submit(insert("first"))
    bad = writer.submit(lose_the_transaction)
    last = writer.submit(insert("last"))
    release.set()
    first.result(10)
    last.result(10)
    with pytest.raises(sqlite3.OperationalError):
        bad.result(10)
    writer.close()
    assert keys(tmp_path / "w.db") == ["first", "last"]


def test_close_commits_what_is_queued_then_refuses(conn, tmp_path):
    writer = GroupCommitWriter(conn)
    release = blocked(writer)
    futures = [writer.submit(insert(f"k{i}")) for i in range(20)]
    threading.Timer(0.05, release.set).start()
    writer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(keys(tmp_path / "w.db")) == 20
    with pytest.raises(ServiceError):
        writer.submit(insert("late"))
    writer.close()  # idempotent


def test_a_cancelled_write_is_skipped(conn, tmp_path):
    writer = GroupCommitWriter(conn)
    release = blocked(writer)
    doomed = writer.submit(insert("doomed"))
    kept = writer.submit(insert("kept"))
    assert doomed.cancel()
    release.set()
    kept.result(10)
    writer.close()
    assert keys(tmp_path / "w.db") == ["kept"]


def test_needs_an_autocommit_connection(tmp_path):
    with pytest.raises(ServiceError):
        GroupCommitWriter(sqlite3.connect(tmp_path / "x.db"))
