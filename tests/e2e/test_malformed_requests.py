"""Malformed bodies sent as raw HTTP to a real server get the protocol's 400, never a 500:
JSON nested past the interpreter's stack, unpaired UTF-16 surrogates, null list members."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

KINESIS = {"X-Amz-Target": "Kinesis_20131202.{}", "Content-Type": "application/x-amz-json-1.1"}
FUNCTIONS = "/2015-03-31/functions"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def post(server, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, dict]:
    """(status, error code, JSON body); the code from `__type` (json) or `x-amzn-ErrorType` (rest-json)."""
    url = urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        document = json.loads(response.read() or b"{}")
        code = response.getheader("x-amzn-ErrorType") or document.get("__type", "")
        return response.status, code, document
    finally:
        conn.close()


def kinesis(server, operation: str, body: bytes) -> tuple[int, str, dict]:
    return post(server, "/", body, {**KINESIS, "X-Amz-Target": KINESIS["X-Amz-Target"].format(operation)})


@pytest.fixture(scope="module")
def stream(server) -> str:
    status, _, _ = kinesis(server, "CreateStream", b'{"StreamName":"malformed","ShardCount":1}')
    assert status == 200
    return "malformed"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"StreamName":"malformed","Records":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b"[" * (2 << 20),  # past the edge's offload size: parsed on a worker thread
    ],
    ids=["brackets", "nested-records", "offloaded"],
)
def test_kinesis_deep_json_is_a_serialization_exception(server, stream, body):
    status, code, document = kinesis(server, "PutRecords", body)
    assert (status, code) == (400, "SerializationException")
    assert document["message"] == "Could not parse request body: JSON nested too deeply"


def test_kinesis_unpaired_surrogate_is_a_serialization_exception(server, stream):
    body = rb'{"StreamName":"malformed","Records":[{"Data":"AA==","PartitionKey":"\ud800"}]}'
    status, code, document = kinesis(server, "PutRecords", body)
    assert (status, code) == (400, "SerializationException")
    assert "'records.1.member.partitionKey'" in document["message"]
    assert "unpaired UTF-16 surrogate" in document["message"]


@pytest.mark.parametrize(
    ("records", "where"),
    [(b"[null]", "records.1.member"), (b'[{"Data":"AA==","PartitionKey":"k"},null]', "records.2.member")],
)
def test_kinesis_null_record_is_a_validation_exception(server, stream, records, where):
    status, code, document = kinesis(server, "PutRecords", b'{"StreamName":"malformed","Records":' + records + b"}")
    assert (status, code) == (400, "ValidationException")
    assert document["message"] == (
        f"1 validation error detected: Value null at '{where}' failed to satisfy constraint: Member must not be null"
    )


def test_lambda_deep_json_is_invalid_request_content(server):
    body = b'{"FunctionName":"deep","Code":{"ZipFile":' + b"[" * 10_000 + b"]" * 10_000 + b"}}"
    status, code, document = post(server, FUNCTIONS, body, {"Content-Type": "application/json"})
    assert (status, code) == (400, "InvalidRequestContentException")
    assert document["message"] == "Could not parse request body into json: JSON nested too deeply"


@pytest.mark.parametrize("member", ["FunctionName", "Description"])
def test_lambda_unpaired_surrogate_is_invalid_request_content(server, member):
    fields = {"FunctionName": "surrogate", "Role": ROLE, "Runtime": "python3.11", "Handler": "app.handler",
              "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}  # fmt: skip
    fields[member] = "\udc00"
    body = json.dumps(fields).encode()  # ensure_ascii writes the lone surrogate as \udc00
    status, code, document = post(server, FUNCTIONS, body, {"Content-Type": "application/json"})
    assert (status, code) == (400, "InvalidRequestContentException")
    assert "unpaired UTF-16 surrogate" in document["message"]
