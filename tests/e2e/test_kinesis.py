"""Kinesis end to end: the edge under uvicorn on a free port with the stream service registered,
driven by real boto3 (and the AWS CLI once)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lamina.api.app import EdgeApp
from lamina.api.server import BackgroundServer
from lamina.api.services.kinesis import register_kinesis
from lamina.api.services.kinesis_wire import PUT_RECORDS
from lamina.config import Settings
from lamina.sources.streams import StreamService
from lamina.store.sqlite import SqliteStore
from tests.unit.sources.streams.conftest import FakeClock

ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/{}"


class Kinesis:
    def __init__(self, tmp: Path, **options) -> None:
        settings = Settings(interpreters={})
        self.store = SqliteStore.open(tmp / "lamina.db")
        self.app = EdgeApp(settings)
        self.service: StreamService = register_kinesis(self.app, settings, self.store.database, **options)
        self.server = BackgroundServer(self.app).start()

    def client(self, validate: bool = True):
        """`validate=False` lets boto3 send what its own checks would refuse, to see our answer."""
        return boto3.client(
            "kinesis",
            endpoint_url=self.server.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 0}, parameter_validation=validate),
        )

    def close(self) -> None:
        self.server.stop()
        self.store.close()


@pytest.fixture(scope="module")
def lamina(tmp_path_factory) -> Iterator[Kinesis]:
    k = Kinesis(tmp_path_factory.mktemp("kinesis"))
    yield k
    k.close()


@pytest.fixture(scope="module")
def kinesis(lamina):
    return lamina.client()


@pytest.fixture
def name(request) -> str:
    return "".join(c if c.isalnum() else "-" for c in request.node.name)[:100]


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    e = exc.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]


def consume(kinesis, stream: str) -> dict[str, list[dict]]:
    """A KCL-style loop: list the shards, read each from the trim horizon to the tip."""
    out: dict[str, list[dict]] = {}
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    for shard in shards:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        records = out.setdefault(shard["ShardId"], [])
        while True:
            page = kinesis.get_records(ShardIterator=it, Limit=100)
            records += page["Records"]
            it = page["NextShardIterator"]
            if not page["Records"] and page["MillisBehindLatest"] == 0:
                break
    return out


def test_create_put_and_read_every_shard_to_the_end(kinesis, name):
    kinesis.create_stream(StreamName=name, ShardCount=3)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 5})
    sent = {}
    for batch in range(4):
        records = [{"Data": f"{batch}-{i}".encode(), "PartitionKey": f"key-{i}"} for i in range(250)]
        response = kinesis.put_records(StreamName=name, Records=records)
        assert response["FailedRecordCount"] == 0
        for record, result in zip(records, response["Records"], strict=True):
            sent[result["SequenceNumber"]] = (result["ShardId"], record["Data"])
    one = kinesis.put_record(StreamARN=ARN.format(name), Data=b"solo", PartitionKey="solo")
    sent[one["SequenceNumber"]] = (one["ShardId"], b"solo")

    got = consume(kinesis, name)
    assert sum(map(len, got.values())) == len(sent) == 1001
    for shard, records in got.items():
        seqs = [r["SequenceNumber"] for r in records]
        assert seqs == sorted(seqs, key=int)
        for r in records:
            assert sent[r["SequenceNumber"]] == (shard, r["Data"])
            assert r["ApproximateArrivalTimestamp"].year >= 2024


def test_hash_ranges_and_routing_match_independent_md5_arithmetic(kinesis, name):
    kinesis.create_stream(StreamName=name, ShardCount=5)
    shards = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    width = 2**128 // 5
    expected = [(i * width, 2**128 - 1 if i == 4 else (i + 1) * width - 1) for i in range(5)]
    ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in shards]
    assert ranges == expected
    keys = [f"user-{i}" for i in range(300)]
    results = kinesis.put_records(StreamName=name, Records=[{"Data": b"d", "PartitionKey": k} for k in keys])
    for key, result in zip(keys, results["Records"], strict=True):
        h = int(hashlib.md5(key.encode()).hexdigest(), 16)
        assert result["ShardId"] == f"shardId-{h // width if h // width < 5 else 4:012d}"
    explicit = kinesis.put_record(StreamName=name, Data=b"d", PartitionKey="x", ExplicitHashKey=str(3 * width))
    assert explicit["ShardId"] == "shardId-000000000003"


def test_put_records_wire_edges_round_trip(lamina, kinesis, name):
    """PutRecords' fast wire path (kinesis_wire) with what it must get right, and what it leaves
    to the generic path: unicode keys, explicit hash keys, empty data, a StreamARN, bad input."""
    assert lamina.app.services["kinesis"].fast_paths["PutRecords"] is PUT_RECORDS
    kinesis.create_stream(StreamName=name, ShardCount=2)
    half = 2**127
    records = [
        {"Data": b"", "PartitionKey": "empty"},
        {"Data": bytes(range(256)), "PartitionKey": "cl\u00e9-\U0001f600" * 32},  # 256 UTF-16 units
        {"Data": b"low", "PartitionKey": "x", "ExplicitHashKey": "0"},
        {"Data": b"high", "PartitionKey": "x", "ExplicitHashKey": str(half)},
        {"Data": b"k" * 1000, "PartitionKey": "k" * 256},
    ]
    response = kinesis.put_records(StreamName=name, Records=records)
    assert response["FailedRecordCount"] == 0 and response["EncryptionType"] == "NONE"
    assert [r["ShardId"] for r in response["Records"][2:4]] == ["shardId-000000000000", "shardId-000000000001"]
    by_arn = kinesis.put_records(StreamARN=ARN.format(name), Records=[{"Data": b"arn", "PartitionKey": "a"}])
    got = {r["SequenceNumber"]: (r["Data"], r["PartitionKey"]) for rs in consume(kinesis, name).values() for r in rs}
    sent = {
        r["SequenceNumber"]: (d["Data"], d["PartitionKey"]) for r, d in zip(response["Records"], records, strict=True)
    }
    sent[by_arn["Records"][0]["SequenceNumber"]] = (b"arn", "a")
    assert got == sent

    unchecked = lamina.client(validate=False)
    with pytest.raises(ClientError) as exc:
        unchecked.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": ""}])
    assert error(exc) == (
        "ValidationException",
        400,
        "1 validation error detected: Value '' at 'records.1.member.partitionKey' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    )
    with pytest.raises(ClientError) as exc:
        unchecked.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": "01"}])
    assert error(exc)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as exc:
        unchecked.put_records(StreamName=name, Records=[])
    assert error(exc)[:2] == ("ValidationException", 400)


def test_per_shard_order_under_concurrent_producers(lamina, kinesis, name):
    kinesis.create_stream(StreamName=name, ShardCount=2)
    acked: list[tuple[str, str, bytes]] = []
    lock = threading.Lock()

    def producer(p: int) -> None:
        client = lamina.client()
        for batch in range(10):
            records = [{"Data": f"{p}:{batch}:{i}".encode(), "PartitionKey": f"p{p}"} for i in range(50)]
            response = client.put_records(StreamName=name, Records=records)
            with lock:
                acked.extend(
                    (r["ShardId"], r["SequenceNumber"], d["Data"])
                    for r, d in zip(response["Records"], records, strict=True)
                )

    threads = [threading.Thread(target=producer, args=(p,)) for p in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = consume(kinesis, name)
    for shard, records in got.items():
        assert [(r["SequenceNumber"], r["Data"]) for r in records] == sorted(
            ((s, d) for sh, s, d in acked if sh == shard), key=lambda x: int(x[0])
        )
        for p in range(6):  # each producer's records (one key each) come back in the order put
            mine = [tuple(map(int, r["Data"].split(b":")[1:])) for r in records if r["Data"].startswith(b"%d:" % p)]
            assert mine == sorted(mine)
    assert sum(map(len, got.values())) == len(acked) == 3000


def test_put_records_limits_and_per_record_failures(lamina, kinesis, name, monkeypatch):
    kinesis.create_stream(StreamName=name, ShardCount=1)
    big = {"Data": b"x" * (1024 * 1024 + 1), "PartitionKey": "k"}
    with pytest.raises(ClientError) as exc:  # AWS rejects the whole call, not the one record
        kinesis.put_records(StreamName=name, Records=[{"Data": b"ok", "PartitionKey": "k"}, big])
    assert error(exc) == (
        "ValidationException",
        400,
        "1 validation error detected: Value at 'records.2.member.data' failed to satisfy constraint: "
        "Member must have length less than or equal to 1048576",
    )
    with pytest.raises(ClientError) as exc:
        kinesis.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}] * 501)
    assert error(exc)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as exc:
        kinesis.put_records(StreamName=name, Records=[{"Data": b"x" * 1024 * 1024, "PartitionKey": "k"}] * 5)
    assert error(exc)[:2] == ("InvalidArgumentException", 400)

    def broken(shard_ids, records):
        future: Future = Future()
        future.set_exception(OSError("disk full"))
        return future

    monkeypatch.setattr(lamina.service.store, "append_nowait", broken)
    response = kinesis.put_records(StreamName=name, Records=[{"Data": b"a", "PartitionKey": "k"}] * 2)
    assert response["FailedRecordCount"] == 2
    assert response["Records"] == [{"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."}] * 2


def test_errors_have_kinesis_codes_and_statuses(lamina, kinesis, name):
    unchecked = lamina.client(validate=False)
    with pytest.raises(ClientError) as exc:
        kinesis.describe_stream(StreamName="no-such-stream")
    assert error(exc) == (
        "ResourceNotFoundException",
        400,
        "Stream no-such-stream under account 000000000000 not found.",
    )
    kinesis.create_stream(StreamName=name, ShardCount=1)
    with pytest.raises(ClientError) as exc:
        kinesis.create_stream(StreamName=name, ShardCount=1)
    assert error(exc) == ("ResourceInUseException", 400, f"Stream {name} under account 000000000000 already exists.")
    with pytest.raises(ClientError) as exc:
        unchecked.create_stream(StreamName="zero", ShardCount=0)
    assert error(exc)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as exc:
        kinesis.get_shard_iterator(
            StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber="1",
        )  # fmt: skip
    assert error(exc)[:2] == ("InvalidArgumentException", 400)
    with pytest.raises(ClientError) as exc:
        kinesis.get_records(ShardIterator="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==")
    assert error(exc) == ("InvalidArgumentException", 400, "Invalid ShardIterator.")
    with pytest.raises(ClientError) as exc:
        unchecked.put_record(StreamName=name, Data=b"x", PartitionKey="k" * 257)
    assert error(exc)[:2] == ("ValidationException", 400)


def test_describe_summary_list_streams_shards_tags_and_retention(kinesis, name):
    kinesis.create_stream(StreamName=name, ShardCount=3, Tags={"team": "data"})
    summary = kinesis.describe_stream_summary(StreamARN=ARN.format(name))["StreamDescriptionSummary"]
    assert summary["StreamARN"] == ARN.format(name)
    assert (summary["StreamStatus"], summary["OpenShardCount"], summary["RetentionPeriodHours"]) == ("ACTIVE", 3, 24)
    assert summary["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    names = []
    response = kinesis.list_streams(Limit=1)
    while True:
        names += response["StreamNames"]
        if not response["HasMoreStreams"]:
            break
        response = kinesis.list_streams(NextToken=response["NextToken"], Limit=1)
    assert name in names and names == sorted(names)
    page = kinesis.list_shards(StreamName=name, MaxResults=2)
    assert [s["ShardId"] for s in page["Shards"]] == ["shardId-000000000000", "shardId-000000000001"]
    rest = kinesis.list_shards(NextToken=page["NextToken"])
    assert [s["ShardId"] for s in rest["Shards"]] == ["shardId-000000000002"] and "NextToken" not in rest
    after = kinesis.list_shards(
        StreamName=name, ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000000"}
    )
    assert len(after["Shards"]) == 2
    kinesis.add_tags_to_stream(StreamName=name, Tags={"env": "test"})
    assert kinesis.list_tags_for_stream(StreamName=name)["Tags"] == [
        {"Key": "env", "Value": "test"},
        {"Key": "team", "Value": "data"},
    ]
    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    with pytest.raises(ClientError) as exc:
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=72)
    assert error(exc)[:2] == ("InvalidArgumentException", 400)
    assert kinesis.describe_stream(StreamName=name)["StreamDescription"]["RetentionPeriodHours"] == 48
    on_demand = f"{name}-od"
    kinesis.create_stream(StreamName=on_demand, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert kinesis.describe_stream_summary(StreamName=on_demand)["StreamDescriptionSummary"]["OpenShardCount"] == 4
    kinesis.delete_stream(StreamName=on_demand)
    with pytest.raises(ClientError):
        kinesis.describe_stream_summary(StreamName=on_demand)


def test_iterator_types_over_http(kinesis, name):
    kinesis.create_stream(StreamName=name, ShardCount=1)
    shard = "shardId-000000000000"
    seqs = [kinesis.put_record(StreamName=name, Data=b"%d" % i, PartitionKey="k")["SequenceNumber"] for i in range(3)]
    latest = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    seqs.append(kinesis.put_record(StreamName=name, Data=b"3", PartitionKey="k")["SequenceNumber"])

    def read(**kw):
        it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, **kw)["ShardIterator"]
        return [r["SequenceNumber"] for r in kinesis.get_records(ShardIterator=it)["Records"]]

    assert [r["SequenceNumber"] for r in kinesis.get_records(ShardIterator=latest)["Records"]] == seqs[3:]
    assert read(ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[1]) == seqs[1:]
    assert read(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[1]) == seqs[2:]
    first = kinesis.get_records(
        ShardIterator=kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
    )["Records"][0]
    assert read(ShardIteratorType="AT_TIMESTAMP", Timestamp=first["ApproximateArrivalTimestamp"]) == seqs


@pytest.fixture
def short(tmp_path) -> Iterator[tuple[Kinesis, FakeClock]]:
    clock = FakeClock()
    k = Kinesis(tmp_path, clock=clock, iterator_ttl_s=1.0, retention_hour_s=1.0)
    yield k, clock
    k.close()


def test_iterators_expire_and_retention_trims(short):
    lamina, clock = short
    kinesis = lamina.client()
    kinesis.create_stream(StreamName="s", ShardCount=1)
    kinesis.put_record(StreamName="s", Data=b"old", PartitionKey="k")
    it = kinesis.get_shard_iterator(StreamName="s", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    clock.advance(1.5)
    with pytest.raises(ClientError) as exc:
        kinesis.get_records(ShardIterator=it)
    code, status, message = error(exc)
    assert (code, status) == ("ExpiredIteratorException", 400)
    assert "tolerated delay of 1000 milliseconds" in message
    clock.advance(20)  # "old" is 21.5 retention hours old
    kinesis.put_record(StreamName="s", Data=b"new", PartitionKey="k")
    clock.advance(3)  # "old" is past 24 h: not returned, then trimmed
    records = consume(kinesis, "s")["shardId-000000000000"]
    assert [r["Data"] for r in records] == [b"new"]
    assert lamina.service.trim_expired() == 1


def test_shard_filters_by_time_and_closed_shards_leave_with_retention(short):
    lamina, clock = short  # a retention hour lasts a second: 24 h is 24 s
    kinesis = lamina.client()

    def listed(**shard_filter) -> list[str]:
        args = {"ShardFilter": shard_filter} if shard_filter else {}
        return [s["ShardId"][-1] for s in kinesis.list_shards(StreamName="s", **args)["Shards"]]

    t0 = clock.now
    kinesis.create_stream(StreamName="s", ShardCount=2)
    clock.advance(5)
    t1 = clock.now
    kinesis.update_shard_count(StreamName="s", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    clock.advance(5)
    kinesis.update_shard_count(StreamName="s", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    clock.advance(1)
    at = datetime.fromtimestamp(t0 + 2, UTC)
    assert listed(Type="AT_TIMESTAMP", Timestamp=at) == ["0", "1"]
    assert listed(Type="AT_TIMESTAMP", Timestamp=t1 + 2) == ["2", "3", "4", "5"]
    assert listed(Type="FROM_TIMESTAMP", Timestamp=t1 + 2) == ["2", "3", "4", "5", "6", "7"]
    assert listed(Type="AT_TRIM_HORIZON") == ["0", "1"]
    assert listed(Type="FROM_TRIM_HORIZON") == ["0", "1", "2", "3", "4", "5", "6", "7"]
    with pytest.raises(ClientError) as exc:
        lamina.client(validate=False).list_shards(StreamName="s", ShardFilter={"Type": "FROM_TIMESTAMP"})
    assert error(exc)[:2] == ("InvalidArgumentException", 400)

    clock.advance(t1 + 24.5 - clock.now)  # shards 0 and 1 closed more than 24 (retention) hours ago
    assert listed() == ["2", "3", "4", "5", "6", "7"]
    assert listed(Type="AT_TRIM_HORIZON") == ["2", "3", "4", "5"]
    described = kinesis.describe_stream(StreamName="s")["StreamDescription"]["Shards"]
    assert [s["ShardId"][-1] for s in described] == ["2", "3", "4", "5", "6", "7"]


def test_the_aws_cli_talks_to_it(lamina, name):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    aws = [str(Path(sys.executable).with_name("aws")), "--endpoint-url", lamina.server.url, "kinesis"]
    subprocess.run(
        [*aws, "create-stream", "--stream-name", name, "--shard-count", "1"], check=True, env=env, timeout=60
    )
    out = subprocess.run(
        [*aws, "put-record", "--stream-name", name, "--partition-key", "k", "--data", "hello"],
        check=True, env=env, timeout=60, capture_output=True, text=True,
    )  # fmt: skip
    assert '"ShardId": "shardId-000000000000"' in out.stdout


def test_quota_tagged_stream_fails_records_one_by_one(kinesis, name):
    kinesis.create_stream(StreamName=name, ShardCount=1, Tags={"lamina:quotas": "on"})
    records = [{"Data": b"x" * 512 * 1024, "PartitionKey": "k"}] * 3  # 1.5 MiB for a 1 MiB/s shard
    response = kinesis.put_records(StreamName=name, Records=records)
    assert response["FailedRecordCount"] == 1
    assert [r.get("ErrorCode") for r in response["Records"]] == [None, None, "ProvisionedThroughputExceededException"]
    assert response["Records"][2]["ErrorMessage"] == (
        f"Rate exceeded for shard shardId-000000000000 in stream {name} under account 000000000000."
    )
    with pytest.raises(ClientError) as exc:
        kinesis.put_record(StreamName=name, Data=b"x" * 512 * 1024, PartitionKey="k")
    assert error(exc)[:2] == ("ProvisionedThroughputExceededException", 400)


def consume_parents_first(kinesis, stream: str) -> list[dict]:
    """A KCL-style reader across a reshard: a shard is read only once its parents were read to
    their end (GetRecords without NextShardIterator, with ChildShards)."""
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=stream)["Shards"]}
    done: set[str] = set()
    out: list[dict] = []
    while len(done) < len(shards):
        ready = [
            s
            for s in shards.values()
            if s["ShardId"] not in done
            and all(p in done or p not in shards for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)
        ]
        assert ready
        for shard in ready:
            it = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while it is not None:
                page = kinesis.get_records(ShardIterator=it, Limit=50)
                out += page["Records"]
                it = page.get("NextShardIterator")
                if it is None:  # a closed shard's end: its children are named
                    assert "EndingSequenceNumber" in shard["SequenceNumberRange"]
                    children = {c["ShardId"] for c in page["ChildShards"]}
                    assert children == {
                        s["ShardId"]
                        for s in shards.values()
                        if shard["ShardId"] in (s.get("ParentShardId"), s.get("AdjacentParentShardId"))
                    }
                    for c in page["ChildShards"]:
                        assert shard["ShardId"] in c["ParentShards"]
                        assert c["HashKeyRange"] == shards[c["ShardId"]]["HashKeyRange"]
                elif not page["Records"] and page["MillisBehindLatest"] == 0:
                    assert "EndingSequenceNumber" not in shard["SequenceNumberRange"]
                    break
            done.add(shard["ShardId"])
    return out


def test_update_shard_count_and_a_parent_first_reader_sees_every_record_once(lamina, kinesis, name):
    kinesis.create_stream(StreamName=name, ShardCount=2)
    acked: dict[str, list[bytes]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    def producer(p: int) -> None:
        client = lamina.client()
        n = 0
        try:
            while not stop.is_set() or n < 200:
                records = [{"Data": f"{p}:{n + i}".encode(), "PartitionKey": f"p{p}-{(n + i) % 5}"} for i in range(20)]
                response = client.put_records(StreamName=name, Records=records)
                assert response["FailedRecordCount"] == 0
                with lock:
                    for r in records:
                        acked.setdefault(r["PartitionKey"], []).append(r["Data"])
                n += 20
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=producer, args=(p,)) for p in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    up = kinesis.update_shard_count(StreamName=name, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    assert (up["StreamName"], up["CurrentShardCount"], up["TargetShardCount"]) == (name, 2, 3)
    assert up["StreamARN"] == ARN.format(name)
    time.sleep(0.2)
    kinesis.update_shard_count(StreamARN=ARN.format(name), TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    assert not failures

    shards = kinesis.list_shards(StreamName=name)["Shards"]
    assert [s["ShardId"] for s in shards] == [f"shardId-{i:012d}" for i in range(len(shards))]
    opened = [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    width = 2**128 // 2
    assert [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in opened] == [
        (0, width - 1),
        (width, 2**128 - 1),
    ]
    assert [s["ShardId"] for s in shards[2:5]] == [
        "shardId-000000000002",
        "shardId-000000000003",
        "shardId-000000000004",
    ]
    assert shards[3]["ParentShardId"] == "shardId-000000000000"
    assert shards[3]["AdjacentParentShardId"] == "shardId-000000000001"  # the middle third straddles both
    latest = kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert [s["ShardId"] for s in latest] == [s["ShardId"] for s in opened]
    horizon = kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AT_TRIM_HORIZON"})["Shards"]
    assert [s["ShardId"] for s in horizon] == ["shardId-000000000000", "shardId-000000000001"]
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 2 and summary["StreamStatus"] == "ACTIVE"

    got = consume_parents_first(kinesis, name)
    assert len(got) == sum(map(len, acked.values()))
    assert len({r["SequenceNumber"] for r in got}) == len(got)
    per_key: dict[str, list[bytes]] = {}
    for r in got:
        per_key.setdefault(r["PartitionKey"], []).append(r["Data"])
    assert per_key == acked


def test_update_shard_count_errors(kinesis, name):
    kinesis.create_stream(StreamName=name, ShardCount=2)
    with pytest.raises(ClientError) as exc:
        kinesis.update_shard_count(StreamName=name, TargetShardCount=5, ScalingType="UNIFORM_SCALING")
    code, status, message = error(exc)
    assert (code, status) == ("LimitExceededException", 400) and "more than double" in message
    with pytest.raises(ClientError) as exc:
        kinesis.update_shard_count(StreamName="nope", TargetShardCount=1, ScalingType="UNIFORM_SCALING")
    assert error(exc)[0] == "ResourceNotFoundException"
