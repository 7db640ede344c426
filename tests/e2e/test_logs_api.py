"""The CloudWatch Logs API against a real server: boto3, the AWS CLI, and `lamina logs`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.tools import awscli_v2

from .conftest import LaminaServer, create, invoke_json
from .test_cli import LAMINA, _read_until, lamina

PRINTER = "def handler(event, context):\n    for line in event.get('lines', []):\n        print(line)\n    return 1\n"
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LaminaServer]:
    """This module's own server: retention is swept every half second."""
    env = {"LAMINA_LOG_RETENTION_SWEEP_SECONDS": "0.5"}
    instance = LaminaServer(tmp_path_factory.mktemp("lamina") / "data", env=env).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def logs(server):
    return server.client("logs")


@pytest.fixture(scope="module")
def printer(server) -> str:
    """A function that prints the lines it is given."""
    lam = server.client("lambda")
    create(lam, "printer", PRINTER)
    return "printer"


def now_ms() -> int:
    return int(time.time() * 1000)


def error_code(info: pytest.ExceptionInfo) -> tuple[str, str]:
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def wait_for(condition, timeout: float = 15.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def new_group(logs, streams: dict[str, list[tuple[int, str]]]) -> str:
    group = f"/test/{uuid.uuid4().hex[:12]}"
    logs.create_log_group(logGroupName=group)
    for stream, events in streams.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        if events:
            logs.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": t, "message": m} for t, m in events]
            )
    return group


def test_function_logs_are_read_through_the_logs_api(server, logs, printer):
    marker = f"hello-{uuid.uuid4().hex}"
    invoke_json(server.client("lambda"), printer, {"lines": [marker]})
    group = "/aws/lambda/printer"
    (described,) = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert described["logGroupName"] == group and described["storedBytes"] > 0
    assert described["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{group}:*"
    assert described["logGroupArn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    stream = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)["logStreams"][0]
    assert stream["lastEventTimestamp"] >= stream["firstEventTimestamp"] > 0 and stream["storedBytes"] > 0
    page = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True)
    messages = [e["message"] for e in page["events"]]
    assert marker in messages
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any(m.startswith("REPORT RequestId:") for m in messages)
    assert page["nextForwardToken"].startswith("f/") and page["nextBackwardToken"].startswith("b/")
    found = logs.filter_log_events(logGroupIdentifier=described["logGroupArn"], filterPattern=f'"{marker}"')
    (event,) = found["events"]
    assert event["message"] == marker and event["logStreamName"] == stream["logStreamName"]
    assert event["eventId"] and event["ingestionTime"] >= event["timestamp"] - 1000
    with pytest.raises(ClientError) as info:
        logs.get_log_events(logGroupName=group, logStreamName="nope")
    assert error_code(info) == ("ResourceNotFoundException", "The specified log stream does not exist.")
    with pytest.raises(ClientError) as info:
        logs.filter_log_events(logGroupName="/aws/lambda/nope")
    assert error_code(info) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_groups_and_streams_lifecycle_and_errors(logs):
    base = now_ms()
    group = new_group(logs, {"b": [(base - 3000, "x")], "a": [(base - 1000, "y")], "c": [(base - 2000, "z")]})
    with pytest.raises(ClientError) as info:
        logs.create_log_group(logGroupName=group)
    assert error_code(info)[0] == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as info:
        logs.create_log_stream(logGroupName=group, logStreamName="a")
    assert error_code(info)[0] == "ResourceAlreadyExistsException"
    by_time = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)
    assert [s["logStreamName"] for s in by_time["logStreams"]] == ["a", "c", "b"]
    newest_first = logs.filter_log_events(logGroupName=group, startFromHead=False)["events"]
    assert [e["message"] for e in newest_first] == ["y", "z", "x"]
    (found,) = logs.describe_log_groups(logGroupNamePattern=group[len("/test/") :])["logGroups"]
    assert set(found) == {"arn", "creationTime", "logGroupName"}  # what AWS returns for a pattern
    by_name = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="b")
    assert [s["logStreamName"] for s in by_name["logStreams"]] == ["b"]
    with pytest.raises(ClientError) as info:
        logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="a")
    assert error_code(info) == (
        "InvalidParameterException",
        "Cannot order by LastEventTime with a logStreamNamePrefix.",
    )
    with pytest.raises(ClientError) as info:
        logs.put_log_events(
            logGroupName=group, logStreamName="a", logEvents=[{"timestamp": base, "message": "b"}, {"timestamp": base - 1, "message": "a"}]
        )  # fmt: skip
    assert error_code(info)[0] == "InvalidParameterException"
    logs.delete_log_stream(logGroupName=group, logStreamName="a")
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]] == ["b", "c"]
    logs.delete_log_group(logGroupName=group)
    with pytest.raises(ClientError) as info:
        logs.delete_log_group(logGroupName=group)
    assert error_code(info) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_pagination_across_many_streams_returns_every_event_once_in_time_order(logs):
    base = now_ms() - 60_000
    streams = {f"s{n:02d}": [(base + t * 100 + n, f"s{n:02d}-{t}") for t in range(5)] for n in range(30)}
    group = new_group(logs, streams)
    events = [
        e for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 7}) for e in page["events"]
    ]  # fmt: skip
    assert sorted(e["message"] for e in events) == sorted(m for evs in streams.values() for _, m in evs)
    assert len({e["eventId"] for e in events}) == 150
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)  # interleaved
    names = [
        s["logStreamName"] for page in logs.get_paginator("describe_log_streams").paginate(
            logGroupName=group, orderBy="LastEventTime", descending=True, PaginationConfig={"PageSize": 7}
        ) for s in page["logStreams"]
    ]  # fmt: skip
    assert names == [f"s{n:02d}" for n in reversed(range(30))]
    groups = [
        g["logGroupName"] for page in logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix="/test/", PaginationConfig={"PageSize": 1}) for g in page["logGroups"]
    ]  # fmt: skip
    assert group in groups and groups == sorted(set(groups))
    # GetLogEvents: forward from the head in pages of 2, then back from the end.
    token, seen = None, []
    while True:
        args = {"nextToken": token} if token else {"startFromHead": True}
        page = logs.get_log_events(logGroupName=group, logStreamName="s07", limit=2, **args)
        if page["nextForwardToken"] == token:
            break  # AWS's end: the same token again
        seen += [e["message"] for e in page["events"]]
        token = page["nextForwardToken"]
    assert seen == [f"s07-{t}" for t in range(5)]
    back = logs.get_log_events(logGroupName=group, logStreamName="s07", nextToken=token.replace("f/", "b/"), limit=3)
    assert [e["message"] for e in back["events"]] == ["s07-1", "s07-2", "s07-3"]  # before the last one


