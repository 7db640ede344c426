"""UpdateShardCount: split and merge plans, closed parents, children, and every record exactly
once in order per partition key across a reshard (both stores)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from lamina.errors import LimitExceeded, StreamInUse, ValidationError
from lamina.sources.streams import Entry, IteratorType, StreamMode, StreamService
from lamina.sources.streams.model import MAX_HASH_KEY, even_ranges, hash_key
from lamina.sources.streams.resharding import plan


def covers_key_space(ranges):
    ranges = sorted(ranges)
    assert ranges[0][0] == 0 and ranges[-1][1] == MAX_HASH_KEY
    for (_, hi), (lo, _) in itertools.pairwise(ranges):
        assert lo == hi + 1  # no gap, no overlap


@pytest.mark.parametrize("current", range(1, 26))
def test_every_allowed_target_has_even_children_with_at_most_two_overlapping_parents(current):
    old = [(i, lo, hi) for i, (lo, hi) in enumerate(even_ranges(current))]
    for target in range((current + 1) // 2, 2 * current + 1):
        if target == current:
            continue
        new = plan(old, target, current)
        final = [s for s in new if not s.closed]
        middle = [s for s in new if s.closed]
        assert [(s.start_hash, s.end_hash) for s in final] == even_ranges(target)
        assert [s.index for s in new] == list(range(current, current + len(new)))
        generations = [old, [(s.index, s.start_hash, s.end_hash) for s in middle]] if middle else [old]
        if middle:
            covers_key_space([(s.start_hash, s.end_hash) for s in middle])
            assert len(middle) == 2 * target and target < current
        for parents, children in zip(generations, [middle or final, final] if middle else [final], strict=False):
            by_index = {i: (lo, hi) for i, lo, hi in parents}
            for child in children:
                owners = [child.parent_index] + (
                    [child.adjacent_parent_index] if child.adjacent_parent_index is not None else []
                )
                # exactly the parents overlapping the child, in key order
                overlapping = [i for i, lo, hi in parents if lo <= child.end_hash and child.start_hash <= hi]
                assert owners == overlapping and 1 <= len(owners) <= 2
                assert all(by_index[i][0] <= child.end_hash for i in owners)


def read_shard(streams, name, shard, limit=1000):
    """Read a shard from its trim horizon: (records, child shard ids) — children only when closed."""
    it = streams.get_shard_iterator(name, shard, IteratorType.TRIM_HORIZON)
    out = []
    while True:
        page = streams.get_records(it, limit)
        out += page.records
        if page.next_iterator is None:
            return out, page.child_shards
        if not page.records and page.millis_behind_latest == 0:
            return out, None
        it = page.next_iterator


def consume_parents_first(streams, name, limit=1000):
    """A KCL-style consumer: a shard is read only once all its parents were read to their end."""
    shards = {s.index: s for s in streams.describe(name).shards}
    done: set[int] = set()
    order: list = []
    while len(done) < len(shards):
        ready = [
            s
            for s in shards.values()
            if s.index not in done
            and all(p is None or p not in shards or p in done for p in (s.parent_index, s.adjacent_parent_index))
        ]
        assert ready
        for shard in ready:
            records, children = read_shard(streams, name, shard.shard_id, limit)
            if shard.is_open:
                assert children is None
            else:
                expected = {
                    s.index for s in shards.values() if shard.index in (s.parent_index, s.adjacent_parent_index)
                }
                assert {c.index for c in children} == expected
            order += records
            done.add(shard.index)
    return order


def test_split_closes_parents_and_opens_even_children(streams):
    streams.create_stream("s", 2)
    before = streams.put_records("s", [Entry(b"x", f"k{i}") for i in range(50)])
    assert streams.update_shard_count("s", 4) == (2, 4)
    stream = streams.describe("s")
    parents, children = stream.shards[:2], stream.shards[2:]
    assert all(not p.is_open for p in parents) and all(c.is_open for c in children)
    last = max(int(r.sequence_number) for r in before)
    assert all(p.ending_counter is not None and p.ending_counter + 49 * 10**54 == last for p in parents)
    assert [(c.start_hash, c.end_hash) for c in children] == even_ranges(4)
    assert [(c.parent_index, c.adjacent_parent_index) for c in children] == [(0, None), (0, None), (1, None), (1, None)]
    covers_key_space([(c.start_hash, c.end_hash) for c in children])
    # Puts now go to the children only, by hash key.
    after = streams.put_records("s", [Entry(b"y", f"k{i}") for i in range(50)])
    for i, result in enumerate(after):
        child = next(c for c in children if c.start_hash <= hash_key(f"k{i}") <= c.end_hash)
        assert result.shard_id == child.shard_id
        assert int(result.sequence_number) > last


def test_merge_uses_adjacent_parents_and_uneven_merges_go_through_an_intermediate_generation(streams):
    streams.create_stream("m", 4)
    streams.update_shard_count("m", 2)
    shards = streams.describe("m").shards
    assert [(s.parent_index, s.adjacent_parent_index) for s in shards[4:]] == [(0, 1), (2, 3)]
    assert [(s.start_hash, s.end_hash) for s in shards if s.is_open] == even_ranges(2)

    streams.create_stream("u", 5)
    streams.update_shard_count("u", 3)
    shards = streams.describe("u").shards
    middle = [s for s in shards[5:] if not s.is_open]
    final = [s for s in shards if s.is_open]
    assert len(middle) == 6 and [(s.start_hash, s.end_hash) for s in final] == even_ranges(3)
    assert all(s.adjacent_parent_index is not None for s in final)
    assert {s.parent_index for s in final} | {s.adjacent_parent_index for s in final} == {s.index for s in middle}


def test_closed_parent_returns_its_records_then_no_iterator_and_its_children(streams):
    streams.create_stream("s", 1)
    streams.put_records("s", [Entry(str(i).encode(), "k") for i in range(5)])
    it = streams.get_shard_iterator("s", "shardId-000000000000", IteratorType.TRIM_HORIZON)
    page = streams.get_records(it, 3)
    streams.update_shard_count("s", 2)
    streams.put_records("s", [Entry(b"new", "k")])
    assert [r.data for r in page.records] == [b"0", b"1", b"2"]
    page = streams.get_records(page.next_iterator, 2)  # the remaining records, exactly to the end
    assert [r.data for r in page.records] == [b"3", b"4"]
    assert page.next_iterator is None and page.millis_behind_latest == 0
    assert [c.shard_id for c in page.child_shards] == ["shardId-000000000001", "shardId-000000000002"]
    assert all(c.parent_index == 0 and c.adjacent_parent_index is None for c in page.child_shards)
    latest = streams.get_shard_iterator("s", "shardId-000000000000", IteratorType.LATEST)
    assert streams.get_records(latest).next_iterator is None


def test_list_shards_filters(streams):
    streams.create_stream("s", 2)
    streams.update_shard_count("s", 4)
    streams.update_shard_count("s", 3)
    every, _ = streams.list_shards("s")
    assert [s.index for s in streams.list_shards("s", select="AT_LATEST")[0]] == [s.index for s in every if s.is_open]
    assert [s.index for s in streams.list_shards("s", select="AT_TRIM_HORIZON")[0]] == [0, 1]
    assert streams.list_shards("s", select="FROM_TRIM_HORIZON")[0] == every
    assert len(every) == 2 + 4 + 3  # 4 -> 3 merges directly: each target overlaps at most 2 parents


def test_invalid_targets_are_rejected(streams, clock):
    streams.create_stream("s", 4)
    with pytest.raises(LimitExceeded, match="more than double"):
        streams.update_shard_count("s", 9)
    with pytest.raises(LimitExceeded, match="below half"):
        streams.update_shard_count("s", 1)
    with pytest.raises(ValidationError, match="scalingType"):
        streams.update_shard_count("s", 3, "SPLIT")
    with pytest.raises(ValidationError, match="targetShardCount"):
        streams.update_shard_count("s", 0)
    streams.create_stream("d", mode=StreamMode.ON_DEMAND)
    with pytest.raises(ValidationError, match="ON_DEMAND"):
        streams.update_shard_count("d", 5)
    assert streams.update_shard_count("s", 4) == (4, 4)  # already there
    for target in [5, 4] * 5:
        streams.update_shard_count("s", target)
    with pytest.raises(LimitExceeded, match="10 times in the last 24 hours"):
        streams.update_shard_count("s", 5)
    clock.advance(86_401)
    assert streams.update_shard_count("s", 5) == (4, 5)


def test_store_refuses_a_stale_reshard(streams, stream_store):
    stream = streams.create_stream("s", 2)
    new = plan([(s.index, s.start_hash, s.end_hash) for s in stream.shards], 3, 2)
    stream_store.reshard("s", [0, 1], new)
    with pytest.raises(StreamInUse):
        stream_store.reshard("s", [0, 1], new)


def test_every_record_exactly_once_and_in_order_per_key_across_reshards(streams: StreamService):
    streams.create_stream("s", 3)
    stop = threading.Event()
    acked: dict[str, list[bytes]] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def producer(p: int) -> None:
        n = 0
        try:
            while not stop.is_set() or n < 300:
                keys = [f"p{p}-k{(n + i) % 7}" for i in range(10)]
                entries = [Entry(f"{p}:{n + i}".encode(), k) for i, k in enumerate(keys)]
                if n % 30 == 0:
                    results = [streams.put_record("s", entries[0]), *streams.put_records("s", entries[1:])]
                else:
                    results = streams.put_records("s", entries)
                assert all(r.error_code is None for r in results)
                with lock:
                    for entry in entries:
                        acked.setdefault(entry.partition_key, []).append(entry.data)
                n += 10
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=producer, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for target in (5, 3, 6, 3):  # split (uneven), merge (uneven), split, merge (exact halving)
        time.sleep(0.05)
        streams.update_shard_count("s", target)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    got = consume_parents_first(streams, "s", limit=37)
    assert len(got) == sum(map(len, acked.values()))
    assert len({r.counter for r in got}) == len(got)  # exactly once
    per_key: dict[str, list[bytes]] = {}
    for record in got:
        per_key.setdefault(record.partition_key, []).append(record.data)
    assert per_key == acked  # every acknowledged record, in order for each partition key
    stream = streams.describe("s")
    assert len([s for s in stream.shards if s.is_open]) == 3
    assert len(stream.shards) > 3 + 5 + 3


def test_records_of_a_closed_shard_stay_below_its_ending_counter(streams):
    streams.create_stream("s", 2)
    streams.put_records("s", [Entry(b"a", f"k{i}") for i in range(20)])
    streams.update_shard_count("s", 3)
    streams.put_records("s", [Entry(b"b", f"k{i}") for i in range(20)])
    for shard in streams.describe("s").shards:
        records, _ = read_shard(streams, "s", shard.shard_id)
        assert all(shard.starting_counter <= r.counter for r in records)
        if not shard.is_open:
            assert all(r.counter <= shard.ending_counter for r in records)


@pytest.mark.parametrize("how", ["put_records", "put_record", "put_records_async"])
def test_a_put_routed_to_a_shard_closed_under_it_goes_to_the_child(stream_store, clock, how):
    producer = StreamService(stream_store, clock=clock)  # caches the stream's routing
    admin = StreamService(stream_store, clock=clock)
    producer.create_stream("s", 1)
    producer.put_records("s", [Entry(b"before", "k")])
    admin.update_shard_count("s", 2)  # the producer's cache still routes to shard 0
    entry = Entry(b"after", "k")
    if how == "put_record":
        result = producer.put_record("s", entry)
    elif how == "put_records":
        (result,) = producer.put_records("s", [entry])
    else:
        (result,) = asyncio.run(producer.put_records_async("s", [entry]))
    child = next(s for s in admin.describe("s").shards[1:] if s.start_hash <= hash_key("k") <= s.end_hash)
    assert result.shard_id == child.shard_id and result.error_code is None
    assert [r.data for r in consume_parents_first(admin, "s")] == [b"before", b"after"]


def test_sqlite_appends_queued_behind_a_reshard_fail_alone_and_the_reshard_survives_a_restart(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from lamina.sources.streams import ShardClosed, SqliteStreamStore
    from lamina.sources.streams.base import ShardClosed as BaseShardClosed
    from lamina.store.sqlite import SqliteStore

    assert ShardClosed is BaseShardClosed
    store = SqliteStore.open(tmp_path / "lamina.db")
    streams = StreamService(SqliteStreamStore(store.database))
    stream = streams.create_stream("s", 1)
    parent = stream.shards[0]
    new = plan([(0, parent.start_hash, parent.end_hash)], 2, 1)
    with ThreadPoolExecutor(1) as pool:
        # Appends before and after the reshard closure, queued together: one writer batch.
        before = [streams.store.append_nowait([parent.id], [("k", b"b%d" % i)]) for i in range(5)]
        resharded = pool.submit(streams.store.reshard, "s", [0], new)
        time.sleep(0.01)
        after = [streams.store.append_nowait([parent.id], [("k", b"a%d" % i)]) for i in range(5)]
        resharded.result()
    stored = [f.result().counters[0] for f in before]
    outcomes = [f.exception() for f in after]
    closed = streams.describe("s").shards[0]
    assert all(c <= closed.ending_counter for c in stored)
    assert all(e is None or isinstance(e, ShardClosed) for e in outcomes)
    late = [f.result().counters[0] for f, e in zip(after, outcomes, strict=True) if e is None]
    assert all(c <= closed.ending_counter for c in late)  # only those committed before the close
    store.close()

    store = SqliteStore.open(tmp_path / "lamina.db")
    try:
        streams = StreamService(SqliteStreamStore(store.database))
        shards = streams.describe("s").shards
        assert [(s.index, s.is_open, s.parent_index) for s in shards] == [(0, False, None), (1, True, 0), (2, True, 0)]
        (result,) = streams.put_records("s", [Entry(b"restarted", "k")])
        assert result.shard_id in ("shardId-000000000001", "shardId-000000000002")
        data = [r.data for r in consume_parents_first(streams, "s")]
        assert data[: len(stored)] == [b"b%d" % i for i in range(5)] and data[-1] == b"restarted"
    finally:
        store.close()
