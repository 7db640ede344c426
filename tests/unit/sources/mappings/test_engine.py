"""The mapping engine's semantics with an in-process handler: event JSON, batching, the window,
the 6 MB cut, retries, bisect, partial batch failures, on-failure records, filters, parents-first
resharding, live updates, disable/enable. (End to end with a real server: tests/e2e/test_mappings.py.)"""

from __future__ import annotations

import asyncio
import base64
import json
import time

from lamina.errors import TooManyRequests
from lamina.model.mappings import MappingState
from lamina.sources.mappings import MappingChange
from lamina.sources.mappings.parallel import LaneState, lane_of
from lamina.sources.streams import IteratorType
from lamina.store.sqlite.database import Database
from tests.unit.sources.mappings.harness import (
    FUNCTION_ARN,
    ROLE,
    STREAM_ARN,
    FunctionError,
    Harness,
    data_of,
    until,
)


def run(h: Harness, scenario) -> None:
    async def main() -> None:
        await h.engine.start()
        try:
            await scenario()
        finally:
            await h.engine.stop()

    asyncio.run(main())


def test_records_arrive_in_order_as_aws_kinesis_events_and_the_mapping_settles_enabled(tmp_path):
    h = Harness(tmp_path)
    h.put(("pk-1", '{"n": 1}'))

    async def scenario():
        config = await asyncio.to_thread(h.create)
        assert config.state is MappingState.CREATING
        await until(lambda: h.service.get(config.uuid).state is MappingState.ENABLED)
        h.put(("pk-2", "two"), ("pk-2", "three"))
        await until(lambda: sum(len(b) for b in h.batches()) == 3)
        assert h.service.last_result(config) == "OK"

    run(h, scenario)
    records = [r for e in h.invoker.events for r in e["Records"]]
    assert [data_of(r) for r in records] == ['{"n": 1}', "two", "three"]
    first = records[0]
    seq = first["kinesis"]["sequenceNumber"]
    assert set(first) == {"kinesis", "eventSource", "eventVersion", "eventID", "eventName", "invokeIdentityArn",
                          "awsRegion", "eventSourceARN"}  # fmt: skip
    assert first["kinesis"]["kinesisSchemaVersion"] == "1.0" and first["kinesis"]["partitionKey"] == "pk-1"
    assert base64.b64decode(first["kinesis"]["data"]) == b'{"n": 1}'
    assert abs(first["kinesis"]["approximateArrivalTimestamp"] - time.time()) < 10
    assert first["eventID"] == f"shardId-000000000000:{seq}" and len(seq) == 56
    assert (first["eventSource"], first["eventVersion"], first["eventName"]) == ("aws:kinesis", "1.0",
                                                                                 "aws:kinesis:record")  # fmt: skip
    assert (first["invokeIdentityArn"], first["awsRegion"], first["eventSourceARN"]) == (ROLE, "us-east-1",
                                                                                         STREAM_ARN)  # fmt: skip
    seqs = [int(r["kinesis"]["sequenceNumber"]) for r in records]
    assert seqs == sorted(seqs)


def test_latest_starts_after_the_records_present_at_create(tmp_path):
    h = Harness(tmp_path)
    h.put("old-1", "old-2")

    async def scenario():
        await asyncio.to_thread(h.create, "LATEST")
        h.put("new")
        await until(lambda: h.batches())
        await asyncio.sleep(0.05)

    run(h, scenario)
    assert h.batches() == [["new"]]


def test_at_timestamp_starts_at_the_first_record_that_arrived_then(tmp_path):
    h = Harness(tmp_path)
    h.put("before")
    time.sleep(0.02)
    at = time.time()
    time.sleep(0.01)
    h.put("after")

    async def scenario():
        await asyncio.to_thread(h.create, "AT_TIMESTAMP", timestamp=at)
        await until(lambda: h.batches())

    run(h, scenario)
    assert h.batches() == [["after"]]