def test_filter_patterns_of_each_kind(logs):
    base = now_ms() - 10_000
    lines = [
        "INFO started",
        "ERROR disk full",
        "WARN Internal Server Error soon",
        "ERROR NullPointerException",
        json.dumps({"level": "ERROR", "latency": 250, "user": {"id": 7}, "path": "/orders/1"}),
        json.dumps({"level": "INFO", "latency": 12, "user": None, "path": "/health"}),
        '10.0.0.1 - - [27/Nov/2026:11:00:00 +0000] "GET /orders HTTP/1.1" 404 512',
    ]
    group = new_group(logs, {"app": [(base + i, line) for i, line in enumerate(lines)]})

    def matching(pattern: str) -> list[int]:
        found = logs.filter_log_events(logGroupName=group, filterPattern=pattern)["events"]
        return [lines.index(e["message"]) for e in found]

    assert matching("") == [0, 1, 2, 3, 4, 5, 6]
    assert matching("ERROR") == [1, 3, 4]  # case-sensitive: not "Error"; a substring of the JSON too
    assert matching("ERROR disk") == [1]
    assert matching('"Internal Server Error"') == [2]
    assert matching("?WARN ?NullPointerException") == [2, 3]
    assert matching("ERROR -Null") == [1, 4]
    assert matching('{ $.level = "ERROR" }') == [4]
    assert matching("{ $.latency > 100 }") == [4]
    assert matching('{ $.level != "ERROR" && $.latency < 100 }') == [5]
    assert matching('{ $.path = "/orders/*" || $.user.id = 8 }') == [4]
    assert matching("{ $.user IS NULL }") == [5]
    assert matching("{ $.user.id NOT EXISTS }") == [5]
    assert matching("[ip, id, user, timestamp, request, status = 4*, bytes < 1000]") == [6]
    assert matching("[..., status = 200 || status = 500, bytes]") == []
    with pytest.raises(ClientError) as info:
        matching("{ $.level = ")
    assert error_code(info) == ("InvalidParameterException", "Invalid filter pattern")


