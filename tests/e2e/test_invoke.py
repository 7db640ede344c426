"""Invoke through unmodified boto3: results, logs, failures, warm reuse, isolation, scale-out."""

from __future__ import annotations

import base64
import json
import os
import threading
import time

import pytest
from botocore.exceptions import ClientError

from .conftest import create, handler_zip, invoke_json, make_zip

COUNTER = """
import os, time
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    mine = os.path.join(os.environ["TMPDIR"], "mine")
    existed = os.path.exists(mine)
    open(mine, "a").close()
    time.sleep(event.get("sleep", 0))
    return {"count": COUNT, "pid": os.getpid(), "tmp_existed": existed}
"""


def logs_of(response) -> str:
    return base64.b64decode(response["LogResult"]).decode()


def test_echo_with_headers_and_tail(lam, fresh_name):
    create(
        lam,
        fresh_name,
        "def handler(event, context):\n    print('hello from', event['x'])\n    return event\n",
    )
    response, body = invoke_json(lam, fresh_name, {"x": 1, "nested": {"y": [1, 2]}}, LogType="Tail")
    assert body == {"x": 1, "nested": {"y": [1, 2]}}
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    log = logs_of(response)
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("START RequestId: "))
    assert lines[start].endswith(" Version: $LATEST")
    assert "hello from 1" in lines[start + 1]
    assert lines[-2].startswith("END RequestId: ")
    assert lines[-1].startswith("REPORT RequestId: ")
    report = lines[-1]
    for field in (
        "Duration: ",
        "Billed Duration: ",
        "Memory Size: 128 MB",
        "Max Memory Used: ",
        "Init Duration: ",
    ):
        assert field in report
    request_id = lines[start].split()[2]
    assert request_id == response["ResponseMetadata"]["RequestId"]  # Lambda reuses the API request's id
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/json"


def test_init_duration_only_on_cold_start_and_warm_reuse(lam, fresh_name):
    create(lam, fresh_name, COUNTER)
    first, body1 = invoke_json(lam, fresh_name, LogType="Tail")
    second, body2 = invoke_json(lam, fresh_name, LogType="Tail")
    assert "Init Duration" in logs_of(first)
    assert "Init Duration" not in logs_of(second)
    assert body1["count"] == 1 and body2["count"] == 2
    assert body1["pid"] == body2["pid"]
    assert body2["tmp_existed"] is True  # the environment's /tmp persists across warm invokes


def test_parallel_invokes_scale_out_to_isolated_environments(lam, fresh_name):
    create(lam, fresh_name, COUNTER, Timeout=30)
    results: list[dict] = []
    errors: list[BaseException] = []

    def call():
        try:
            results.append(invoke_json(lam, fresh_name, {"sleep": 1.0})[1])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r["pid"] for r in results}) == 4  # N parallel invokes → N environments
    assert all(r["count"] == 1 and r["tmp_existed"] is False for r in results)  # nothing shared


def test_config_change_forces_cold_start(lam, fresh_name):
    create(lam, fresh_name, COUNTER)
    _, before = invoke_json(lam, fresh_name)
    lam.update_function_configuration(FunctionName=fresh_name, Environment={"Variables": {"XX": "1"}})
    response, after = invoke_json(lam, fresh_name, LogType="Tail")
    assert after["count"] == 1 and after["pid"] != before["pid"]
    assert "Init Duration" in logs_of(response)


