"""Group commit: batching, per-write failure isolation, durability ordering, shutdown."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from lamina.errors import ResourceConflict, ServiceError
from lamina.store.sqlite.writer import GroupCommitWriter
from tests.unit.store.sqlite.holding import hold_writer


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


def test_a_failing_write_fails_alone_in_its_batch(conn, tmp_path):
    writer = GroupCommitWriter(conn)
    release = hold_writer(writer)

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
    release = hold_writer(writer)
    futures = [writer.submit(insert(f"k{i}")) for i in range(35)]
    release.set()
    for f in futures:
        f.result(10)
    writer.close()
    assert writer.stats().largest_batch == 10
    assert writer.stats().commits == 1 + 4  # the blocker, then 10 + 10 + 10 + 5


def test_a_lost_transaction_falls_back_to_one_commit_per_write(conn, tmp_path):
    writer = GroupCommitWriter(conn)
    release = hold_writer(writer)

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
    release = hold_writer(writer)
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
    release = hold_writer(writer)
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


# --- batcher items: written set-wise, failures isolated ---------------------------------------


class Keys:
    """A batcher that inserts keys into t; the key "lose" makes SQLite lose the transaction."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.resets = 0

    def write_batch(self, c, items):
        self.calls.append(list(items))
        for key in items:
            if key == "lose":
                c.execute("ROLLBACK")
                raise sqlite3.OperationalError("disk I/O error")
        c.executemany("INSERT INTO t VALUES (?)", [(key,) for key in items])

    def reset(self):
        self.resets += 1


def test_batcher_items_are_written_in_one_call(conn, tmp_path):
    writer, keys_batcher = GroupCommitWriter(conn), Keys()
    release = hold_writer(writer)
    futures = [writer.submit_item(keys_batcher, f"k{i}") for i in range(10)]
    release.set()
    assert [f.result(10) for f in futures] == [None] * 10
    writer.close()
    assert keys_batcher.calls == [[f"k{i}" for i in range(10)]]
    assert keys(tmp_path / "w.db") == sorted(f"k{i}" for i in range(10))
    stats = writer.stats()
    assert (stats.writes, stats.failed, stats.commits, stats.largest_batch) == (11, 0, 2, 10)


def test_a_bad_item_fails_alone_and_closures_run_once(conn, tmp_path):
    conn.execute("CREATE TABLE runs (n)")
    writer, keys_batcher = GroupCommitWriter(conn), Keys()
    release = hold_writer(writer)
    good = [writer.submit_item(keys_batcher, "a"), writer.submit_item(keys_batcher, "b")]
    closure = writer.submit(lambda c: c.execute("INSERT INTO runs VALUES (1)").lastrowid)
    dup = writer.submit_item(keys_batcher, "a")  # a constraint error, after a closure
    good.append(writer.submit_item(keys_batcher, "c"))
    release.set()
    assert [f.result(10) for f in good] == [None] * 3
    assert closure.result(10) == 1
    with pytest.raises(sqlite3.IntegrityError):
        dup.result(10)
    writer.close()
    assert keys(tmp_path / "w.db") == ["a", "b", "c"]
    with sqlite3.connect(tmp_path / "w.db") as c:
        assert c.execute("SELECT count(*) FROM runs").fetchone()[0] == 1  # the first attempt was undone
    # Fast path: [a, b], then [a, c] failed; then item by item.
    assert keys_batcher.calls == [["a", "b"], ["a", "c"], ["a"], ["b"], ["a"], ["c"]]
    assert keys_batcher.resets >= 2  # after the closure and after the rollbacks
    stats = writer.stats()
    assert (stats.writes, stats.failed, stats.commits) == (6, 1, 2)


def test_items_and_closures_keep_queue_order(conn):
    writer, keys_batcher = GroupCommitWriter(conn), Keys()
    release = hold_writer(writer)
    count = lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]  # noqa: E731
    writer.submit_item(keys_batcher, "a")
    writer.submit_item(keys_batcher, "b")
    first = writer.submit(count)
    writer.submit_item(keys_batcher, "c")
    second = writer.submit(count)
    release.set()
    assert (first.result(10), second.result(10)) == (2, 3)
    writer.close()


def test_a_lost_transaction_with_items_falls_back_to_one_commit_per_write(conn, tmp_path):
    writer, keys_batcher = GroupCommitWriter(conn), Keys()
    release = hold_writer(writer)
    first = writer.submit_item(keys_batcher, "first")
    bad = writer.submit_item(keys_batcher, "lose")
    closure = writer.submit(insert("closure"))
    last = writer.submit_item(keys_batcher, "last")
    release.set()
    first.result(10), closure.result(10), last.result(10)
    with pytest.raises(sqlite3.OperationalError):
        bad.result(10)
    writer.close()
    assert keys(tmp_path / "w.db") == ["closure", "first", "last"]
    assert writer.stats().commits == 1 + 3


def test_a_cancelled_item_is_skipped(conn, tmp_path):
    writer, keys_batcher = GroupCommitWriter(conn), Keys()
    release = hold_writer(writer)
    doomed = writer.submit_item(keys_batcher, "doomed")
    kept = writer.submit_item(keys_batcher, "kept")
    assert doomed.cancel()
    release.set()
    kept.result(10)
    writer.close()
    assert keys(tmp_path / "w.db") == ["kept"]
    assert keys_batcher.calls == [["kept"]]


