"""StreamService against the SQLite stream store: semantics without HTTP."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import pytest

from lamina.errors import (
    ExpiredIterator,
    InvalidArgument,
    LimitExceeded,
    ProvisionedThroughputExceeded,
    StreamInUse,
    StreamNotFound,
    ValidationError,
)
from lamina.sources.streams import Entry, IteratorType, SqliteStreamStore, StreamMode, StreamService
from lamina.sources.streams.model import even_ranges, hash_key


def put(streams, name, *keys, data=b"x"):
    return streams.put_records(name, [Entry(data, k) for k in keys])


def read_all(streams, name, shard="shardId-000000000000", kind=IteratorType.TRIM_HORIZON, **kw):
    it = streams.get_shard_iterator(name, shard, kind, **kw)
    out = []
    while True:
        page = streams.get_records(it, 1000)
        out += page.records
        it = page.next_iterator
        if not page.records:
            return out


def test_create_describe_list_and_delete(streams):
    created = streams.create_stream("s", 3)
    assert [s.shard_id for s in created.shards] == [f"shardId-00000000000{i}" for i in range(3)]
    assert [(s.start_hash, s.end_hash) for s in created.shards] == even_ranges(3)
    assert created.retention_hours == 24 and created.mode is StreamMode.PROVISIONED
    on_demand = streams.create_stream("d", mode=StreamMode.ON_DEMAND)
    assert len(on_demand.shards) == 4 and on_demand.mode is StreamMode.ON_DEMAND
    page, more = streams.list_streams(limit=1)
    assert [s.name for s in page] == ["d"] and more
    page, more = streams.list_streams(after="d")
    assert [s.name for s in page] == ["s"] and not more
    streams.delete_stream("s")
    with pytest.raises(StreamNotFound, match=r"Stream s under account 000000000000 not found\."):
        streams.describe("s")
    with pytest.raises(StreamNotFound):
        streams.delete_stream("s")


def test_create_errors(streams):
    streams.create_stream("s", 1)
    with pytest.raises(StreamInUse, match=r"Stream s under account 000000000000 already exists\."):
        streams.create_stream("s", 1)
    with pytest.raises(InvalidArgument):
        streams.create_stream("t")  # PROVISIONED needs a ShardCount
    with pytest.raises(LimitExceeded):
        streams.create_stream("t", 1001)


def test_records_route_by_md5_and_explicit_hash_key(streams):
    stream = streams.create_stream("s", 4)
    keys = [f"key-{i}" for i in range(200)]
    results = put(streams, "s", *keys)
    for key, result in zip(keys, results, strict=True):
        shard = next(s for s in stream.shards if s.start_hash <= hash_key(key) <= s.end_hash)
        assert result.shard_id == shard.shard_id and result.error_code is None
    explicit = streams.put_records("s", [Entry(b"e", "k", str(stream.shards[2].start_hash))])
    assert explicit[0].shard_id == "shardId-000000000002"
    with pytest.raises(InvalidArgument, match="Invalid ExplicitHashKey"):
        streams.put_records("s", [Entry(b"e", "k", str(2**128))])


def test_a_plain_put_routes_any_utf8_key_by_md5_and_stores_it_as_given(streams):
    """The batch route (no explicit hash keys) against the definition, with keys a column-wise
    read must keep apart: commas, quotes, backslashes, non-ASCII; and empty data."""
    stream = streams.create_stream("s", 4)
    keys = ["ü-key", "日本語", "a,b", 'quo"te', "back\\slash", "emoji 🙂", "tab\tkey", "k" * 256, "plain", "x,y,z"]
    entries = [Entry(b"" if i % 3 == 0 else b"%d,\x00\xff" % i, key) for i, key in enumerate(keys)]
    results = streams.put_records("s", entries)
    for entry, result in zip(entries, results, strict=True):
        point = hash_key(entry.partition_key)
        assert result.shard_id == next(s.shard_id for s in stream.shards if s.start_hash <= point <= s.end_hash)
    for shard in {r.shard_id for r in results}:
        got = [(r.partition_key, r.data) for r in read_all(streams, "s", shard)]
        assert got == [(e.partition_key, e.data) for e, r in zip(entries, results, strict=True) if r.shard_id == shard]


def test_a_read_stops_before_max_bytes_but_returns_at_least_one_record(stream_store):
    from lamina.sources.streams import NewStream

    shard = stream_store.create_stream(NewStream("s", StreamMode.PROVISIONED, 24, 1024, even_ranges(1), {}, 0))
    shard_id = shard.shards[0].id
    sizes = [300, 0, 300, 500, 10]
    stream_store.append_nowait([shard_id] * 5, [("k", b"x" * n) for n in sizes]).result(10)
    assert [len(r.data) for r in stream_store.read(shard_id, 0, 10, max_bytes=600)] == [300, 0, 300]
    assert [len(r.data) for r in stream_store.read(shard_id, 0, 10, max_bytes=100)] == [300]  # the first anyway
    assert [len(r.data) for r in stream_store.read(shard_id, 0, 2, max_bytes=10_000)] == [300, 0]
    assert [len(r.data) for r in stream_store.read(shard_id, 0, 10)] == sizes


def test_routing_hashes_utf8_keys_and_mixes_explicit_hash_keys_in_one_put(streams):
    stream = streams.create_stream("s", 4)
    entries = [
        Entry(b"a", "ü-key"),
        Entry(b"b", "k", str(stream.shards[3].start_hash)),
        Entry(b"c", "日本語"),
        Entry(b"d", "k", "0"),
        Entry(b"e", "plain"),
    ]
    results = streams.put_records("s", entries)
    expected = []
    for entry in entries:
        point = hash_key(entry.partition_key) if entry.explicit_hash_key is None else int(entry.explicit_hash_key)
        expected.append(next(s.shard_id for s in stream.shards if s.start_hash <= point <= s.end_hash))
    assert [r.shard_id for r in results] == expected
    assert all(r.error_code is None and r.sequence_number for r in results)
    counters = [int(r.sequence_number) for r in results]
    assert counters == sorted(counters) and len(set(counters)) == 5
    for shard in {r.shard_id for r in results}:
        got = [(r.partition_key, r.data) for r in read_all(streams, "s", shard)]
        assert got == [(e.partition_key, e.data) for e, r in zip(entries, results, strict=True) if r.shard_id == shard]


def test_a_bad_record_fails_the_whole_put_and_is_named_by_position(streams):
    streams.create_stream("s", 2)
    with pytest.raises(ValidationError, match=r"Value null at 'records\.3\.member\.partitionKey'"):
        streams.put_records("s", [Entry(b"a", "k"), Entry(b"b", "k"), Entry(b"c", "")])
    with pytest.raises(ValidationError, match=r"Value null at 'partitionKey'"):
        streams.put_record("s", Entry(b"a", ""))
    with pytest.raises(InvalidArgument, match="Invalid ExplicitHashKey"):
        streams.put_records("s", [Entry(b"a", "k"), Entry(b"b", "k", "-1")])
    # The size limit counts the partition keys' UTF-8 bytes.
    big = Entry(b"a" * ((1 << 20) - 4), "ü" * 2)  # 1 MiB exactly with the key's 4 bytes
    assert len(streams.put_records("s", [big] * 5)) == 5
    with pytest.raises(InvalidArgument, match="5 MB"):
        streams.put_records("s", [big] * 5 + [Entry(b"", "x")])
    total = sum(len(read_all(streams, "s", s.shard_id)) for s in streams.describe("s").shards)
    assert total == 5  # nothing of the refused puts was stored


def test_sequence_numbers_increase_per_shard_and_reads_return_everything_in_order(streams):
    streams.create_stream("s", 2)
    results = [r for _ in range(5) for r in put(streams, "s", *[f"k{i}" for i in range(40)])]
    for shard in ("shardId-000000000000", "shardId-000000000001"):
        mine = [r.sequence_number for r in results if r.shard_id == shard]
        assert mine == sorted(mine) and len(set(mine)) == len(mine)
        assert [r.sequence_number for r in read_all(streams, "s", shard)] == mine


def test_iterator_types(streams, clock):
    streams.create_stream("s", 1)
    first = put(streams, "s", "a", "b", "c")
    latest = streams.get_shard_iterator("s", "shardId-000000000000", IteratorType.LATEST)
    clock.advance(10)
    later = put(streams, "s", "d")
    seqs = [r.sequence_number for r in first + later]

    def seqs_from(kind, **kw):
        return [r.sequence_number for r in read_all(streams, "s", kind=kind, **kw)]

    assert seqs_from(IteratorType.TRIM_HORIZON) == seqs
    assert [r.sequence_number for r in streams.get_records(latest).records] == seqs[3:]
    assert seqs_from(IteratorType.AT_SEQUENCE_NUMBER, starting_sequence_number=seqs[1]) == seqs[1:]
    assert seqs_from(IteratorType.AFTER_SEQUENCE_NUMBER, starting_sequence_number=seqs[1]) == seqs[2:]
    assert seqs_from(IteratorType.AT_TIMESTAMP, timestamp=clock.now - 5) == seqs[3:]
    assert seqs_from(IteratorType.AT_TIMESTAMP, timestamp=clock.now + 5) == []
    with pytest.raises(InvalidArgument):
        streams.get_shard_iterator("s", "shardId-000000000000", IteratorType.AT_SEQUENCE_NUMBER)
    with pytest.raises(StreamNotFound, match="Shard shardId-000000000009 in stream s"):
        streams.get_shard_iterator("s", "shardId-000000000009", IteratorType.LATEST)
    with pytest.raises(InvalidArgument, match="Invalid ShardIterator"):
        streams.get_records("bm90IGFuIGl0ZXJhdG9yIGF0IGFsbA==")


def test_get_records_limit_and_millis_behind_latest(streams, clock):
    streams.create_stream("s", 1)
    put(streams, "s", *["k"] * 10)
    clock.advance(2)
    it = streams.get_shard_iterator("s", "0", IteratorType.TRIM_HORIZON)
    page = streams.get_records(it, 4)
    assert len(page.records) == 4 and page.millis_behind_latest == 2000
    page = streams.get_records(page.next_iterator, 100)
    assert len(page.records) == 6 and page.millis_behind_latest == 0
    with pytest.raises(InvalidArgument):
        streams.get_records(page.next_iterator, 10_001)


def test_iterators_expire(stream_store, clock):
    streams = StreamService(stream_store, clock=clock, iterator_ttl_s=1)
    streams.create_stream("s", 1)
    it = streams.get_shard_iterator("s", "shardId-000000000000", IteratorType.TRIM_HORIZON)
    clock.advance(0.5)
    fresh = streams.get_records(it).next_iterator
    clock.advance(0.7)
    streams.get_records(fresh)  # issued 0.7 s ago
    with pytest.raises(ExpiredIterator, match="tolerated delay of 1000 milliseconds"):
        streams.get_records(it)


def test_iterator_of_a_deleted_or_recreated_stream_is_not_found(streams):
    streams.create_stream("s", 1)
    it = streams.get_shard_iterator("s", "shardId-000000000000", IteratorType.TRIM_HORIZON)
    streams.delete_stream("s")
    streams.create_stream("s", 1)
    with pytest.raises(StreamNotFound):
        streams.get_records(it)


def test_retention_hides_and_trims_old_records(stream_store, clock):
    streams = StreamService(stream_store, clock=clock, retention_hour_s=1)
    streams.create_stream("s", 1)
    put(streams, "s", "old")
    clock.advance(20)
    put(streams, "s", "new")
    assert [r.partition_key for r in read_all(streams, "s")] == ["old", "new"]
    clock.advance(5)  # "old" is 25 "hours" old now, past the 24 h retention
    assert [r.partition_key for r in read_all(streams, "s")] == ["new"]
    assert streams.trim_expired() == 1
    streams.set_retention("s", 48, increase=True)
    assert streams.describe("s").retention_hours == 48
    with pytest.raises(InvalidArgument, match="can not be shorter than existing retention period"):
        streams.set_retention("s", 30, increase=True)
    with pytest.raises(InvalidArgument, match="too short"):
        streams.set_retention("s", 23, increase=False)
    with pytest.raises(InvalidArgument, match="too long"):
        streams.set_retention("s", 8761, increase=True)
    streams.set_retention("s", 24, increase=False)


def test_put_limits(streams):
    streams.create_stream("s", 1)
    with pytest.raises(ValidationError, match=r"'records\.2\.member\.data'.*less than or equal to 1048576"):
        streams.put_records("s", [Entry(b"a", "k"), Entry(b"a" * (1 << 20 | 1), "k")])
    with pytest.raises(ValidationError, match="'data'"):
        streams.put_record("s", Entry(b"a" * (1 << 20 | 1), "k"))
    with pytest.raises(ValidationError, match="partitionKey"):
        streams.put_record("s", Entry(b"a", ""))
    with pytest.raises(InvalidArgument, match="5 MB"):
        streams.put_records("s", [Entry(b"a" * (1 << 20), "k")] * 6)
    with pytest.raises(ValidationError, match="less than or equal to 500"):
        streams.put_records("s", [Entry(b"a", "k")] * 501)
    with pytest.raises(InvalidArgument, match="ExclusiveMinimumSequenceNumber"):
        streams.put_record("s", Entry(b"a", "k"), sequence_number_for_ordering="1")
    with pytest.raises(StreamNotFound):
        streams.put_record("nope", Entry(b"a", "k"))


def test_sequence_number_for_ordering_is_honoured(streams):
    streams.create_stream("s", 4)
    previous = streams.put_record("s", Entry(b"0", "k"))
    for i in range(1, 5):
        result = streams.put_record("s", Entry(b"%d" % i, f"other-{i}"), previous.sequence_number)
        assert int(result.sequence_number) > int(previous.sequence_number)
        previous = result


def test_a_store_failure_fails_each_record_of_the_put(streams, monkeypatch):
    streams.create_stream("s", 1)

    def broken(shard_ids, records):
        future: Future = Future()
        future.set_exception(OSError("disk full"))
        return future

    monkeypatch.setattr(streams.store, "append_nowait", broken)
    results = put(streams, "s", "a", "b")
    assert [(r.error_code, r.error_message, r.sequence_number) for r in results] == [
        ("InternalFailure", "Internal service failure.", None)
    ] * 2


def test_a_store_failure_with_quotas_on_keeps_throttled_records_apart(streams, clock, monkeypatch):
    streams.create_stream("s", 1, tags={"lamina:quotas": "on"})
    assert [r.error_code for _ in range(2) for r in put(streams, "s", *["k"] * 500)] == [None] * 1000

    def broken(shard_ids, records):
        future: Future = Future()
        future.set_exception(OSError("disk full"))
        return future

    monkeypatch.setattr(streams.store, "append_nowait", broken)
    results = put(streams, "s", "a", "b")  # the shard's 1,000 records/s are used up: both throttled
    assert [r.error_code for r in results] == ["ProvisionedThroughputExceededException"] * 2
    clock.advance(0.0015)  # room for one record: the first is stored (and fails), the second throttled
    results = put(streams, "s", "a", "b")
    assert [r.error_code for r in results] == ["InternalFailure", "ProvisionedThroughputExceededException"]
    clock.advance(1.0)
    results = put(streams, "s", "a", "b")
    assert [(r.shard_id, r.error_code) for r in results] == [("shardId-000000000000", "InternalFailure")] * 2


def test_tags(streams):
    streams.create_stream("s", 1, tags={"b": "2"})
    streams.add_tags("s", {"a": "1", "c": "3"})
    assert streams.list_tags("s") == ([("a", "1"), ("b", "2"), ("c", "3")], False)
    assert streams.list_tags("s", after="a", limit=1) == ([("b", "2")], True)
    with pytest.raises(LimitExceeded):
        streams.add_tags("s", {f"k{i}": "v" for i in range(50)})


def test_list_shards_pages(streams):
    streams.create_stream("s", 5)
    page, more = streams.list_shards("s", limit=2)
    assert [s.index for s in page] == [0, 1] and more
    page, more = streams.list_shards("s", after_shard="shardId-000000000002")
    assert [s.index for s in page] == [3, 4] and not more


def test_concurrent_producers_keep_per_shard_order_and_lose_nothing(streams):
    streams.create_stream("s", 2)
    acked: dict[str, list[tuple[str, str]]] = {}

    def producer(p: int) -> None:
        for batch in range(20):
            entries = [Entry(f"{p}:{batch}:{i}".encode(), f"p{p}-{i % 3}") for i in range(25)]
            for entry, result in zip(entries, streams.put_records("s", entries), strict=True):
                acked.setdefault(result.shard_id, []).append((result.sequence_number, entry.data.decode()))

    threads = [threading.Thread(target=producer, args=(p,)) for p in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for shard, items in acked.items():
        read = [(r.sequence_number, r.data.decode()) for r in read_all(streams, "s", shard)]
        assert read == sorted(items)  # every acked record, once, in sequence-number order
        # one producer's records with one partition key stay in the order it put them
        for key in {r for _, r in read}:
            p, _, _ = key.split(":")
            mine = [d for _, d in read if d.startswith(f"{p}:")]
            assert mine == sorted(mine, key=lambda d: tuple(map(int, d.split(":"))))
    assert sum(map(len, acked.values())) == 6 * 20 * 25
    if isinstance(streams.store, SqliteStreamStore):
        assert streams.store._db.stats().commits < 6 * 20  # group-committed


def test_async_put_and_consumers_are_woken(streams):
    stream = streams.create_stream("s", 1)
    shard = stream.shards[0].id

    async def scenario() -> None:
        version = streams.signal.version(shard)
        assert not await streams.signal.wait(shard, version, timeout=0.05)
        waiter = asyncio.create_task(streams.signal.wait(shard, version, timeout=5))
        await asyncio.sleep(0.01)
        results = await streams.put_records_async("s", [Entry(b"x", "k")])
        assert results[0].sequence_number is not None
        assert await asyncio.wait_for(waiter, 1)
        # a put between taking the version and waiting is not missed
        version = streams.signal.version(shard)
        await asyncio.to_thread(streams.put_records, "s", [Entry(b"y", "k")])
        assert await streams.signal.wait(shard, version, timeout=0.01)

    asyncio.run(scenario())


def test_quotas_are_off_by_default_and_throttle_per_record_when_on(streams, clock):
    streams.create_stream("free", 1)
    assert all(r.error_code is None for r in put(streams, "free", *["k"] * 500) * 3)
    streams.create_stream("s", 1, tags={"lamina:quotas": "on"})
    results = [r for _ in range(3) for r in put(streams, "s", *[f"k{i}" for i in range(500)])]
    codes = [r.error_code for r in results]  # the shard takes 1,000 records in the second
    assert codes == [None] * 1000 + ["ProvisionedThroughputExceededException"] * 500
    assert (
        results[-1].error_message
        == "Rate exceeded for shard shardId-000000000000 in stream s under account 000000000000."
    )
    assert len(read_all(streams, "s")) == 1000
    clock.advance(1)
    assert put(streams, "s", "k0")[0].error_code is None
    big = b"x" * (600 << 10)
    assert [r.error_code for r in put(streams, "s", "k0", "k0", data=big)] == [
        None,
        "ProvisionedThroughputExceededException",
    ]
    with pytest.raises(ProvisionedThroughputExceeded):
        streams.put_record("s", Entry(big, "k0"))


def test_quotas_switch_on_with_add_tags_and_an_invalid_call_takes_no_quota(streams, clock):
    streams.create_stream("s", 1)
    assert put(streams, "s", *["k"] * 500)[-1].error_code is None  # the stream is cached now
    streams.add_tags("s", {"lamina:quotas": "on"})
    with pytest.raises(InvalidArgument):
        streams.put_records("s", [Entry(b"a" * (1 << 20), "k")] * 6)
    codes = [r.error_code for r in put(streams, "s", *["k"] * 500) + put(streams, "s", *["k"] * 500)]
    assert codes == [None] * 1000  # the refused call took none of the second's 1,000 records
    assert put(streams, "s", "k")[0].error_code == "ProvisionedThroughputExceededException"


def test_read_quota_is_five_calls_per_second(streams, clock):
    streams.create_stream("s", 1, tags={"lamina:quotas": "on"})
    it = streams.get_shard_iterator("s", "0", IteratorType.TRIM_HORIZON)
    for _ in range(5):
        it = streams.get_records(it).next_iterator
    with pytest.raises(ProvisionedThroughputExceeded):
        streams.get_records(it)
    clock.advance(0.2)
    streams.get_records(it)
