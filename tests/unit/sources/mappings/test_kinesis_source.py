"""The Kinesis source: the record JSON byte for byte as json.dumps of AWS's record, positions,
starting positions, closed shards, KinesisBatchInfo."""

from __future__ import annotations

import base64
import json

import pytest

from lamina.model.mappings import StartingPosition
from lamina.sources.mappings.kinesis import KinesisSource, stream_name_of
from lamina.sources.mappings.source import SourceGone
from lamina.sources.streams import Entry, StreamService
from lamina.sources.streams.memory import MemoryStreamStore

SHARD = "shardId-000000000000"
ROLE = "arn:aws:iam::000000000000:role/r"


@pytest.fixture
def source() -> KinesisSource:
    streams = StreamService(MemoryStreamStore())
    streams.create_stream("s", 1)
    return KinesisSource(streams, streams.arn("s"))


@pytest.mark.parametrize("key", ["k", 'with "quotes" and \\', "ünïcødé", "tab\there", "x" * 256])
def test_the_record_json_is_json_dumps_of_aws_record(source, key):
    source.streams.put_records("s", [Entry(b"\x00\xffdata", key)])
    (record,) = source.read(SHARD, source.horizon(SHARD), 10, 1 << 20).records
    expected = {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": key, "sequenceNumber": record.position,
                    "data": base64.b64encode(b"\x00\xffdata").decode(),
                    "approximateArrivalTimestamp": record.arrival_ms / 1000},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{SHARD}:{record.position}",
        "eventName": "aws:kinesis:record", "invokeIdentityArn": ROLE, "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s",
    }  # fmt: skip
    (encoded,) = source.event_records(SHARD, [record], ROLE)
    assert encoded == json.dumps(expected, separators=(",", ":")).encode()
    assert json.loads(encoded) == expected


def test_a_batch_of_plain_and_escaped_keys_is_json_dumps_of_each_record(source):
    """One batch mixes keys that need JSON escapes with plain ones, and arrival times."""
    keys = ["plain", 'quo"te', "plain2", "ünï", "back\\slash", "%s %r 100%"]
    for key in keys:
        source.streams.put_records("s", [Entry(b"%d" % len(key), key), Entry(b"", key)])
    records = source.read(SHARD, source.horizon(SHARD), 100, 1 << 20).records
    encoded = source.event_records(SHARD, records, ROLE)
    assert len(encoded) == len(records) == 12
    for record, text in zip(records, encoded, strict=True):
        event = json.loads(text)
        assert text == json.dumps(event, separators=(",", ":")).encode()
        assert event["kinesis"]["partitionKey"] == record.key
        assert base64.b64decode(event["kinesis"]["data"]) == record.raw.data
        assert event["kinesis"]["approximateArrivalTimestamp"] == record.arrival_ms / 1000
        assert event["eventID"] == f"{SHARD}:{record.position}" == f"{SHARD}:{event['kinesis']['sequenceNumber']}"


def test_positions_starting_points_and_batch_info(source):
    source.streams.put_records("s", [Entry(b"1", "k"), Entry(b"2", "k")])
    horizon = source.horizon(SHARD)
    assert source.start_position(SHARD, StartingPosition.TRIM_HORIZON, None) == horizon
    latest = source.start_position(SHARD, StartingPosition.LATEST, None)
    assert source.read(SHARD, latest, 10, 1 << 20).records == []
    records = source.read(SHARD, horizon, 10, 1 << 20).records
    assert [r.raw.data for r in records] == [b"1", b"2"] and records[0].key == "k"
    assert source.lag(SHARD, horizon)[0] == 2 and source.lag(SHARD, records[-1].position) == (0, 0)
    info = source.batch_info(SHARD, records)
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        records[0].position, records[1].position, 2)  # fmt: skip


def test_a_closed_shard_is_finished_once_read_and_lists_its_children(source):
    source.streams.put_records("s", [Entry(b"1", "k")])
    source.streams.update_shard_count("s", 2)
    shards = source.shards()
    assert [(s.id, s.parents, s.closed) for s in shards] == [
        (SHARD, (), True), ("shardId-000000000001", (SHARD,), False), ("shardId-000000000002", (SHARD,), False)]  # fmt: skip
    first = source.read(SHARD, source.horizon(SHARD), 10, 1 << 20)
    assert len(first.records) == 1 and not first.finished
    assert source.read(SHARD, first.records[0].position, 10, 1 << 20).finished


def test_a_deleted_stream_or_another_accounts_arn_is_gone(source):
    with pytest.raises(SourceGone):
        KinesisSource(source.streams, "arn:aws:kinesis:us-east-1:111111111111:stream/s").shards()
    source.streams.delete_stream("s")
    with pytest.raises(SourceGone):
        source.shards()
    assert stream_name_of("arn:aws:kinesis:us-east-1:000000000000:stream/x") == "x"
    assert stream_name_of("arn:aws:sqs:us-east-1:000000000000:q") is None