def test_writes_from_an_event_loop_get_its_futures_woken_once_per_commit(conn, tmp_path):
    """On a loop's thread: asyncio futures, resolved after the commit with one wake-up per batch."""
    import asyncio

    writer = GroupCommitWriter(conn)
    wakeups = []

    async def main():
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counting(callback, *args):
            wakeups.append(callback)
            return original(callback, *args)

        loop.call_soon_threadsafe = counting
        release = await asyncio.to_thread(hold_writer, writer)
        good = [writer.submit(insert(f"k{i}")) for i in range(50)]
        bad = writer.submit(insert("k0"))  # a duplicate: fails alone
        assert all(isinstance(f, asyncio.Future) for f in [*good, bad])
        assert not any(f.done() for f in good)
        release.set()
        assert all(await asyncio.gather(*good))
        with pytest.raises(sqlite3.IntegrityError):
            await bad
        return keys(tmp_path / "w.db")

    committed = asyncio.run(main())
    assert committed == sorted(f"k{i}" for i in range(50))  # durable by the time they resolved
    settles = [c for c in wakeups if getattr(c, "__name__", "") == "_settle_on_loop"]
    assert len(settles) == 1  # 51 outcomes, one batch, one wake-up of the loop for them all
    writer.close()


def test_writes_from_other_threads_get_concurrent_futures(conn, tmp_path):
    from concurrent.futures import Future

    writer = GroupCommitWriter(conn)
    future = writer.submit(insert("x"))
    assert isinstance(future, Future) and future.result(10)
    assert writer.run(insert("y"))  # blocking, from any thread
    writer.close()
    assert keys(tmp_path / "w.db") == ["x", "y"]


def test_a_write_waits_for_another_connections_lock_and_then_commits(conn, tmp_path):
    """Another process's writer holds the lock: ours waits (in short steps), then commits."""
    import time

    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    writer = GroupCommitWriter(conn)
    other.execute("BEGIN IMMEDIATE")
    future = writer.submit(insert("after"))
    time.sleep(0.3)
    assert not future.done()  # still waiting, not failed
    other.execute("INSERT INTO t VALUES ('first')")
    other.execute("COMMIT")
    assert future.result(5)
    writer.close()
    assert keys(tmp_path / "w.db") == ["after", "first"]


class SoloKeys(Keys):
    """Keys that can also write a batch of its items as one self-committing statement."""

    def __init__(self, fits: int = 100):
        super().__init__()
        self.fits = fits
        self.alone: list[list[str]] = []

    def write_alone(self, c, items):
        if len(items) > self.fits:
            return False
        self.alone.append(list(items))
        c.execute("INSERT INTO t SELECT value FROM json_each(?)", (json.dumps(items),))
        return True


def traced(conn):
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    return statements


def test_a_batch_of_solo_items_is_one_statement_outside_any_transaction(conn, tmp_path):
    writer, batcher = GroupCommitWriter(conn), SoloKeys()
    release = hold_writer(writer)
    futures = [writer.submit_item(batcher, f"k{i}") for i in range(10)]
    statements = traced(conn)
    release.set()
    assert [f.result(10) for f in futures] == [None] * 10
    writer.close()
    assert batcher.alone == [[f"k{i}" for i in range(10)]] and batcher.calls == []
    after_hold = statements[statements.index("COMMIT") + 1 :]  # the holding closure's commit
    assert len(after_hold) == 1 and after_hold[0].startswith("INSERT INTO t SELECT"), statements
    assert keys(tmp_path / "w.db") == sorted(f"k{i}" for i in range(10))
    assert writer.stats().commits == 2  # the holding closure's, then the statement's own


def test_solo_items_with_a_closure_or_too_many_go_through_a_transaction(conn, tmp_path):
    writer, batcher = GroupCommitWriter(conn), SoloKeys(fits=3)
    release = hold_writer(writer)
    mixed = [writer.submit_item(batcher, "a"), writer.submit(insert("b"))]
    release.set()
    assert mixed[0].result(10) is None and mixed[1].result(10)
    release = hold_writer(writer)
    many = [writer.submit_item(batcher, f"m{i}") for i in range(5)]  # more than write_alone takes
    release.set()
    assert [f.result(10) for f in many] == [None] * 5
    writer.close()
    assert batcher.alone == [] and batcher.calls == [["a"], [f"m{i}" for i in range(5)]]
    assert keys(tmp_path / "w.db") == sorted(["a", "b", *(f"m{i}" for i in range(5))])


def test_a_failing_solo_statement_lets_each_item_learn_its_own_fate(conn, tmp_path):
    conn.execute("INSERT INTO t VALUES ('taken')")
    writer, batcher = GroupCommitWriter(conn), SoloKeys()
    release = hold_writer(writer)
    futures = [writer.submit_item(batcher, key) for key in ("x", "taken", "y")]
    release.set()
    assert isinstance(futures[1].exception(10), sqlite3.IntegrityError)
    assert futures[0].result(10) is None and futures[2].result(10) is None
    writer.close()
    assert batcher.alone == [["x", "taken", "y"]]  # tried once together, then one by one
    assert keys(tmp_path / "w.db") == ["taken", "x", "y"]


def test_a_solo_statement_waits_for_another_connections_lock(conn, tmp_path):
    import time

    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    writer, batcher = GroupCommitWriter(conn), SoloKeys()
    other.execute("BEGIN IMMEDIATE")
    future = writer.submit_item(batcher, "after")
    time.sleep(0.3)
    assert not future.done()  # waiting in short steps, not failed with "database is locked"
    other.execute("INSERT INTO t VALUES ('first')")
    other.execute("COMMIT")
    assert future.result(5) is None
    writer.close()
    assert keys(tmp_path / "w.db") == ["after", "first"]
