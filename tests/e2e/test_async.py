"""Asynchronous invocation against a real server and real boto3: the durable queue, retries,
EventInvokeConfigs, destinations (a recorder function receives the records), failed-event
keeping and redrive, the `lamina events` CLI, and kill -9 with a backlog.

Time-based behaviour runs in seconds through the server's knobs: LAMINA_ASYNC_RETRY_BASE_SECONDS
(the 1 min / 2 min retry delays) and LAMINA_ASYNC_MAX_EVENT_AGE_SECONDS (the default
MaximumEventAgeInSeconds, for events whose config sets none; AWS's API minimum stays 60).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from .conftest import LaminaServer, create
from .test_cli import lamina

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
RECORDER = "import json\ndef handler(event, context):\n    print('RECORD ' + json.dumps(event))\n    return 'ok'\n"
# Fails the first two times it sees an event (state in its environment's /tmp, keyed by request id).
FLAKY = """
import os
def handler(event, context):
    path = '/tmp/seen-' + context.aws_request_id
    seen = int(open(path).read()) if os.path.exists(path) else 0
    open(path, 'w').write(str(seen + 1))
    if seen < 2:
        raise RuntimeError('attempt %d fails' % (seen + 1))
    return {'ok': event}
"""
FAILING = "def handler(event, context):\n    raise ValueError('always ' + str(event.get('n')))\n"
NOOP = "def handler(event, context):\n    return None\n"


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    instance = LaminaServer(
        tmp_path_factory.mktemp("async") / "data", env={"LAMINA_ASYNC_RETRY_BASE_SECONDS": "0.2"}
    ).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def fast_lam(fast):
    return fast.client()


def log_messages(server: LaminaServer, name: str) -> list[str]:
    messages, cursor = [], 0
    while True:
        page = server.get_json(f"/_lamina/logs/{name}?after={cursor}&limit=1000")
        messages += [e["message"] for e in page["events"]]
        if not page["events"]:
            return messages
        cursor = page["cursor"]


def starts(server: LaminaServer, name: str, request_id: str | None = None) -> list[str]:
    """Request ids of the function's invocations, one per START line (so retries repeat)."""
    ids = [m.split()[2] for m in log_messages(server, name) if m.startswith("START RequestId: ")]
    return [i for i in ids if request_id is None or i == request_id]


def records(server: LaminaServer, name: str = "recorder") -> list[dict]:
    """Destination records the recorder received (its other events are left out)."""
    received = [json.loads(m[len("RECORD ") :]) for m in log_messages(server, name) if m.startswith("RECORD ")]
    return [r for r in received if isinstance(r, dict) and "requestContext" in r]


def wait_for(condition, timeout: float = 15.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout} s")
        time.sleep(interval)


def record_for(server: LaminaServer, request_id: str, timeout: float = 15.0) -> dict:
    return wait_for(lambda: next((r for r in records(server) if r["requestContext"]["requestId"] == request_id),
                                 None), timeout)  # fmt: skip


def event(lam, name: str, payload: dict, **kwargs) -> str:
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload), **kwargs)
    assert response["StatusCode"] == 202 and response["Payload"].read() == b""
    return response["ResponseMetadata"]["RequestId"]


@pytest.fixture(scope="module")
def recorder(fast_lam):
    create(fast_lam, "recorder", RECORDER)
    return ARN + "recorder"


def test_an_event_is_accepted_with_202_and_runs(fast, fast_lam, recorder):
    request_id = event(fast_lam, "recorder", {"hello": "async"})
    wait_for(lambda: starts(fast, "recorder", request_id))
    assert any(m == 'RECORD {"hello": "async"}' for m in log_messages(fast, "recorder"))