def test_batch_size_caps_each_batch(tmp_path):
    h = Harness(tmp_path)
    h.put(*[str(i) for i in range(7)])

    async def scenario():
        await asyncio.to_thread(h.create, batch_size=3)
        await until(lambda: sum(len(b) for b in h.batches()) == 7)

    run(h, scenario)
    assert h.batches() == [["0", "1", "2"], ["3", "4", "5"], ["6"]]


def test_the_batching_window_gathers_records_that_arrive_within_it(tmp_path):
    h = Harness(tmp_path)

    async def scenario():
        await asyncio.to_thread(h.create, window_s=1)
        await until(lambda: h.service.get(h.store.list_mappings()[0].uuid).state is MappingState.ENABLED)
        started = time.monotonic()
        h.put("a")
        await asyncio.sleep(0.2)
        h.put("b")
        await until(lambda: h.batches())
        assert time.monotonic() - started >= 0.9  # held until the window ended

    run(h, scenario)
    assert h.batches() == [["a", "b"]]


def test_a_full_batch_does_not_wait_for_the_window(tmp_path):
    h = Harness(tmp_path)
    h.put("a", "b")

    async def scenario():
        await asyncio.to_thread(h.create, window_s=300, batch_size=2)
        await until(lambda: h.batches(), timeout=2)

    run(h, scenario)
    assert h.batches() == [["a", "b"]]


def test_a_batch_never_exceeds_the_6_mb_invoke_payload(tmp_path):
    h = Harness(tmp_path)
    big = "x" * 1_000_000
    for i in range(9):
        h.put(f"{i}{big}")

    async def scenario():
        await asyncio.to_thread(h.create, batch_size=100)
        await until(lambda: sum(len(b) for b in h.batches()) == 9)

    run(h, scenario)
    sizes = [len(r.payload) for r in h.invoker.requests]
    assert all(size <= 6_291_456 for size in sizes) and len(sizes) == 3
    assert [b[0] for batch in h.batches() for b in batch] == [str(i) for i in range(9)]


def test_a_failing_batch_blocks_the_shard_and_is_retried_whole_until_it_succeeds(tmp_path):
    failures = {"left": 2}

    def handler(event):
        if failures["left"]:
            failures["left"] -= 1
            raise FunctionError("not yet")

    h = Harness(tmp_path, handler)
    h.put("a", "b")

    async def scenario():
        config = await asyncio.to_thread(h.create, batch_size=2)
        await until(lambda: len(h.batches()) == 3)
        h.put("c")
        await until(lambda: len(h.batches()) == 4)
        await until(lambda: h.service.last_result(config) == "OK")

    run(h, scenario)
    assert h.batches() == [["a", "b"], ["a", "b"], ["a", "b"], ["c"]]
    assert h.delivered() == []


def test_retries_exhausted_send_aws_record_to_on_failure_and_the_shard_moves_on(tmp_path):
    def handler(event):
        if any(data_of(r) == "bad" for r in event["Records"]):
            raise FunctionError("bad record")

    h = Harness(tmp_path, handler)
    h.put("bad", "bad")

    async def scenario():
        config = await asyncio.to_thread(h.create, batch_size=2, max_retries=1, on_failure=FUNCTION_ARN + "dest")
        await until(lambda: h.delivered())
        h.put("good")
        await until(lambda: h.batches()[-1] == ["good"])
        (kept,) = h.store.failed_batches(config.uuid)
        assert kept.condition == "RetryAttemptsExhausted"
        assert [data_of(r) for r in json.loads(kept.payload)["Records"]] == ["bad", "bad"]

    run(h, scenario)
    assert h.batches() == [["bad", "bad"], ["bad", "bad"], ["good"]]
    (record,) = h.delivered()
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    context = record["requestContext"]
    assert (context["functionArn"], context["condition"], context["approximateInvokeCount"]) == (
        FUNCTION_ARN + "f", "RetryAttemptsExhausted", 2)  # fmt: skip
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    info = record["KinesisBatchInfo"]
    seqs = [r["kinesis"]["sequenceNumber"] for r in h.invoker.events[0]["Records"]]
    assert info["shardId"] == "shardId-000000000000" and info["batchSize"] == 2 and info["streamArn"] == STREAM_ARN
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (seqs[0], seqs[1])
    assert info["approximateArrivalOfFirstRecord"].endswith("Z") and "approximateArrivalOfLastRecord" in info