def test_handler_sees_lambda_environment_and_context(lam, fresh_name):
    source = """
import os
def handler(event, context):
    keys = ["AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "AWS_REGION", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_LOG_GROUP_NAME",
            "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
            "AWS_EXECUTION_ENV", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "MY_VAR"]
    return {
        "env": {k: os.environ.get(k) for k in keys},
        "ctx": {
            "function_name": context.function_name, "function_version": context.function_version,
            "memory_limit_in_mb": context.memory_limit_in_mb, "aws_request_id": context.aws_request_id,
            "invoked_function_arn": context.invoked_function_arn, "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name, "remaining": context.get_remaining_time_in_millis(),
            "custom": context.client_context.custom if context.client_context else None,
        },
    }
"""
    create(lam, fresh_name, source, MemorySize=256, Timeout=10, Environment={"Variables": {"MY_VAR": "v"}})
    client_context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    _, out = invoke_json(lam, fresh_name, ClientContext=client_context)
    env, ctx = out["env"], out["ctx"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == fresh_name and env["_HANDLER"] == "app.handler"
    assert env["AWS_REGION"] == "us-east-1" and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{fresh_name}"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].count("/") == 3 and "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST" and env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python")
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"] and env["AWS_ENDPOINT_URL"].startswith("http://")
    assert env["MY_VAR"] == "v" and env["LAMBDA_TASK_ROOT"]
    assert ctx["function_name"] == fresh_name and ctx["function_version"] == "$LATEST"
    assert ctx["memory_limit_in_mb"] == "256"
    assert ctx["invoked_function_arn"].endswith(f":function:{fresh_name}")
    assert ctx["log_stream_name"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 0 < ctx["remaining"] <= 10_000
    assert ctx["custom"] == {"k": "v"}


def test_boto3_inside_a_handler_talks_to_lamina(lam, fresh_name):
    source = """
import boto3
def handler(event, context):
    client = boto3.client("lambda")
    return client.get_function_configuration(FunctionName=context.function_name)["FunctionName"]
"""
    create(lam, fresh_name, source, Timeout=30)
    assert invoke_json(lam, fresh_name)[1] == fresh_name


@pytest.mark.parametrize(
    ("source", "handler", "error_type", "message_part"),
    [
        ("def handler(e, c):\n    raise ValueError('boom')\n", "app.handler", "ValueError", "boom"),
        ("import not_a_module\n", "app.handler", "Runtime.ImportModuleError",
         "Unable to import module 'app': No module named 'not_a_module'"),
        ("x = 1\n", "app.handler", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'app'"),
        ("def handler(e, c)\n    return 1\n", "app.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'app'"),
        ("import sys\ndef handler(e, c):\n    sys.exit(3)\n", "app.handler", "Runtime.ExitError", "exit status 3"),
        ("import os\ndef handler(e, c):\n    os._exit(1)\n", "app.handler", "Runtime.ExitError", "exit status 1"),
        ("import ctypes\ndef handler(e, c):\n    ctypes.string_at(0)\n", "app.handler", "Runtime.ExitError",
         "signal: segmentation fault"),
        ("def handler(e, c):\n    return {1, 2}\n", "app.handler", "Runtime.MarshalError", "Unable to marshal response"),
        ("def handler(e, c):\n    return 'x' * 7_000_000\n", "app.handler", "Function.ResponseSizeTooLarge",
         "exceeded maximum allowed payload size (6291556 bytes)"),
    ],
    ids=["exception", "import", "missing-handler", "syntax", "sys-exit", "os-exit", "segfault", "marshal", "too-large"],
)  # fmt: skip
def test_function_errors_as_lambda_reports_them(lam, fresh_name, source, handler, error_type, message_part):
    create(lam, fresh_name, source, Handler=handler)
    response, body = invoke_json(lam, fresh_name, LogType="Tail")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == error_type
    assert message_part in body["errorMessage"]
    assert logs_of(response).splitlines()[-1].startswith("REPORT RequestId: ")


def test_exception_payload_has_request_id_and_stack_trace(lam, fresh_name):
    create(lam, fresh_name, "def handler(e, c):\n    raise KeyError('k')\n")
    _, body = invoke_json(lam, fresh_name)
    assert body["errorType"] == "KeyError" and len(body["requestId"]) == 36
    assert isinstance(body["stackTrace"], list) and any("app.py" in line for line in body["stackTrace"])


def _processes_with_arg(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def test_timeout_kills_environment_and_children(lam, fresh_name):
    marker = f"{time.time() % 1000 + 100:.3f}"  # a unique sleep argument to find the grandchild by
    source = f"""
import subprocess, time
def handler(event, context):
    subprocess.Popen(["sleep", "{marker}"])
    time.sleep(10)
"""
    create(lam, fresh_name, source, Timeout=1)
    response, body = invoke_json(lam, fresh_name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "Task timed out after 1.00 seconds" in logs_of(response)
    deadline = time.monotonic() + 5
    while _processes_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with_arg(marker) == []  # the handler's child died with its environment
    # the next invoke cold-starts in a fresh environment
    second, _ = invoke_json(lam, fresh_name, LogType="Tail")
    assert "Init Duration" in logs_of(second)


def test_memory_overrun_is_out_of_memory(lam, fresh_name):
    source = (
        "def handler(e, c):\n    blocks = [bytearray(16 * 1024 * 1024) for _ in range(64)]\n    return len(blocks)\n"
    )
    create(lam, fresh_name, source, MemorySize=128, Timeout=20)
    response, body = invoke_json(lam, fresh_name)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.OutOfMemory"


def test_payload_validation(lam, fresh_name):
    create(lam, fresh_name, "def handler(e, c):\n    return e\n")
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=fresh_name, Payload=b"{not json")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as exc:  # a large one is checked too (off the event loop)
        lam.invoke(FunctionName=fresh_name, Payload=b"[" + b"1," * 100_000)
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"
    big = {"k": "v" * 200_000}
    assert json.loads(lam.invoke(FunctionName=fresh_name, Payload=json.dumps(big))["Payload"].read()) == big
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=fresh_name, Payload=json.dumps({"x": "y" * 6_300_000}))
    assert exc.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "6291456 bytes" in exc.value.response["Error"]["Message"]
    empty = lam.invoke(FunctionName=fresh_name)
    assert json.loads(empty["Payload"].read()) == {}


def test_dry_run_and_missing_function(lam, fresh_name):
    create(lam, fresh_name, "def handler(e, c):\n    raise SystemExit('never runs')\n")
    response = lam.invoke(FunctionName=fresh_name, InvocationType="DryRun")
    assert response["StatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="nope-not-here")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_function_with_bundled_module_uses_its_own_copy(lam, fresh_name):
    code = make_zip({
        "app.py": "import boto3\ndef handler(e, c):\n    return boto3.MARKER\n",
        "boto3/__init__.py": "MARKER = 'bundled'\n",
    })  # fmt: skip
    create(lam, fresh_name, "", ZipFile=code)
    assert invoke_json(lam, fresh_name)[1] == "bundled"


def test_logging_module_lines_carry_the_request_id(lam, fresh_name):
    source = "import logging\nlog = logging.getLogger()\nlog.setLevel(logging.INFO)\n" \
             "def handler(e, c):\n    log.info('structured %s', 42)\n    return c.aws_request_id\n"  # fmt: skip
    create(lam, fresh_name, source)
    response, request_id = invoke_json(lam, fresh_name, LogType="Tail")
    line = next(line for line in logs_of(response).splitlines() if "structured 42" in line)
    level, stamp, rid, message = line.split("\t")
    assert (level, rid, message) == ("[INFO]", request_id, "structured 42")
    assert stamp.endswith("Z")


def test_zip_handler_in_subpackage(lam, fresh_name):
    code = make_zip({"pkg/__init__.py": "", "pkg/mod.py": "def go(e, c):\n    return 'deep'\n"})
    create(lam, fresh_name, "", ZipFile=code, Handler="pkg.mod.go")
    assert invoke_json(lam, fresh_name)[1] == "deep"


def test_handler_zip_helper_is_used(lam, fresh_name):
    create(
        lam,
        fresh_name,
        "",
        ZipFile=handler_zip("def h(e, c):\n    return 'm'\n", module="main"),
        Handler="main.h",
    )
    assert invoke_json(lam, fresh_name)[1] == "m"


def test_log_stream_order_init_start_invocation_end_report(server, lam, fresh_name):
    create(lam, fresh_name, "print('module level')\ndef handler(e, c):\n    print('in handler')\n    return 1\n")
    invoke_json(lam, fresh_name)
    invoke_json(lam, fresh_name)
    events = server.get_json(f"/_lamina/logs/{fresh_name}?tail=100")["events"]
    kinds = []
    for event in events:
        message = event["message"]
        kind = message.split(" ")[0] if message.split(" ")[0] in ("INIT_START", "START", "END", "REPORT") else message
        kinds.append(kind)
    assert kinds == [
        "INIT_START",
        "module level",
        "START",
        "in handler",
        "END",
        "REPORT",
        "START",
        "in handler",
        "END",
        "REPORT",
    ]
    assert len({event["stream"] for event in events}) == 1  # one stream per environment


def test_log_result_is_the_last_4_kb(lam, fresh_name):
    create(
        lam, fresh_name, "def handler(e, c):\n    for i in range(200):\n        print(f'line {i:03d} ' + 'y' * 60)\n"
    )
    response, _ = invoke_json(lam, fresh_name, LogType="Tail")
    raw = base64.b64decode(response["LogResult"])
    assert len(raw) == 4096
    text = raw.decode()
    assert "line 199" in text and "line 000" not in text and text.rstrip("\n").splitlines()[-1].startswith("REPORT")
