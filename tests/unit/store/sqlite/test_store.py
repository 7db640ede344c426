"""SqliteStore beyond the shared contract: group commit under load, reopening, closing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lamina.errors import ServiceError
from lamina.store.base import LogEvent
from lamina.store.sqlite import SqliteStore

from ..conftest import invocation, record


def test_many_threads_all_commit_and_share_commits(tmp_path):
    store = SqliteStore.open(tmp_path / "lamina.db")
    threads, per_thread = 16, 40

    def work(t: int) -> None:
        for i in range(per_thread):
            if i % 2:
                store.record_invocation_nowait(invocation(f"f{t}", start=i, request_id=f"{t}-{i}")).result()
            else:
                store.append_logs_nowait("/g", f"s{t}", [LogEvent(i, f"{t}-{i}")]).result()
        store.create_function(record(f"fn-{t}"))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    writes = threads * (per_thread + 1)
    stats = store.stats()
    assert stats.writes == writes and stats.failed == 0
    assert stats.commits < writes  # group commit batched concurrent writers
    assert len(store.list_invocations(limit=10_000)) == threads * per_thread // 2
    assert len(store.get_log_events("/g")) == threads * per_thread // 2
    assert len(store.list_functions(limit=100)) == threads
    store.close()


def test_nowait_bursts_batch(tmp_path):
    store = SqliteStore.open(tmp_path / "lamina.db")
    futures = [store.record_invocation_nowait(invocation(request_id=str(i))) for i in range(2000)]
    for f in futures:
        f.result()
    assert store.stats().commits < 2000 / 10
    store.close()


def test_reopen_sees_everything_and_migrates_nothing(tmp_path):
    path = tmp_path / "data" / "lamina.db"  # the directory is created
    store = SqliteStore.open(path)
    store.create_function(record(tags={"k": "v"}))
    store.record_invocation_nowait(invocation())  # not awaited: close() must commit it
    store.append_logs_nowait("/g", "s", [LogEvent(1, "x")])
    store.close()
    store.close()  # idempotent
    again = SqliteStore.open(path)
    assert again.get_function("fn") == record(tags={"k": "v"})
    assert len(again.list_invocations()) == 1
    assert len(again.get_log_events("/g")) == 1
    again.close()


def test_closed_store_refuses_reads_and_writes(tmp_path):
    store = SqliteStore.open(tmp_path / "lamina.db")
    store.get_function("warm-this-threads-reader")
    store.close()
    with pytest.raises(ServiceError):
        store.get_function("fn")
    with pytest.raises(ServiceError):
        store.create_function(record())


def test_readers_do_not_wait_for_the_writer(tmp_path):
    store = SqliteStore.open(tmp_path / "lamina.db")
    store.create_function(record())
    release, entered = threading.Event(), threading.Event()

    def slow_write(conn):
        conn.execute("INSERT INTO functions (name, created) VALUES ('uncommitted', 0)")
        entered.set()
        release.wait(10)

    pending = store._db.writer.submit(slow_write)
    entered.wait(10)
    try:
        # The writer holds an open transaction; readers see the last commit, at once.
        assert store.get_function("fn") is not None
        assert [r.config.name for r in store.list_functions()] == ["fn"]
    finally:
        release.set()
    pending.result(10)
    store.close()


def test_reader_connections_of_finished_threads_are_released(tmp_path):
    store = SqliteStore.open(tmp_path / "lamina.db")
    for _ in range(20):
        t = threading.Thread(target=store.get_function, args=("fn",))
        t.start()
        t.join()
    import gc

    gc.collect()
    assert len(store._db._readers) <= 1
    store.close()


def test_synchronous_must_be_known(tmp_path):
    from lamina.errors import ConfigError

    with pytest.raises(ConfigError):
        SqliteStore.open(tmp_path / "lamina.db", synchronous="OFF")  # type: ignore[arg-type]


def test_an_sqlite_without_json_functions_is_refused_at_open(tmp_path, monkeypatch):
    import sqlite3

    from lamina.errors import ConfigError
    from lamina.store.sqlite import database

    class NoJson(database._Connection):
        def execute(self, sql, *args):
            if "json_" in sql:
                raise sqlite3.OperationalError("no such function: json_array")
            return super().execute(sql, *args)

    monkeypatch.setattr(database, "_Connection", NoJson)
    with pytest.raises(ConfigError, match="no JSON functions"):
        SqliteStore.open(tmp_path / "lamina.db")