def test_bisect_splits_a_failing_batch_without_using_retries(tmp_path):
    def handler(event):
        if any(data_of(r) == "bad" for r in event["Records"]):
            raise FunctionError("bad record")

    h = Harness(tmp_path, handler)
    h.put("a", "b", "bad", "d")

    async def scenario():
        await asyncio.to_thread(h.create, batch_size=4, bisect=True, max_retries=0, on_failure=FUNCTION_ARN + "dest")
        await until(lambda: ["d"] in h.batches())

    run(h, scenario)
    assert h.batches() == [["a", "b", "bad", "d"], ["a", "b"], ["bad", "d"], ["bad"], ["d"]]
    (record,) = h.delivered()
    assert record["KinesisBatchInfo"]["batchSize"] == 1 and record["requestContext"]["approximateInvokeCount"] == 1


def test_report_batch_item_failures_checkpoints_before_the_lowest_and_retries_from_there(tmp_path):
    fail_times = {"c": 1, "d": 2}  # c fails once, d twice

    def handler(event):
        failures = []
        for r in event["Records"]:
            if fail_times.get(data_of(r), 0) > 0:
                fail_times[data_of(r)] -= 1
                failures.append({"itemIdentifier": r["kinesis"]["sequenceNumber"]})
        return {"batchItemFailures": failures[::-1]}

    h = Harness(tmp_path, handler)
    h.put("a", "b", "c", "d", "e")

    async def scenario():
        await asyncio.to_thread(h.create, batch_size=5, response_types=["ReportBatchItemFailures"])
        await until(lambda: len(h.batches()) == 3)

    run(h, scenario)
    assert h.batches() == [["a", "b", "c", "d", "e"], ["c", "d", "e"], ["d", "e"]]


def test_malformed_item_identifiers_fail_the_whole_batch(tmp_path):
    calls = {"n": 0}

    def handler(event):
        calls["n"] += 1
        return {"batchItemFailures": [{"itemIdentifier": ""}]} if calls["n"] == 1 else {"batchItemFailures": []}

    h = Harness(tmp_path, handler)
    h.put("a", "b")

    async def scenario():
        await asyncio.to_thread(h.create, batch_size=2, response_types=["ReportBatchItemFailures"])
        await until(lambda: len(h.batches()) == 2)
        h.put("c")
        await until(lambda: len(h.batches()) == 3)

    run(h, scenario)
    assert h.batches() == [["a", "b"], ["a", "b"], ["c"]]


def test_throttles_are_retried_without_counting_as_retries(tmp_path):
    calls = {"n": 0}

    def handler(event):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise TooManyRequests("Rate Exceeded.")
        raise FunctionError("boom")

    h = Harness(tmp_path, handler)
    h.put("a")

    async def scenario():
        await asyncio.to_thread(h.create, max_retries=0, on_failure=FUNCTION_ARN + "dest")
        await until(lambda: h.delivered())

    run(h, scenario)
    assert calls["n"] == 3
    assert h.delivered()[0]["requestContext"]["approximateInvokeCount"] == 1


def test_records_older_than_maximum_record_age_go_to_on_failure(tmp_path):
    def handler(event):
        raise FunctionError("always")

    h = Harness(tmp_path, handler)
    h.put("old")

    async def scenario():
        await asyncio.to_thread(h.create, max_record_age_s=1, on_failure=FUNCTION_ARN + "dest")
        await until(lambda: h.delivered(), timeout=5)

    run(h, scenario)
    (record,) = h.delivered()
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"