def test_retention_deletes_old_events(logs):
    base = now_ms()
    old = [(base - 2 * DAY_MS + i, f"old-{i}") for i in range(3)]
    group = new_group(logs, {"s": old, "t": [(base - 1000, "recent")]})  # a batch spans 24 h at most
    before = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"]
    assert before == sum(len(m) for _, m in old) + len("recent")
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    wait_for(lambda: len(logs.filter_log_events(logGroupName=group)["events"]) == 1, timeout=10)
    (described,) = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert (described["retentionInDays"], described["storedBytes"]) == (1, len("recent"))
    rejected = logs.put_log_events(
        logGroupName=group, logStreamName="s", logEvents=[{"timestamp": base - 2 * DAY_MS, "message": "too late"}]
    )
    assert rejected["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 0}
    with pytest.raises(ClientError) as info:
        logs.put_retention_policy(logGroupName=group, retentionInDays=2)
    assert error_code(info)[0] == "InvalidParameterException"
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]


# `aws logs tail` exists only in AWS CLI v2 (the next test runs the real one). This follower sends
# exactly the requests v2's `logs tail --follow` sends (awscli/customizations/logs/tail.py): FilterLogEvents
# with logGroupName, interleaved=True, startTime (--since, 10m by default) and filterPattern; pages
# by nextToken; at the end, sleeps 5 s and asks again from the newest timestamp seen, skipping the
# event ids it already printed at that timestamp.
TAIL_V2 = """
import sys, time, boto3
client = boto3.client("logs", endpoint_url=sys.argv[1], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
kwargs = {"logGroupName": sys.argv[2], "interleaved": True, "startTime": int((time.time() - 600) * 1000)}
if len(sys.argv) > 3:
    kwargs["filterPattern"] = sys.argv[3]
seen = {}
while True:
    response = client.filter_log_events(**kwargs)
    for event in response["events"]:
        ids = seen.setdefault(event["timestamp"], set())
        if event["eventId"] not in ids:
            ids.add(event["eventId"])
            print(event["logStreamName"], event["message"], flush=True)
    if seen:
        newest = max(seen)
        seen = {newest: seen[newest]}
    if "nextToken" in response:
        kwargs["nextToken"] = response["nextToken"]
    else:
        kwargs.pop("nextToken", None)
        if seen:
            kwargs["startTime"] = max(seen)
        time.sleep(5)
"""


def test_tail_follow_prints_a_line_logged_after_it_started(server, printer):
    group, lam = "/aws/lambda/printer", server.client("lambda")
    run = uuid.uuid4().hex
    ready, wanted, other = f"TAILME-ready-{run}", f"TAILME-{run}", f"noise-{run}"
    invoke_json(lam, printer, {"lines": [ready]})  # once a follower prints this, its first poll is done
    tail = subprocess.Popen([sys.executable, "-c", TAIL_V2, server.endpoint, group], stdout=subprocess.PIPE)
    filtered = subprocess.Popen(
        [sys.executable, "-c", TAIL_V2, server.endpoint, group, "TAILME"], stdout=subprocess.PIPE
    )
    try:
        assert ready in _read_until(tail, ready) and ready in _read_until(filtered, ready)
        invoke_json(lam, printer, {"lines": [other, wanted]})  # after both followers started
        assert wanted in _read_until(tail, wanted, timeout=20)
        out = _read_until(filtered, wanted, timeout=20)
        assert wanted in out and other not in out
    finally:
        for process in (tail, filtered):
            process.kill()
            process.wait()