def test_fails_twice_then_succeeds_runs_exactly_three_times(fast, fast_lam, recorder):
    create(fast_lam, "flaky", FLAKY)
    fast_lam.put_function_event_invoke_config(
        FunctionName="flaky", DestinationConfig={"OnSuccess": {"Destination": recorder}}
    )
    request_id = event(fast_lam, "flaky", {"k": 1})
    record = record_for(fast, request_id)
    assert record["version"] == "1.0"
    assert record["requestContext"] == {"requestId": request_id, "functionArn": ARN + "flaky:$LATEST",
                                        "condition": "Success", "approximateInvokeCount": 3}  # fmt: skip
    assert record["requestPayload"] == {"k": 1}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"ok": {"k": 1}}
    assert len(starts(fast, "flaky", request_id)) == 3  # the same request id on every attempt
    assert fast.get_json("/_lamina/events/flaky")["depth"] == 0


def test_no_retries_then_on_failure_and_the_event_is_kept_for_redrive(fast, fast_lam, recorder):
    create(fast_lam, "failing", FAILING)
    fast_lam.put_function_event_invoke_config(
        FunctionName="failing", MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": recorder}}
    )
    request_id = event(fast_lam, "failing", {"n": 7})
    record = record_for(fast, request_id)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorMessage"] == "always 7"
    assert len(starts(fast, "failing", request_id)) == 1
    (kept,) = fast.get_json("/_lamina/events/failing/failed")["events"]
    assert (kept["id"], kept["payload"], kept["attempts"], kept["condition"]) == (request_id, {"n": 7}, 1,
                                                                                   "RetriesExhausted")  # fmt: skip
    assert "always 7" in kept["last_error"]
    # Redrive from the CLI: it runs again (same id) and fails again, so it is kept again.
    out = lamina(fast, "events", "redrive", "failing", "--id", request_id)
    assert "redrove 1 event" in out.stdout
    wait_for(lambda: len(starts(fast, "failing", request_id)) == 2)
    wait_for(lambda: fast.get_json("/_lamina/events/failing")["failed"] == 1)
    # The second OnFailure record is an event of the recorder's own: wait for it to run.
    wait_for(lambda: len([r for r in records(fast) if r["requestContext"]["requestId"] == request_id]) == 2)


def test_reserved_concurrency_zero_sends_events_straight_to_on_failure(fast, fast_lam, recorder):
    create(fast_lam, "switched-off", NOOP)
    fast_lam.put_function_event_invoke_config(
        FunctionName="switched-off", DestinationConfig={"OnFailure": {"Destination": recorder}}
    )
    fast_lam.put_function_concurrency(FunctionName="switched-off", ReservedConcurrentExecutions=0)
    request_id = event(fast_lam, "switched-off", {"z": 0})
    record = record_for(fast, request_id)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record and record["requestPayload"] == {"z": 0}
    assert starts(fast, "switched-off") == []  # never ran, never retried
    (kept,) = fast.get_json("/_lamina/events/switched-off/failed")["events"]
    assert kept["id"] == request_id and "reserved concurrency is 0" in kept["last_error"]


