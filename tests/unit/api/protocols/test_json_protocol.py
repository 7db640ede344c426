"""awsJson 1.0/1.1 against botocore's serializer and parser (Kinesis, SQS)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from lamina.api.protocols.json_ import JsonCodec
from lamina.errors import LaminaError, SerializationError

from ..botocore_wire import http_request, model, parse


class StreamNotFound(LaminaError):
    code = "ResourceNotFoundException"
    status = 400
    sender_fault = True


class QueueMissing(LaminaError):
    code = "QueueDoesNotExist"
    query_code = "AWS.SimpleQueueService.NonExistentQueue"
    status = 400
    sender_fault = True


def test_put_record_parses_blobs():
    codec = JsonCodec(model("kinesis"))
    params = {"StreamName": "s", "Data": b"\x00\x01binary", "PartitionKey": "p", "ExplicitHashKey": "1"}
    request = http_request("kinesis", "PutRecord", params)
    assert request.headers["content-type"] == "application/x-amz-json-1.1"
    assert codec.parse_request(model("kinesis").operation_model("PutRecord"), request, {}) == params


def test_get_records_output_blobs_and_timestamps():
    codec = JsonCodec(model("kinesis"))
    when = datetime(2026, 1, 1, 0, 0, 1, 250000, tzinfo=UTC)
    output = {
        "Records": [
            {"SequenceNumber": "1", "ApproximateArrivalTimestamp": when, "Data": b"\xffraw", "PartitionKey": "p"}
        ],
        "NextShardIterator": "it",
        "MillisBehindLatest": 0,
    }
    response = codec.serialize_response(model("kinesis").operation_model("GetRecords"), output)
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert json.loads(response.body)["Records"][0]["ApproximateArrivalTimestamp"] == 1767225601.25
    parsed = parse("kinesis", "GetRecords", response)
    parsed.pop("ResponseMetadata")
    assert parsed == output


def test_errors_carry_type_and_message():
    codec = JsonCodec(model("kinesis"))
    response = codec.serialize_error(StreamNotFound("Stream s under account 000000000000 not found."))
    assert json.loads(response.body) == {
        "__type": "ResourceNotFoundException",
        "message": "Stream s under account 000000000000 not found.",
    }
    parsed = parse("kinesis", "PutRecord", response)
    assert parsed["Error"] == {
        "Code": "ResourceNotFoundException",
        "Message": "Stream s under account 000000000000 not found.",
    }


def test_query_compatible_errors_give_the_query_code():
    codec = JsonCodec(model("sqs"))
    response = codec.serialize_error(QueueMissing("The specified queue does not exist."))
    assert response.headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    parsed = parse("sqs", "GetQueueUrl", response)
    assert parsed["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert parsed["Error"]["Message"] == "The specified queue does not exist."


def test_bad_bodies_are_serialization_errors():
    codec = JsonCodec(model("kinesis"))
    operation = model("kinesis").operation_model("PutRecord")
    request = http_request("kinesis", "PutRecord", {"StreamName": "s", "Data": b"x", "PartitionKey": "p"})
    request.body = b"{nope"
    with pytest.raises(SerializationError):
        codec.parse_request(operation, request, {})
    request.body = b'{"StreamName": 5}'
    with pytest.raises(SerializationError, match="streamName"):
        codec.parse_request(operation, request, {})


# -- malformed input is the protocol's 400, never a 500 -------------------------------------------


def _put_records(body: bytes) -> dict:
    codec = JsonCodec(model("kinesis"))
    request = http_request("kinesis", "PutRecord", {"StreamName": "s", "Data": b"x", "PartitionKey": "p"})
    request.body = body
    return codec.parse_request(model("kinesis").operation_model("PutRecords"), request, {})


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"StreamName":"s","Records":' + b"[" * 10_000 + b"]" * 10_000 + b"}"],
    ids=["open-brackets", "nested-records"],
)
def test_json_nested_past_the_stack_is_a_serialization_error(body):
    with pytest.raises(SerializationError, match=r"^Could not parse request body: JSON nested too deeply$"):
        _put_records(body)


def test_recursive_shape_nested_past_the_stack_is_a_serialization_error():
    # json.loads copes with ~990 levels; DynamoDB's recursive AttributeValue decoder does not.
    codec = JsonCodec(model("dynamodb"))
    inner = '{"S":"x"}'
    for _ in range(900):
        inner = '{"L":[' + inner + "]}"
    request = http_request("dynamodb", "PutItem", {"TableName": "t", "Item": {}})
    request.body = ('{"TableName":"t","Item":{"a":' + inner + "}}").encode()
    with pytest.raises(SerializationError, match="nested too deeply"):
        codec.parse_request(model("dynamodb").operation_model("PutItem"), request, {})


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (rb'{"StreamName":"s","Records":[{"Data":"AA==","PartitionKey":"\ud800"}]}', "records.1.member.partitionKey"),
        (rb'{"StreamName":"\udfff","Records":[]}', "streamName"),
        (rb'{"StreamName":"s","Records":[{"Data":"AA==","PartitionKey":"a\ud83dz"}]}', "records.1.member.partitionKey"),
    ],
)
def test_unpaired_surrogate_is_a_serialization_error(body, where):
    with pytest.raises(SerializationError, match=rf"at '{re.escape(where)}' as string: unpaired UTF-16 surrogate"):
        _put_records(body)


def test_surrogate_pairs_are_text():
    params = _put_records(rb'{"StreamName":"s","Records":[{"Data":"AA==","PartitionKey":"\ud83d\ude00"}]}')
    assert params["Records"][0]["PartitionKey"] == "\U0001f600"


def test_unpaired_surrogate_map_key_is_a_serialization_error():
    codec = JsonCodec(model("kinesis"))
    request = http_request("kinesis", "AddTagsToStream", {"StreamName": "s", "Tags": {"k": "v"}})
    request.body = rb'{"StreamName":"s","Tags":{"\ud800":"v"}}'
    with pytest.raises(SerializationError, match=r"at 'tags' as string: unpaired UTF-16 surrogate"):
        codec.parse_request(model("kinesis").operation_model("AddTagsToStream"), request, {})