def test_filters_skip_and_checkpoint_records_that_match_no_pattern(tmp_path):
    h = Harness(tmp_path)
    h.put('{"kind": "order", "n": 1}', '{"kind": "ping"}', "not json", '{"kind": "order", "n": 2}', '{"kind": "ping"}')

    async def scenario():
        config = await asyncio.to_thread(h.create, batch_size=2, filters=['{"data": {"kind": ["order"]}}'])
        await until(lambda: sum(len(b) for b in h.batches()) == 2)
        await until(lambda: h.store.checkpoints(config.uuid)[0].position == _last_seq(h))

    run(h, scenario)
    assert h.batches() == [['{"kind": "order", "n": 1}'], ['{"kind": "order", "n": 2}']]


def _last_seq(h: Harness) -> str:
    it = h.streams.get_shard_iterator("s", "shardId-000000000000", IteratorType.TRIM_HORIZON)
    return h.streams.get_records(it).records[-1].sequence_number


def test_resharded_streams_finish_parents_before_children(tmp_path):
    h = Harness(tmp_path)
    keys = [f"key-{i}" for i in range(8)]
    h.put(*[(k, f"{k}:0") for k in keys])
    h.streams.update_shard_count("s", 2)
    h.put(*[(k, f"{k}:1") for k in keys])

    async def scenario():
        await asyncio.to_thread(h.create, batch_size=100)
        await until(lambda: sum(len(b) for b in h.batches()) == 16)

    run(h, scenario)
    order = [d for b in h.batches() for d in b]
    assert all(d.endswith(":0") for d in order[:8])  # the parent shard first, whole
    for k in keys:
        assert order.index(f"{k}:0") < order.index(f"{k}:1")


def test_update_takes_effect_live_and_disable_enable_resumes_at_the_checkpoint(tmp_path):
    h = Harness(tmp_path)

    async def scenario():
        config = await asyncio.to_thread(h.create, batch_size=1)
        await until(lambda: h.service.get(config.uuid).state is MappingState.ENABLED)
        h.put("a", "b")
        await until(lambda: len(h.batches()) == 2)
        updated = await asyncio.to_thread(h.service.update, config.uuid, MappingChange(batch_size=10))
        assert updated.state is MappingState.UPDATING
        await until(lambda: h.service.get(config.uuid).state is MappingState.ENABLED)
        h.put("c", "d", "e")
        await until(lambda: sum(len(b) for b in h.batches()) == 5)
        disabled = await asyncio.to_thread(h.service.update, config.uuid, MappingChange(enabled=False))
        assert disabled.state is MappingState.DISABLING
        await until(lambda: h.service.get(config.uuid).state is MappingState.DISABLED)
        h.put("f", "g")
        await asyncio.sleep(0.1)
        assert sum(len(b) for b in h.batches()) == 5
        await asyncio.to_thread(h.service.update, config.uuid, MappingChange(enabled=True))
        await until(lambda: sum(len(b) for b in h.batches()) == 7)

    run(h, scenario)
    assert h.batches() == [["a"], ["b"], ["c", "d", "e"], ["f", "g"]]


def test_deleting_the_mapping_or_its_function_stops_it(tmp_path):
    h = Harness(tmp_path)

    async def scenario():
        config = await asyncio.to_thread(h.create)
        await until(lambda: h.service.get(config.uuid).state is MappingState.ENABLED)
        deleting = await asyncio.to_thread(h.service.delete, config.uuid)
        assert deleting.state is MappingState.DELETING
        await until(lambda: h.store.get_mapping(config.uuid) is None)
        assert h.store.checkpoints(config.uuid) == []
        other = await asyncio.to_thread(h.create)
        await until(lambda: other.uuid in h.engine.runners)
        await asyncio.to_thread(h.functions.delete, "f")
        await asyncio.to_thread(h.service.function_deleted, "f")
        await until(lambda: h.store.get_mapping(other.uuid) is None)
        h.put("x")
        await asyncio.sleep(0.05)

    run(h, scenario)
    assert h.batches() == []