def test_event_invoke_config_crud_and_validation(fast, fast_lam, recorder):
    create(fast_lam, "configured", NOOP)
    put = fast_lam.put_function_event_invoke_config(FunctionName="configured", MaximumEventAgeInSeconds=120)
    assert put["FunctionArn"] == ARN + "configured:$LATEST" and put["MaximumEventAgeInSeconds"] == 120
    assert "MaximumRetryAttempts" not in put and put["LastModified"].year >= 2024
    updated = fast_lam.update_function_event_invoke_config(
        FunctionName="configured", MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": recorder}}
    )
    assert (updated["MaximumEventAgeInSeconds"], updated["MaximumRetryAttempts"]) == (120, 1)  # merged
    assert updated["DestinationConfig"]["OnFailure"] == {"Destination": recorder}
    got = fast_lam.get_function_event_invoke_config(FunctionName="configured", Qualifier="$LATEST")
    assert got["MaximumRetryAttempts"] == 1
    listed = fast_lam.list_function_event_invoke_configs(FunctionName="configured")["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [ARN + "configured:$LATEST"]
    via_cli = json.loads(
        fast.aws_cli("lambda", "get-function-event-invoke-config", "--function-name", "configured").stdout
    )
    assert via_cli["MaximumRetryAttempts"] == 1 and via_cli["FunctionArn"] == ARN + "configured:$LATEST"
    replaced = fast_lam.put_function_event_invoke_config(FunctionName="configured", MaximumRetryAttempts=2)
    assert "MaximumEventAgeInSeconds" not in replaced and replaced["DestinationConfig"]["OnFailure"] == {}

    def error(call, **params) -> tuple[str, str]:
        with pytest.raises(ClientError) as info:
            call(**params)
        return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]

    put_config = fast_lam.put_function_event_invoke_config
    code, message = error(put_config, FunctionName="configured",
                          DestinationConfig={"OnFailure": {"Destination": ARN + "does-not-exist"}})  # fmt: skip
    assert code == "InvalidParameterValueException" and "does not exist" in message
    code, message = error(put_config, FunctionName="configured",
                          DestinationConfig={"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:000000000000:q"}})  # fmt: skip
    assert code == "InvalidParameterValueException" and "SQS" in message
    code, message = error(put_config, FunctionName="configured",
                          DestinationConfig={"OnSuccess": {"Destination": ARN + "configured"}})  # fmt: skip
    assert code == "InvalidParameterValueException" and "itself" in message
    code, message = error(put_config, FunctionName="configured")
    assert code == "InvalidParameterValueException" and "at least one" in message
    assert error(put_config, FunctionName="nope", MaximumRetryAttempts=1)[0] == "ResourceNotFoundException"
    unchecked = fast.client(parameter_validation=False)
    code, _ = error(unchecked.put_function_event_invoke_config, FunctionName="configured", MaximumRetryAttempts=3)
    assert code in ("ValidationException", "InvalidParameterValueException")
    code, _ = error(unchecked.put_function_event_invoke_config, FunctionName="configured", MaximumEventAgeInSeconds=59)
    assert code in ("ValidationException", "InvalidParameterValueException")

    fast_lam.delete_function_event_invoke_config(FunctionName="configured")
    code, message = error(fast_lam.get_function_event_invoke_config, FunctionName="configured")
    assert code == "ResourceNotFoundException" and "EventInvokeConfig" in message
    # Configs go with their function.
    put_config(FunctionName="configured", MaximumRetryAttempts=0)
    fast_lam.delete_function(FunctionName="configured")
    create(fast_lam, "configured", NOOP)
    assert error(fast_lam.get_function_event_invoke_config, FunctionName="configured")[0] == "ResourceNotFoundException"


def test_payload_limits(fast_lam, recorder):
    big = json.dumps({"x": "a" * 1_048_576}).encode()
    with pytest.raises(ClientError) as info:
        fast_lam.invoke(FunctionName="recorder", InvocationType="Event", Payload=big)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert info.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert "too large for the Event invocation type" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        fast_lam.invoke_async(FunctionName="recorder", InvokeArgs=json.dumps({"x": "a" * 262_144}).encode())
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_dead_letter_targets_lamina_cannot_deliver_to_are_refused(fast_lam, recorder):
    queue = "arn:aws:sqs:us-east-1:000000000000:dlq"
    with pytest.raises(ClientError) as info:
        create(fast_lam, "with-dlq", NOOP, DeadLetterConfig={"TargetArn": queue})
    error = info.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException" and "not available" in error["Message"]
    with pytest.raises(ClientError):
        fast_lam.get_function(FunctionName="with-dlq")  # nothing was created
    create(fast_lam, "without-dlq", NOOP)
    with pytest.raises(ClientError) as info:
        fast_lam.update_function_configuration(FunctionName="without-dlq", DeadLetterConfig={"TargetArn": recorder})
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"  # Lambda's DLQs are SQS/SNS
    assert "DeadLetterConfig" not in fast_lam.get_function_configuration(FunctionName="without-dlq")