def test_aws_cli_v2_tail_follow(server, printer):
    """The real `aws logs tail --follow --filter-pattern` of AWS CLI v2 (`./dev test` unpacks it
    into the venv with tests/tools/awscli_v2.py)."""
    aws = str(awscli_v2.executable(Path(sys.prefix)))
    assert os.access(aws, os.X_OK), f"no AWS CLI v2 at {aws}: run `python tests/tools/awscli_v2.py {sys.prefix}`"
    version = subprocess.run([aws, "--version"], capture_output=True, text=True, timeout=60).stdout
    assert version.startswith("aws-cli/2"), version
    run = uuid.uuid4().hex
    ready, wanted = f"V2TAIL-ready-{run}", f"V2TAIL-{run}"
    lam = server.client("lambda")
    invoke_json(lam, printer, {"lines": [ready]})
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    tail = subprocess.Popen(
        [aws, "--endpoint-url", server.endpoint, "logs", "tail", "/aws/lambda/printer", "--follow",
         "--format", "short", "--filter-pattern", "V2TAIL"],
        stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert ready in _read_until(tail, ready, timeout=30)
        invoke_json(lam, printer, {"lines": [f"other-{run}", wanted]})
        out = _read_until(tail, wanted, timeout=30)
        assert wanted in out and f"other-{run}" not in out
    finally:
        tail.kill()
        tail.wait()


def test_installed_aws_cli_reads_logs(server, logs):
    base = now_ms() - 5000
    group = new_group(logs, {"one": [(base, "ERROR one"), (base + 2, "fine")], "two": [(base + 1, "ERROR two")]})
    out = server.aws_cli(
        "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "ERROR",
        "--start-time", str(base), "--interleaved",
    )  # fmt: skip
    assert [e["message"] for e in json.loads(out.stdout)["events"]] == ["ERROR one", "ERROR two"]
    out = server.aws_cli("logs", "describe-log-streams", "--log-group-name", group, "--order-by", "LastEventTime",
                         "--descending")  # fmt: skip
    assert [s["logStreamName"] for s in json.loads(out.stdout)["logStreams"]] == ["one", "two"]
    out = server.aws_cli("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "one",
                         "--start-from-head")  # fmt: skip
    assert [e["message"] for e in json.loads(out.stdout)["events"]] == ["ERROR one", "fine"]


def test_lamina_logs_filter_since_and_stream(server, logs, printer):
    tag = uuid.uuid4().hex[:8]
    invoke_json(server.client("lambda"), printer, {"lines": [f"ERROR {tag} a", f"INFO {tag} b"]})
    group = "/aws/lambda/printer"
    logs.create_log_stream(logGroupName=group, logStreamName=f"manual-{tag}")
    logs.put_log_events(
        logGroupName=group, logStreamName=f"manual-{tag}",
        logEvents=[{"timestamp": now_ms() - 3_600_000, "message": f"ERROR {tag} an hour ago"}],
    )  # fmt: skip
    out = lamina(server, "logs", "printer", "--filter", f"ERROR {tag}").stdout
    assert f"ERROR {tag} a" in out and f"ERROR {tag} an hour ago" in out and f"INFO {tag}" not in out
    recent = lamina(server, "logs", "printer", "--filter", f"ERROR {tag}", "--since", "10m").stdout
    assert f"ERROR {tag} a" in recent and "an hour ago" not in recent
    one = lamina(server, "logs", "printer", "--stream", f"manual-{tag}").stdout
    assert one.strip().endswith(f"ERROR {tag} an hour ago") and len(one.strip().splitlines()) == 1
    bad = lamina(server, "logs", "printer", "--filter", "{ $.a = ", check=False)
    assert bad.returncode != 0 and "Invalid filter pattern" in bad.stderr
    lam = server.client("lambda")
    invoke_json(lam, printer, {"lines": [f"WANTED-{tag}-ready"]})  # printed once the follower's first read is done
    env = {**os.environ, "LAMINA_ENDPOINT": server.endpoint, "PYTHONUNBUFFERED": "1"}
    follower = subprocess.Popen(
        [LAMINA, "logs", "printer", "--follow", "--filter", f"WANTED-{tag}"], stdout=subprocess.PIPE, env=env
    )
    try:
        assert f"WANTED-{tag}-ready" in _read_until(follower, f"WANTED-{tag}-ready")
        invoke_json(lam, printer, {"lines": [f"SKIPPED-{tag}", f"WANTED-{tag}-after"]})
        out = _read_until(follower, f"WANTED-{tag}-after")
        assert f"WANTED-{tag}-after" in out and f"SKIPPED-{tag}" not in out
    finally:
        follower.kill()
        follower.wait()