def test_parallelization_runs_batches_of_a_shard_concurrently_keeping_order_per_key(tmp_path):
    h = Harness(tmp_path)
    h.invoker.delay = 0.01
    keys = [f"key-{i}" for i in range(12)]
    h.put(*[(k, f"{k}:{n}") for n in range(10) for k in keys])

    async def scenario():
        config = await asyncio.to_thread(h.create, batch_size=5, parallelization=4)
        await until(lambda: sum(len(b) for b in h.batches()) == 120)
        await until(lambda: h.store.checkpoints(config.uuid)[0].position == _last_seq(h))

    run(h, scenario)
    order = [d for b in h.batches() for d in b]
    assert sorted(order) == sorted(f"{k}:{n}" for n in range(10) for k in keys)  # each once
    for k in keys:
        assert [d for d in order if d.startswith(k + ":")] == [f"{k}:{n}" for n in range(10)]
    assert h.invoker.most_in_flight > 1


def test_parallel_lanes_retry_and_give_up_like_a_shard(tmp_path):
    def handler(event):
        if any(data_of(r) == "bad" for r in event["Records"]):
            raise FunctionError("bad")

    h = Harness(tmp_path, handler)
    h.put(("a", "bad"), *[(f"k{i}", f"ok{i}") for i in range(20)])

    async def scenario():
        config = await asyncio.to_thread(h.create, batch_size=1, parallelization=3, max_retries=1,
                                         on_failure=FUNCTION_ARN + "dest")  # fmt: skip
        await until(lambda: h.delivered())
        await until(lambda: h.store.checkpoints(config.uuid)[0].position == _last_seq(h))

    run(h, scenario)
    assert sum(1 for b in h.batches() if b == ["bad"]) == 2
    assert sorted(d for b in h.batches() for d in b if d != "bad") == sorted(f"ok{i}" for i in range(20))


def test_tumbling_windows_carry_state_between_invokes_and_end_with_a_final_invoke(tmp_path):
    def handler(event):
        total = (event["state"] or {}).get("sum", 0) + sum(int(data_of(r)) for r in event["Records"])
        return {"state": {"sum": total}}

    h = Harness(tmp_path, handler)

    async def scenario():
        config = await asyncio.to_thread(h.create, batch_size=2, tumbling_window_s=1)
        await until(lambda: h.service.get(config.uuid).state is MappingState.ENABLED)
        # Start just after a window boundary so all three records fall in one window.
        await asyncio.sleep(1 - time.time() % 1 + 0.01)
        h.put("1", "2", "3")
        await until(lambda: any(e["isFinalInvokeForWindow"] for e in h.invoker.events), timeout=3)
        h.put("10")
        await until(lambda: sum(1 for e in h.invoker.events if e["isFinalInvokeForWindow"]) == 2, timeout=4)

    run(h, scenario)
    events = h.invoker.events
    assert [[data_of(r) for r in e["Records"]] for e in events] == [["1", "2"], ["3"], [], ["10"], []]
    assert [e["state"] for e in events] == [{}, {"sum": 3}, {"sum": 6}, {}, {"sum": 10}]
    assert [e["isFinalInvokeForWindow"] for e in events] == [False, False, True, False, True]
    first = events[0]
    assert first["shardId"] == "shardId-000000000000" and first["eventSourceARN"] == STREAM_ARN
    assert first["isWindowTerminatedEarly"] is False
    assert first["window"]["start"].endswith("Z") and first["window"]["start"] < first["window"]["end"]
    assert first["window"] == events[2]["window"] != events[3]["window"]


def test_a_tumbling_window_response_without_state_fails_the_batch(tmp_path):
    calls = {"n": 0}

    def handler(event):
        calls["n"] += 1
        return None if calls["n"] == 1 else {"state": {}}

    h = Harness(tmp_path, handler)
    h.put("a")

    async def scenario():
        await asyncio.to_thread(h.create, tumbling_window_s=60)
        await until(lambda: len(h.invoker.events) >= 2)

    run(h, scenario)
    assert h.batches()[:2] == [["a"], ["a"]]