def test_legacy_invoke_async(fast, fast_lam, recorder):
    response = fast_lam.invoke_async(FunctionName="recorder", InvokeArgs=b'{"legacy": true}')
    assert response["Status"] == 202
    wait_for(lambda: 'RECORD {"legacy": true}' in log_messages(fast, "recorder"))


def test_lamina_invoke_async_and_events_cli(fast, fast_lam, recorder):
    create(fast_lam, "cli-async", FAILING)
    fast_lam.put_function_event_invoke_config(FunctionName="cli-async", MaximumRetryAttempts=0)
    request_id = lamina(fast, "invoke", "cli-async", "--async", "--payload", '{"n": 1}').stdout.strip()
    wait_for(lambda: fast.get_json("/_lamina/events/cli-async")["failed"] == 1)
    shown = lamina(fast, "events", "cli-async").stdout
    assert "queued     0" in shown and "failed     1" in shown
    failed = lamina(fast, "events", "failed", "cli-async").stdout
    assert request_id in failed and "RetriesExhausted" in failed and "always 1" in failed
    as_json = json.loads(lamina(fast, "events", "failed", "cli-async", "--json").stdout)
    assert as_json[0]["payload"] == {"n": 1}
    assert "redrove 1 event" in lamina(fast, "events", "redrive", "cli-async").stdout
    wait_for(lambda: len(starts(fast, "cli-async", request_id)) == 2)


def test_an_event_older_than_its_max_age_goes_to_on_failure(tmp_path):
    """The retry (due after 30 s) would come after the event's maximum age (1.5 s, the server's
    default for configs that set none): the event expires instead, with EventAgeExceeded."""
    env = {"LAMINA_ASYNC_RETRY_BASE_SECONDS": "30", "LAMINA_ASYNC_MAX_EVENT_AGE_SECONDS": "1.5"}
    with LaminaServer(tmp_path / "data", env=env).start() as server:
        lam = server.client()
        create(lam, "recorder", RECORDER)
        create(lam, "aging", FAILING)
        lam.put_function_event_invoke_config(FunctionName="aging",
                                             DestinationConfig={"OnFailure": {"Destination": ARN + "recorder"}})  # fmt: skip
        accepted = time.monotonic()
        request_id = event(lam, "aging", {"n": 3})
        record = record_for(server, request_id, timeout=10)
        assert time.monotonic() - accepted >= 1.5
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert len(starts(server, "aging", request_id)) == 1  # expired before its retry


def test_kill_9_with_a_backlog_of_1000_events_loses_none(tmp_path):
    """One slot, held by a slow synchronous invoke: 1,000 accepted events wait in the queue. After
    kill -9 and a restart every one of them runs (at least once)."""
    server = LaminaServer(tmp_path / "data", env={"LAMINA_MAX_CONCURRENCY": "1"}).start()
    try:
        lam = server.client()
        create(lam, "blocker", "import time\ndef handler(e, c):\n    time.sleep(20)\n", Timeout=30)
        create(lam, "noop", NOOP)
        blocker = threading.Thread(target=lambda: _quietly(lam.invoke, FunctionName="blocker"), daemon=True)
        blocker.start()
        wait_for(lambda: server.health()["concurrent_invocations"] == 1)
        with ThreadPoolExecutor(16) as pool:
            ids = set(pool.map(lambda n: event(lam, "noop", {"n": n}), range(1000)))
        assert len(ids) == 1000
        stats = server.get_json("/_lamina/events/noop")
        assert stats["depth"] == 1000 and stats["in_flight"] == 0  # all waiting, none failed
        server.kill9()
        server.env["LAMINA_MAX_CONCURRENCY"] = "8"
        server.start()
        wait_for(lambda: ids <= set(starts(server, "noop")), timeout=30, interval=0.3)
        wait_for(lambda: server.get_json("/_lamina/events/noop")["depth"] == 0)
        assert server.get_json("/_lamina/events/noop")["failed"] == 0
    finally:
        server.stop()


def _quietly(call, **params) -> None:
    try:
        call(**params)
    except Exception:  # the server is killed under it
        pass
