"""The Logs API at the edge, in-process over the memory store: wire shapes and error codes."""

from __future__ import annotations

import asyncio
import time

import pytest

from lamina.api.app import EdgeApp
from lamina.api.services.logs import LogsApi, group_name, identifier_name
from lamina.config import Settings
from lamina.errors import LogsInvalidParameter
from lamina.logs.service import LogsService
from lamina.store.memory import MemoryStore

from .botocore_wire import http_request, parse

ARN = "arn:aws:logs:us-east-1:000000000000:log-group:/app/x"


@pytest.fixture
def call():
    app = EdgeApp(Settings(interpreters={}))
    app.register_service("logs", LogsApi(LogsService(MemoryStore(), "us-east-1", "000000000000")).handlers())

    def invoke(operation: str, **params):
        response = asyncio.run(app.handle(http_request("logs", operation, params)))
        return response.status, parse("logs", operation, response)

    return invoke


def test_identifiers_name_or_arn():
    assert identifier_name(ARN) == "/app/x" and identifier_name(f"{ARN}:*") == "/app/x"
    assert identifier_name("/app/x") == "/app/x"
    assert group_name({"logGroupIdentifier": ARN}) == "/app/x"
    with pytest.raises(LogsInvalidParameter):
        group_name({"logGroupName": "/app/x", "logGroupIdentifier": ARN})
    with pytest.raises(LogsInvalidParameter):
        group_name({})
    with pytest.raises(LogsInvalidParameter):
        identifier_name("arn:aws:logs:us-east-1:0:log-group:")


def test_wire_shapes_and_errors(call):
    assert call("CreateLogGroup", logGroupName="/app/x")[0] == 200
    status, body = call("CreateLogGroup", logGroupName="/app/x")
    assert (status, body["Error"]["Code"]) == (400, "ResourceAlreadyExistsException")
    status, body = call("CreateLogStream", logGroupName="/app/none", logStreamName="s")
    assert (status, body["Error"]["Code"], body["Error"]["Message"]) == (
        400,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
    call("CreateLogStream", logGroupName="/app/x", logStreamName="s")
    now = int(time.time() * 1000)
    _, put = call(
        "PutLogEvents",
        logGroupName="/app/x",
        logStreamName="s",
        logEvents=[{"timestamp": now, "message": "hi"}, {"timestamp": now + 3 * 3600_000, "message": "later"}],
    )
    assert put["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1} and put["nextSequenceToken"]
    _, got = call("GetLogEvents", logGroupIdentifier=ARN, logStreamName="s", startFromHead=True)
    assert [(e["message"], e["timestamp"]) for e in got["events"]] == [("hi", now)]
    assert got["events"][0]["ingestionTime"] >= now
    _, streams = call("DescribeLogStreams", logGroupName="/app/x")
    (stream,) = streams["logStreams"]
    assert stream["arn"] == f"{ARN}:log-stream:s" and stream["storedBytes"] == 2
    assert stream["firstEventTimestamp"] == stream["lastEventTimestamp"] == now
    _, groups = call("DescribeLogGroups", logGroupNamePrefix="/app/")
    assert groups["logGroups"][0]["logGroupArn"] == ARN and "retentionInDays" not in groups["logGroups"][0]
    call("PutRetentionPolicy", logGroupName="/app/x", retentionInDays=14)
    _, groups = call("DescribeLogGroups", logGroupNamePrefix="/app/")
    assert groups["logGroups"][0]["retentionInDays"] == 14
    _, found = call("FilterLogEvents", logGroupName="/app/x", filterPattern="hi")
    assert [(e["logStreamName"], e["message"]) for e in found["events"]] == [("s", "hi")] and "nextToken" not in found
    status, body = call("FilterLogEvents", logGroupName="/app/x", filterPattern="{ bad")
    assert (status, body["Error"]["Code"], body["Error"]["Message"]) == (
        400,
        "InvalidParameterException",
        "Invalid filter pattern",
    )