def test_a_retried_batch_stays_the_same_batch_while_records_arrive(tmp_path):
    def handler(event):
        if any(data_of(r) == "bad" for r in event["Records"]):
            raise FunctionError("bad")

    h = Harness(tmp_path, handler)
    h.put("bad")

    async def scenario():
        await asyncio.to_thread(h.create, max_retries=2, on_failure=FUNCTION_ARN + "dest")
        await until(lambda: h.batches())
        h.put("later-1", "later-2")
        await until(lambda: h.delivered())
        await until(lambda: h.batches()[-1] == ["later-1", "later-2"])

    run(h, scenario)
    assert h.batches() == [["bad"], ["bad"], ["bad"], ["later-1", "later-2"]]
    assert h.delivered()[0]["KinesisBatchInfo"]["batchSize"] == 1


def test_over_sqlite_a_restarted_engine_resumes_after_the_checkpoint(tmp_path):
    db = Database(tmp_path / "lamina.db")
    try:
        first = Harness(tmp_path, database=db, shards=2)
        first.put(*[(f"k{i}", str(i)) for i in range(10)])

        async def before():
            await asyncio.to_thread(first.create, batch_size=3)
            await until(lambda: sum(len(b) for b in first.batches()) == 10)

        run(first, before)
        second = Harness(tmp_path / "again", database=db)
        second.put(*[(f"k{i}", str(i)) for i in range(10, 15)])

        async def after():
            await until(lambda: sum(len(b) for b in second.batches()) == 5)
            await asyncio.sleep(0.05)

        run(second, after)
        assert sorted(d for b in second.batches() for d in b) == [str(i) for i in range(10, 15)]
    finally:
        db.close()


def test_records_already_too_old_when_read_go_to_on_failure_without_an_invoke(tmp_path):
    h = Harness(tmp_path)
    h.put("stale")

    async def scenario():
        config = await asyncio.to_thread(h.create, max_record_age_s=1, enabled=False, on_failure=FUNCTION_ARN + "dest")
        await until(lambda: h.service.get(config.uuid).state is MappingState.DISABLED)
        await asyncio.sleep(1.1)
        h.put("fresh")
        await asyncio.to_thread(h.service.update, config.uuid, MappingChange(enabled=True))
        await until(lambda: h.batches())

    run(h, scenario)
    assert h.batches() == [["fresh"]]
    (record,) = h.delivered()
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0 and "responseContext" not in record
    assert record["KinesisBatchInfo"]["batchSize"] == 1


def test_a_window_state_over_1_mb_terminates_the_window_early(tmp_path):
    def handler(event):
        return {"state": {"blob": "x" * (1 << 20)} if event["Records"] else {}}

    h = Harness(tmp_path, handler)
    h.put("a")

    async def scenario():
        await asyncio.to_thread(h.create, tumbling_window_s=900)
        await until(lambda: len(h.invoker.events) >= 2)

    run(h, scenario)
    first, final = h.invoker.events[:2]
    assert first["isWindowTerminatedEarly"] is False and first["isFinalInvokeForWindow"] is False
    assert final["isWindowTerminatedEarly"] is True and final["isFinalInvokeForWindow"] is True
    assert final["Records"] == [] and len(final["state"]["blob"]) == 1 << 20


