"""The Python bootstrap as a handler sees it: init errors, function errors, logs, the context.

Expectations are awslambdaric's exact documents and log lines (awslambdaric/bootstrap.py).
"""

from __future__ import annotations

import json
import re

from lamina.model.invocation import Outcome

from .conftest import call, make_spec


def _doc(result) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(result.payload)


# Init errors --------------------------------------------------------------------------------


def test_import_error(runner, pool):
    spec = make_spec("import not_a_module_anywhere\ndef handler(e, c): return 1\n")
    result = runner.run(call(pool, spec))
    assert result.outcome is Outcome.ERROR
    assert result.error_type == "Runtime.ImportModuleError"
    assert _doc(result) == {
        "errorMessage": "Unable to import module 'app': No module named 'not_a_module_anywhere'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    assert result.logs == []  # an init failure's output belongs to the init phase
    texts = [line.text for line in result.init_logs]
    assert any(t.startswith("[WARNING]\t") and "\t\tLAMBDA_WARNING: Unhandled exception." in t for t in texts)
    assert (
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named "
        "'not_a_module_anywhere'\rTraceback (most recent call last):" in texts
    )
    assert result.init_duration_ms is not None


def test_init_error_discards_the_environment_and_retries_init(runner, pool):
    spec = make_spec("def handler(e, c): return 1\n", handler="app.nope")
    first = runner.run(call(pool, spec))
    second = runner.run(call(pool, spec))
    for result in (first, second):
        assert _doc(result) == {
            "errorMessage": "Handler 'nope' missing on module 'app'",
            "errorType": "Runtime.HandlerNotFound",
            "requestId": "",
            "stackTrace": [],
        }
        assert result.init_duration_ms is not None  # init ran again: a fresh environment
    assert first.environment_id != second.environment_id


def test_malformed_handler(runner, pool):
    spec = make_spec("def handler(e, c): return 1\n", handler="apphandler")
    doc = _doc(runner.run(call(pool, spec)))
    assert doc["errorType"] == "Runtime.MalformedHandlerName"
    assert doc["errorMessage"] == "Bad handler 'apphandler': not enough values to unpack (expected 2, got 1)"


def test_syntax_error(runner, pool):
    spec = make_spec("def handler(:\n    pass\n")
    doc = _doc(runner.run(call(pool, spec)))
    assert doc["errorType"] == "Runtime.UserCodeSyntaxError"
    assert doc["errorMessage"] == "Syntax error in module 'app': invalid syntax (app.py, line 1)"
    assert doc["stackTrace"] == [f'  File "{spec.code_dir}/app.py" Line 1\n    def handler(:\n']
    assert doc["requestId"] == ""


def test_exception_at_module_level(runner, pool):
    spec = make_spec("x = 1\nraise KeyError('boom')\n")
    result = runner.run(call(pool, spec))
    doc = _doc(result)
    assert result.outcome is Outcome.ERROR
    assert doc["errorType"] == "KeyError"
    assert doc["errorMessage"] == "'boom'"
    assert doc["requestId"] == ""
    assert (
        doc["stackTrace"][-1] == f"  File \"{spec.code_dir}/app.py\", line 2, in <module>\n    raise KeyError('boom')\n"
    )
    assert not any("bootstrap/python.py" in frame for frame in doc["stackTrace"])


# Function errors ----------------------------------------------------------------------------


def test_handler_exception(runner, pool):
    spec = make_spec(
        """
        def handler(event, context):
            raise ValueError("bad input")
        """
    )
    result = runner.run(call(pool, spec))
    doc = _doc(result)
    assert result.outcome is Outcome.ERROR
    assert result.error_type == "ValueError"
    assert doc == {
        "errorMessage": "bad input",
        "errorType": "ValueError",
        "requestId": doc["requestId"],
        "stackTrace": [f'  File "{spec.code_dir}/app.py", line 3, in handler\n    raise ValueError("bad input")\n'],
    }
    assert re.fullmatch(r"[0-9a-f-]{36}", doc["requestId"])
    nbsp = "\u00a0"
    assert result.logs[-1].text == (
        "[ERROR] ValueError: bad input\rTraceback (most recent call last):\r"
        f'{nbsp * 2}File "{spec.code_dir}/app.py", line 3, in handler\r{nbsp * 4}raise ValueError("bad input")'
    )


def test_unserialisable_result(runner, pool):
    spec = make_spec("def handler(e, c): return {1, 2}\n")
    result = runner.run(call(pool, spec))
    doc = _doc(result)
    assert result.error_type == "Runtime.MarshalError"
    assert doc["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"
    assert doc["stackTrace"] == []
    # The environment survives a function error.
    assert runner.run(call(pool, spec)).environment_id == result.environment_id


def test_response_too_large(runner, pool):
    spec = make_spec("def handler(e, c): return 'x' * 6_300_000\n")
    result = runner.run(call(pool, spec))
    assert result.outcome is Outcome.ERROR
    assert result.error_type == "Function.ResponseSizeTooLarge"
    assert _doc(result) == {
        "errorMessage": "Response payload size (6300002 bytes) exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


def test_unmarshal_error_and_empty_payload(runner, pool):
    spec = make_spec("def handler(e, c): return e\n")
    bad = runner.run(call(pool, spec, b"{not json"))
    assert bad.error_type == "Runtime.UnmarshalError"
    assert _doc(bad)["errorMessage"].startswith("Unable to unmarshal input: Expecting property name")
    assert runner.run(call(pool, spec, b"")).payload == b"{}"


def test_result_encoding(runner, pool):
    spec = make_spec(
        """
        import decimal
        def handler(event, context):
            if event == "bytes":
                return b"raw \\xff"
            return {"d": decimal.Decimal("2"), "f": decimal.Decimal("1.5"), "u": "\\u00e9", "n": None}
        """
    )
    assert runner.run(call(pool, spec, b'"bytes"')).payload == b"raw \xff"
    assert runner.run(call(pool, spec)).payload == b'{"d": 2, "f": 1.5, "u": "\\u00e9", "n": null}'


# Logs and the context -----------------------------------------------------------------------


def test_logging_format_and_print(runner, pool):
    spec = make_spec(
        """
        import logging, sys
        logger = logging.getLogger()
        logger.setLevel(logging.INFO)
        def handler(event, context):
            print("plain line")
            logger.info("info %s", 1)
            sys.stderr.write("to stderr\\n")
            context.log("via context\\n")
            return None
        """
    )
    result = runner.run(call(pool, spec))
    assert result.payload == b"null"
    texts = [line.text for line in result.logs]
    request_id = re.search(r"\t([0-9a-f-]{36})\t", texts[1]).group(1)  # type: ignore[union-attr]
    assert texts[0] == "plain line"
    assert re.fullmatch(rf"\[INFO\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{request_id}\tinfo 1", texts[1])
    assert texts[2:] == ["to stderr", "via context"]
    assert all(line.timestamp_ms > 0 for line in result.logs)


def test_context_object(runner, pool):
    spec = make_spec(
        """
        import os
        def handler(event, context):
            cc = context.client_context
            return {
                "request_id": context.aws_request_id,
                "group": context.log_group_name,
                "stream": context.log_stream_name,
                "name": context.function_name,
                "memory": context.memory_limit_in_mb,
                "version": context.function_version,
                "arn": context.invoked_function_arn,
                "custom": cc.custom, "env": cc.env, "app_title": cc.client.app_title,
                "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
                "remaining": context.get_remaining_time_in_millis(),
                "trace": os.environ.get("_X_AMZN_TRACE_ID"),
                "region": os.environ.get("AWS_REGION"),
                "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
                "cwd": os.getcwd(),
            }
        """,
        timeout_s=3.0,
    )
    client_context = json.dumps({"custom": {"k": "v"}, "env": {"e": "1"}, "client": {"app_title": "t"}})
    identity = json.dumps({"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"})
    result = runner.run(
        call(pool, spec, client_context=client_context, cognito_identity=identity, trace_id="Root=1-abc")
    )
    out = json.loads(result.payload)
    assert re.fullmatch(r"[0-9a-f-]{36}", out["request_id"])
    assert out["group"] == f"/aws/lambda/{spec.function_name}"
    assert out["stream"] == result.log_stream
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", out["stream"])
    assert out["name"] == spec.function_name
    assert out["memory"] == "128"
    assert out["version"] == "$LATEST"
    assert out["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:fn"
    assert (out["custom"], out["env"], out["app_title"]) == ({"k": "v"}, {"e": "1"}, "t")
    assert out["identity"] == ["id-1", "pool-1"]
    assert 2000 < out["remaining"] <= 3000
    assert out["trace"] == "Root=1-abc"
    assert out["region"] == "us-east-1"
    assert out["task_root"] == out["cwd"] == str(spec.code_dir)


def test_scrubbed_environment(runner, pool):
    spec = make_spec("import os\ndef handler(e, c): return dict(os.environ)\n", env_vars={"USER_VAR": "x"})
    env = json.loads(runner.run(call(pool, spec)).payload)
    assert env["USER_VAR"] == "x"
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{spec.runtime}"
    assert env["TMPDIR"] == env["HOME"]
    assert "LAMINA_DATA_DIR" not in env and "PYTEST_CURRENT_TEST" not in env
