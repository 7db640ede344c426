"""The event-source-mapping store contract, run against SQLite and the in-memory twin."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lamina.model.events import QueuedEvent
from lamina.model.mappings import Checkpoint, MappingConfig, MappingState, StartingPosition
from lamina.store.events import Enqueue
from lamina.store.mappings import MappingStore, NewFailedBatch
from lamina.store.memory_events import MemoryEventStore
from lamina.store.memory_mappings import MemoryMappingStore
from lamina.store.sqlite.database import Database
from lamina.store.sqlite.events import SqliteEventStore
from lamina.store.sqlite.mappings import SqliteMappingStore


@pytest.fixture(params=["sqlite", "memory"])
def stores(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[MappingStore, object]]:
    if request.param == "memory":
        events = MemoryEventStore()
        yield MemoryMappingStore(events), events
        return
    db = Database(tmp_path / "lamina.db")
    yield SqliteMappingStore(db), SqliteEventStore(db)
    db.close()


def mapping(uuid: str, function: str = "f", source: str = "arn:s1", **changes) -> MappingConfig:
    return MappingConfig(uuid=uuid, function=function, qualifier=None, source_arn=source,
                         starting_position=StartingPosition.LATEST, **changes)  # fmt: skip


def test_mappings_round_trip_and_list_in_creation_order_with_filters(stores):
    store, _ = stores
    a = mapping("a", filters=('{"data": {"k": ["v"]}}',), on_failure="arn:x", batch_size=7, tags={"t": "1"})
    store.put_mapping(mapping("c", function="g"))
    store.put_mapping(a)
    store.put_mapping(mapping("b", source="arn:s2"))
    assert store.get_mapping("a") == a and store.get_mapping("a").filters == ('{"data": {"k": ["v"]}}',)
    assert store.get_mapping("nope") is None
    assert [m.uuid for m in store.list_mappings()] == ["c", "a", "b"]
    assert [m.uuid for m in store.list_mappings(function="f")] == ["a", "b"]
    assert [m.uuid for m in store.list_mappings(source_arn="arn:s2")] == ["b"]
    assert [m.uuid for m in store.list_mappings("f", "arn:s1")] == ["a"]
    store.put_mapping(a.with_changes(state=MappingState.ENABLED))  # a replace keeps the creation order
    assert [m.uuid for m in store.list_mappings()] == ["c", "a", "b"]
    assert store.get_mapping("a").state is MappingState.ENABLED


def test_checkpoints_are_written_with_the_mapping_and_moved_by_progress(stores):
    store, _ = stores
    store.put_mapping(mapping("a"), [Checkpoint("a", "shard-1", "10"), Checkpoint("a", "shard-0", "5")])
    assert [(c.shard, c.position, c.finished) for c in store.checkpoints("a")] == [("shard-0", "5", False),
                                                                                  ("shard-1", "10", False)]  # fmt: skip
    store.save_progress_nowait([Checkpoint("a", "shard-0", "7", finished=True)]).result()
    assert [(c.position, c.finished) for c in store.checkpoints("a")] == [("7", True), ("10", False)]
    store.save_progress_nowait([Checkpoint("a", "shard-1", "11", window='[0, 60000, {"n": 1}]')]).result()
    assert [c.window for c in store.checkpoints("a")] == [None, '[0, 60000, {"n": 1}]']


def test_progress_of_a_deleted_mapping_is_dropped(stores):
    store, _ = stores
    store.put_mapping(mapping("a"), [Checkpoint("a", "s", "1")])
    assert store.delete_mapping("a") and not store.delete_mapping("a")
    store.save_progress_nowait(
        [Checkpoint("a", "s", "2")], NewFailedBatch("a", "s", "RetryAttemptsExhausted", "{}", b"{}", 1.0)
    ).result()
    store.save_progress_nowait([Checkpoint("a", "s", "3")]).result()  # a plain checkpoint, too
    assert store.checkpoints("a") == [] and store.failed_batches("a") == [] and store.get_mapping("a") is None


def test_plain_checkpoints_batched_together_keep_the_last_per_shard_without_savepoints(tmp_path):
    from tests.unit.store.sqlite.holding import hold_writer

    db = Database(tmp_path / "lamina.db")
    try:
        store = SqliteMappingStore(db)
        store.put_mapping(mapping("a"), [Checkpoint("a", "s0", "1"), Checkpoint("a", "s1", "1")])
        release = hold_writer(db.writer)
        statements: list[str] = []
        db.writer._conn.set_trace_callback(statements.append)
        futures = [store.save_progress_nowait([Checkpoint("a", f"s{n % 2}", str(n))]) for n in range(2, 12)]
        release.set()
        assert [f.result(10) for f in futures] == [None] * 10
        assert [(c.shard, c.position) for c in store.checkpoints("a")] == [("s0", "10"), ("s1", "11")]
        after_hold = statements[statements.index("COMMIT") + 1 :]
        assert not any(s.startswith("SAVEPOINT") for s in after_hold), after_hold
    finally:
        db.close()


def test_a_failed_batch_its_delivery_and_the_checkpoint_commit_together(stores):
    store, events = stores
    store.put_mapping(mapping("a"), [Checkpoint("a", "s", "1")])
    delivery = QueuedEvent(id="rec-1", function="dest", qualifier=None, payload=b'{"r": 1}', enqueued=1.0)
    record = json.dumps({"requestContext": {"condition": "RetryAttemptsExhausted"}})
    failed = NewFailedBatch("a", "s", "RetryAttemptsExhausted", record, b'{"Records": []}', 2.0)
    store.save_progress_nowait([Checkpoint("a", "s", "9")], failed, [Enqueue(delivery)]).result()
    assert store.checkpoints("a")[0].position == "9"
    (kept,) = store.failed_batches("a")
    assert (kept.shard, kept.condition, kept.record, kept.payload, kept.replayed) == (
        "s", "RetryAttemptsExhausted", record, b'{"Records": []}', None)  # fmt: skip
    assert [e.id for e in events.pending_events()] == ["rec-1"] and events.event_payload("rec-1") == b'{"r": 1}'
    assert store.get_failed_batch(kept.id) == kept and store.get_failed_batch(kept.id + 100) is None
    store.mark_replayed(kept.id, 3.0)
    assert store.get_failed_batch(kept.id).replayed == 3.0
    assert store.delete_mapping("a") and store.failed_batches("a") == []


def test_a_parallel_shard_s_lane_state_is_kept_with_its_checkpoint_and_its_give_up(stores):
    store, _ = stores
    store.put_mapping(mapping("a"), [Checkpoint("a", "s", "1")])
    ahead = json.dumps({"factor": 2, "ahead": [["7", 1000], None], "windows": [[0, 900000, {"sum": 3}], None]})
    store.save_progress_nowait([Checkpoint("a", "s", "4", window=ahead)]).result()
    assert [(c.position, c.window) for c in store.checkpoints("a")] == [("4", ahead)]
    after = json.dumps({"factor": 2, "ahead": [None, None], "windows": [[0, 900000, {"sum": 3}], None]})
    failed = NewFailedBatch("a", "s", "RetryAttemptsExhausted", "{}", b'{"Records": []}', 2.0)
    store.save_progress_nowait([Checkpoint("a", "s", "9", window=after)], failed).result()
    assert [(c.position, c.window) for c in store.checkpoints("a")] == [("9", after)]
    assert len(store.failed_batches("a")) == 1