def test_over_sqlite_a_tumbling_window_state_survives_a_restart(tmp_path):
    if time.time() % 900 > 880:  # keep the whole test inside one 15-minute window
        time.sleep(21)

    def handler(event):
        return {"state": {"sum": (event["state"] or {}).get("sum", 0) + sum(int(data_of(r)) for r in event["Records"])}}

    db = Database(tmp_path / "lamina.db")
    try:
        first = Harness(tmp_path, handler, database=db)
        first.put("1", "2")

        async def before():
            await asyncio.to_thread(first.create, tumbling_window_s=900)
            await until(lambda: first.invoker.events)

        run(first, before)
        second = Harness(tmp_path / "again", handler, database=db)
        second.put("3")

        async def after():
            await until(lambda: second.invoker.events)

        run(second, after)
        assert first.invoker.events[0]["state"] == {}
        assert second.invoker.events[0]["state"] == {"sum": 3}  # the window's state came back
        assert second.invoker.events[0]["window"] == first.invoker.events[0]["window"]
    finally:
        db.close()


def test_with_unlimited_retries_a_failing_batch_is_given_up_once_its_records_expire(tmp_path):
    def handler(event):
        raise FunctionError("always")

    h = Harness(tmp_path, handler, retention_hour_s=0.02)  # 24 "hours" of retention = 0.48 s
    h.put("poison")

    async def scenario():
        await asyncio.to_thread(h.create, on_failure=FUNCTION_ARN + "dest")
        await until(lambda: h.delivered(), timeout=5)
        h.put("next")
        await until(lambda: h.batches()[-1] == ["next"])

    run(h, scenario)
    assert h.delivered()[0]["requestContext"]["condition"] == "RecordAgeExceeded"
    assert len(h.batches()) > 3  # retried meanwhile


def test_changing_the_parallelization_factor_live_restarts_the_shard_at_its_checkpoint(tmp_path):
    h = Harness(tmp_path)
    h.invoker.delay = 0.005
    keys = [f"key-{i}" for i in range(6)]

    async def scenario():
        config = await asyncio.to_thread(h.create, batch_size=2)
        await until(lambda: h.service.get(config.uuid).state is MappingState.ENABLED)
        h.put(*[(k, f"{k}:0") for k in keys])
        await until(lambda: sum(len(b) for b in h.batches()) == 6)
        await asyncio.to_thread(h.service.update, config.uuid, MappingChange(parallelization=3))
        await until(lambda: h.service.get(config.uuid).state is MappingState.ENABLED)
        h.put(*[(k, f"{k}:{n}") for n in (1, 2) for k in keys])
        await until(lambda: sum(len(b) for b in h.batches()) == 18)
        await asyncio.sleep(0.05)

    run(h, scenario)
    order = [d for b in h.batches() for d in b]
    assert sorted(order) == sorted(f"{k}:{n}" for n in range(3) for k in keys)  # each once
    for k in keys:
        assert [d for d in order if d.startswith(k + ":")] == [f"{k}:{n}" for n in range(3)]


def _keys_in_lanes(factor: int) -> list[str]:
    """One partition key per lane of `factor` (lane i gets keys[i])."""
    keys: dict[int, str] = {}
    for n in range(1000):
        keys.setdefault(lane_of(f"key-{n}", factor), f"key-{n}")
    return [keys[i] for i in range(factor)]


def test_over_sqlite_records_other_lanes_decided_are_not_sent_again_after_a_restart(tmp_path):
    blocked, free = _keys_in_lanes(2)
    release = False

    def handler(event):
        if not release and any(r["kinesis"]["partitionKey"] == blocked for r in event["Records"]):
            raise FunctionError("not yet")

    db = Database(tmp_path / "lamina.db")
    try:
        first = Harness(tmp_path, handler, database=db)
        # The blocked key's record comes first: the shard checkpoint cannot move past it, while the
        # other lane decides everything after it.
        first.put((blocked, "b0"), *[(free, f"f{n}") for n in range(6)], (blocked, "b1"))

        async def before():
            config = await asyncio.to_thread(first.create, batch_size=4, parallelization=2)  # reads all 8
            await until(lambda: sum(len(b) for b in first.batches() if b[0].startswith("f")) == 6)
            await until(lambda: first.store.checkpoints(config.uuid)[0].window is not None
                        and LaneState.parse(first.store.checkpoints(config.uuid)[0].window).ahead[1])  # fmt: skip
            return config

        run(first, before)
        (checkpoint,) = first.store.checkpoints(first.store.list_mappings()[0].uuid)
        assert checkpoint.position < _last_seq(first)  # the prefix stopped before the blocked record
        release = True
        second = Harness(tmp_path / "again", handler, database=db)
        second.put((free, "f6"), (blocked, "b2"))

        async def after():
            await until(lambda: sum(len(b) for b in second.batches()) == 4)
            await until(lambda: second.store.checkpoints(checkpoint.uuid)[0].position == _last_seq(second))
            await asyncio.sleep(0.05)

        run(second, after)
        sent = [d for b in second.batches() for d in b]
        assert sorted(sent) == ["b0", "b1", "b2", "f6"]  # nothing the free lane had decided
        assert [d for d in sent if d.startswith("b")] == ["b0", "b1", "b2"]  # per-key order
        assert LaneState.parse(second.store.checkpoints(checkpoint.uuid)[0].window).ahead == [None, None]
    finally:
        db.close()


def test_over_sqlite_parallel_lanes_tumbling_window_states_survive_a_restart(tmp_path):
    if time.time() % 900 > 880:  # keep the whole test inside one 15-minute window
        time.sleep(21)
    one, two = _keys_in_lanes(2)

    def handler(event):
        return {"state": {"sum": (event["state"] or {}).get("sum", 0) + sum(int(data_of(r)) for r in event["Records"])}}

    db = Database(tmp_path / "lamina.db")
    try:
        first = Harness(tmp_path, handler, database=db)
        first.put((one, "1"), (two, "10"), (one, "2"), (two, "20"))

        async def before():
            await asyncio.to_thread(first.create, tumbling_window_s=900, parallelization=2)
            await until(lambda: sum(len(e["Records"]) for e in first.invoker.events) == 4)

        run(first, before)
        second = Harness(tmp_path / "again", handler, database=db)
        second.put((one, "3"), (two, "30"))

        async def after():
            await until(lambda: len(second.invoker.events) == 2)
            await asyncio.sleep(0.05)

        run(second, after)
        by_key = {e["Records"][0]["kinesis"]["partitionKey"]: e for e in second.invoker.events}
        assert [data_of(r) for r in by_key[one]["Records"]] == ["3"]  # nothing sent again
        assert by_key[one]["state"] == {"sum": 3} and by_key[two]["state"] == {"sum": 30}
        assert by_key[one]["window"] == first.invoker.events[0]["window"]
        assert [data_of(r) for r in by_key[two]["Records"]] == ["30"]
    finally:
        db.close()


def test_a_closed_shard_ends_every_lane_s_tumbling_window_with_a_final_invoke(tmp_path):
    if time.time() % 900 > 880:  # keep the whole test inside one 15-minute window
        time.sleep(21)
    one, two = _keys_in_lanes(2)

    def handler(event):
        return {"state": {"sum": (event["state"] or {}).get("sum", 0) + sum(int(data_of(r)) for r in event["Records"])}}

    h = Harness(tmp_path, handler)
    h.put((one, "1"), (two, "10"), (one, "2"))
    h.streams.update_shard_count("s", 2)
    h.put((one, "100"))

    async def scenario():
        await asyncio.to_thread(h.create, tumbling_window_s=900, parallelization=2)
        await until(lambda: any(e["shardId"] != "shardId-000000000000" for e in h.invoker.events))

    run(h, scenario)
    parent = [e for e in h.invoker.events if e["shardId"] == "shardId-000000000000"]
    finals = sorted(e["state"]["sum"] for e in parent if e["isFinalInvokeForWindow"])
    assert finals == [3, 10] and all(e["Records"] == [] for e in parent if e["isFinalInvokeForWindow"])
    child = next(i for i, e in enumerate(h.invoker.events) if e["shardId"] != "shardId-000000000000")
    assert child > max(i for i, e in enumerate(h.invoker.events) if e["isFinalInvokeForWindow"])  # parents first
