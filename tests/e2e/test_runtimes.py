"""Every runtime end to end, through the Lambda Runtime API, against a real server and boto3.

Kinds of function (handlers in tests/e2e/runtimes/): the AWS tutorial's shell-script bootstrap
(curl), awslambdaric (`python -m awslambdaric`) and a standard-library Go program as `provided*`
bootstraps; Node.js (CommonJS, an ES module, the callback style), Ruby and Java on Lamina's own
bootstraps. Each handler acts on the event's "action": echo (with its context and variables),
error, crash, sleep (starts a child, then outlives its timeout), wait, flaky (fails its first
attempt). A kind whose toolchain this machine lacks is skipped (CI installs them: .ci/run).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from lamina.config import Settings
from lamina.runtime import runtimes
from lamina.runtime.sandbox import world_readable
from lamina.testing import awslambdaric_files, function_zip

from .conftest import ROLE, LaminaServer
from .test_async import log_messages, starts, wait_for
from .test_cli import lamina
from .test_concurrency import wait_status

HERE = Path(__file__).parent / "runtimes"
JAVA_API = Path(runtimes.__file__).parent / "bootstrap" / "java"
SETTINGS = Settings.load(env={})


def have(tool: str) -> bool:
    if tool == "go":  # only the tests need it (to build a bootstrap)
        return shutil.which("go") is not None
    return runtimes.toolchain(tool, SETTINGS) is not None


def have_ric() -> bool:
    try:
        import awslambdaric  # noqa: F401
    except ImportError:
        return False
    return True


package = function_zip


def source(name: str) -> str:
    return (HERE / name).read_text()


def build_go(tmp: Path) -> bytes:
    out = tmp / "bootstrap"
    subprocess.run(["go", "build", "-o", str(out), str(HERE / "main.go")], check=True, cwd=tmp, timeout=300,
                   env={**os.environ, "GO111MODULE": "off"}, capture_output=True)  # fmt: skip
    return package({"bootstrap": out.read_bytes()}, executable=("bootstrap",))


def build_java(tmp: Path) -> bytes:
    out = tmp / "classes"
    sources = [str(p) for p in sorted((HERE / "example").glob("*.java"))]
    subprocess.run(["javac", "-d", str(out), "-sourcepath", str(JAVA_API), "-implicit:none", *sources],
                   check=True, timeout=300, capture_output=True)  # fmt: skip
    files = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.class")}
    return package(files)


def missing(reason: str) -> None:
    """A toolchain this machine lacks: skipped on a developer's machine, a failure where
    LAMINA_TEST_REQUIRE_TOOLCHAINS is set (.ci/run installs them and sets it), so CI never counts
    a skipped runtime as tested."""
    if os.environ.get("LAMINA_TEST_REQUIRE_TOOLCHAINS"):
        pytest.fail(reason)
    pytest.skip(reason)


def build_ric(tmp: Path) -> bytes:
    """app.py on awslambdaric (vendored into the package), started by a Python every uid can run."""
    python = SETTINGS.interpreter_for(f"python{sys.version_info[0]}.{sys.version_info[1]}")[0]
    if os.geteuid() == 0 and not world_readable(os.path.realpath(python)):
        missing(f"{python} is not reachable by the environments' own uids")
    return function_zip({**awslambdaric_files(python), "app.py": source("app.py")}, executable=("bootstrap",))


class Kind:
    """One way of writing a function: its runtime, package and handler, and what its errors say."""

    def __init__(self, label, runtime, tool, handler, build, error_type, bad_type, load_type, execution_env=True):
        self.label, self.runtime, self.tool, self.handler, self.build = label, runtime, tool, handler, build
        self.error_type, self.bad_type, self.load_type = error_type, bad_type, load_type
        self.execution_env = execution_env

    def available(self) -> bool:
        return have_ric() if self.tool == "awslambdaric" else have(self.tool)

    def __repr__(self) -> str:
        return self.label


KINDS = [
    Kind("ric", "provided.al2023", "awslambdaric", "app.handler", build_ric,
         "ValueError", "Runtime.ImportModuleError", "RuntimeError", execution_env=False),
    Kind("go", "provided.al2", "go", "main.handler", build_go, "ValueError", "Runtime.HandlerNotFound", "InitError",
         execution_env=False),
    Kind("node-cjs", "nodejs20.x", "node", "index.handler",
         lambda tmp: package({"index.js": source("index.js"), "app.mjs": source("app.mjs"), "cb.js": source("cb.js")}),
         "TypeError", "Runtime.ImportModuleError", "Error"),
    Kind("node-esm", "nodejs20.x", "node", "app.handler",
         lambda tmp: package({"index.js": source("index.js"), "app.mjs": source("app.mjs"), "cb.js": source("cb.js")}),
         "TypeError", "Runtime.ImportModuleError", "Error"),
    Kind("ruby", "ruby3.3", "ruby", "function.handler", lambda tmp: package({"function.rb": source("function.rb")}),
         "Function<ArgumentError>", "Init<LoadError>", "Init<RuntimeError>"),
    Kind("java", "java17", "java", "example.Handler::handleRequest", build_java,
         "java.lang.IllegalArgumentException", "java.lang.ClassNotFoundException",
         "java.lang.ExceptionInInitializerError"),
]  # fmt: skip
BY_LABEL = {kind.label: kind for kind in KINDS}


@pytest.fixture(scope="module")
def rt():
    """A server whose data dir every uid can traverse (as ./.lamina in a checkout), so that a root
    server runs each environment under a uid of its own, Runtime API runtimes included."""
    base = Path(tempfile.mkdtemp(prefix="lamina-e2e-rt-", dir="/tmp"))
    base.chmod(0o755)
    instance = LaminaServer(base / "data", env={"LAMINA_ASYNC_RETRY_BASE_SECONDS": "0.2"}).start()
    yield instance
    instance.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def rlam(rt):
    return rt.client("lambda")


_packages: dict[str, bytes] = {}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    def get(kind: Kind) -> bytes:
        if not kind.available():
            missing(f"{kind.tool} is not installed here")
        if kind.label not in _packages:
            _packages[kind.label] = kind.build(tmp_path_factory.mktemp(kind.label))
        return _packages[kind.label]

    return get


_created: set[str] = set()


def ensure(rlam, name: str, kind: Kind, code: bytes, runtime: str | None = None, **config) -> str:
    if name not in _created:
        rlam.create_function(FunctionName=name, Runtime=runtime or kind.runtime, Role=ROLE,
                             Handler=config.pop("Handler", kind.handler), Code={"ZipFile": code},
                             Timeout=config.pop("Timeout", 10), **config)  # fmt: skip
        _created.add(name)
    return name


def call(rlam, name: str, event: dict):
    response = rlam.invoke(FunctionName=name, Payload=json.dumps(event), LogType="Tail")
    body = response["Payload"].read()
    log = base64.b64decode(response["LogResult"]).decode()
    try:
        payload = json.loads(body)
    except ValueError:
        payload = body
    return response, payload, log


@pytest.fixture(params=KINDS, ids=[k.label for k in KINDS])
def kind(request):
    return request.param


@pytest.fixture
def main_fn(rlam, build, kind):
    return ensure(rlam, f"main-{kind.label}", kind, build(kind))


# -- the same echo, every runtime --------------------------------------------------------------

ECHO = [
    ("shell", "provided", "function.handler"),
    ("ric", "provided.al2023", None),
    ("go", "provided.al2", None),
    ("node-cjs", "nodejs18.x", None),
    ("node-esm", "nodejs20.x", None),
    ("node-cb", "nodejs22.x", "cb.handler"),
    ("ruby", "ruby3.2", None),
    ("ruby", "ruby3.3", None),
    ("ruby", "ruby3.4", None),
    ("java", "java17", None),
    ("java", "java21", None),
]


@pytest.mark.parametrize(("label", "runtime", "handler"), ECHO, ids=[f"{r}-{lab}" for lab, r, _ in ECHO])
def test_echo_in_every_runtime(rlam, build, label, runtime, handler):
    if label == "shell":
        if not shutil.which("curl"):
            missing("curl is not installed here")
        code = package({"bootstrap": source("bootstrap.sh"), "function.sh": source("function.sh")},
                       executable=("bootstrap",))  # fmt: skip
        kind = Kind("shell", runtime, None, handler, None, "", "", "")
    else:
        kind = BY_LABEL.get(label) or BY_LABEL["node-cjs"]
        code = build(kind)
    name = ensure(rlam, f"echo-{label}-{runtime.replace('.', '_')}", kind, code, runtime,
                  Handler=handler or kind.handler)  # fmt: skip
    response, payload, log = call(rlam, name, {"action": "echo", "n": 7, "text": "héllo"})
    assert response["StatusCode"] == 200 and "FunctionError" not in response, payload
    if label == "shell":
        assert payload == b'Echoing request: \'{"action": "echo", "n": 7, "text": "h\\u00e9llo"}\''
    elif label == "node-cb":
        assert payload["event"]["n"] == 7 and payload["style"] == "callback"
    else:
        assert payload["event"] == {"action": "echo", "n": 7, "text": "héllo"}
    assert re.search(r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\t"
                     r"Max Memory Used: \d+ MB\tInit Duration: [\d.]+ ms", log), log  # fmt: skip
    # A runtime whose version the machine lacks runs on the one it has, and says so.
    config = rlam.get_function_configuration(FunctionName=name)
    entry = runtimes.info(runtime)
    if entry.tool is not None and not runtimes.exact(entry, runtimes.toolchain(entry.tool, SETTINGS)):
        assert config["RuntimeVersionConfig"]["Error"]["ErrorCode"] == "RuntimeNotInstalled"
        assert "is not installed here" in log
    else:
        assert "Error" not in config["RuntimeVersionConfig"]


# -- behaviour, per kind -------------------------------------------------------------------------


def test_context_and_environment(rt, rlam, kind, main_fn):
    response, payload, log = call(rlam, main_fn, {"action": "echo"})
    assert "FunctionError" not in response, payload
    request_id = response["ResponseMetadata"]["RequestId"]
    assert payload["requestId"] == request_id and f"handling {request_id}" in log
    assert payload["functionName"] == main_fn
    assert payload["arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{main_fn}"
    assert 0 < payload["remaining"] <= 10_000
    env = payload["env"]
    assert env["_HANDLER"] == kind.handler and env["AWS_LAMBDA_FUNCTION_NAME"] == main_fn
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128" and env["AWS_REGION"] == "us-east-1"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert env["LAMBDA_TASK_ROOT"] and env["LAMBDA_RUNTIME_DIR"]
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert env["AWS_EXECUTION_ENV"] == (f"AWS_Lambda_{kind.runtime}" if kind.execution_env else None)
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"])
    messages = log_messages(rt, main_fn)
    assert any(m.startswith("INIT_START") for m in messages)
    assert any("Init Duration" in m for m in messages if m.startswith("REPORT"))


@pytest.mark.skipif(os.geteuid() != 0, reason="environments have their own uid only when the server is root")
def test_own_uid_and_a_private_runtime_api(rlam, kind, main_fn):
    """The bootstrap runs under the environment's own uid, and its Runtime API answers only that uid:
    another process (this test, as root) that finds the port gets no invocation."""
    _, payload, _ = call(rlam, main_fn, {"action": "echo"})
    status = Path(f"/proc/{payload['pid']}/status").read_text()
    uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
    assert uid >= 200000
    host, port = payload["env"]["AWS_LAMBDA_RUNTIME_API"].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = sock.recv(1024)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # refused: closed without a byte
    _, again, _ = call(rlam, main_fn, {"action": "echo"})
    assert again["pid"] == payload["pid"]  # the environment itself was not disturbed


def test_warm_reuse_keeps_globals(rlam, kind, main_fn):
    _, first, _ = call(rlam, main_fn, {"action": "echo"})
    _, second, log = call(rlam, main_fn, {"action": "echo"})
    assert second["count"] == first["count"] + 1
    assert second["env"]["AWS_LAMBDA_LOG_STREAM_NAME"] == first["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert "Init Duration" not in log


def test_handler_error(rlam, kind, main_fn):
    response, payload, log = call(rlam, main_fn, {"action": "error"})
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == kind.error_type and payload["errorMessage"] == "boom"
    if kind.label.startswith("node"):
        assert payload["trace"][0] == "TypeError: boom"
        assert re.search(r"\tERROR\tInvoke Error \t\{\"errorType\":\"TypeError\",\"errorMessage\":\"boom\"", log)
    # The environment survives a function error.
    response, payload, _ = call(rlam, main_fn, {"action": "echo"})
    assert "FunctionError" not in response and payload["count"] >= 2


def test_init_errors(rlam, build, kind):
    code = build(kind)
    missing = "example.Missing::handleRequest" if kind.label == "java" else "missing.handler"
    bad = ensure(rlam, f"bad-{kind.label}", kind, code, Handler=missing)
    response, payload, log = call(rlam, bad, {})
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == kind.bad_type, payload
    assert "Init Duration" in log
    load = ensure(rlam, f"load-{kind.label}", kind, code, Environment={"Variables": {"FAIL_AT_LOAD": "1"}})
    response, payload, log = call(rlam, load, {})
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == kind.load_type, payload
    assert "boom at load" in json.dumps(payload)


def test_crash_is_an_exit_error_and_the_next_invoke_starts_fresh(rlam, kind, main_fn):
    response, payload, log = call(rlam, main_fn, {"action": "crash"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in payload["errorMessage"]
    response, payload, log = call(rlam, main_fn, {"action": "echo"})
    assert "FunctionError" not in response and payload["count"] == 1 and "Init Duration" in log


def test_timeout_kills_the_process_tree(rlam, build, kind):
    name = ensure(rlam, f"slow-{kind.label}", kind, build(kind), Timeout=1)
    response, payload, log = call(rlam, name, {"action": "sleep"})
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in log
    pid = int(re.search(r"CHILD (\d+)", log).group(1))

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return open(f"/proc/{pid}/stat").read().split(") ")[1].startswith("Z")  # reaped soon

    wait_for(gone, timeout=5)


def test_concurrent_invokes_get_their_own_environments(rlam, kind, main_fn):
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: call(rlam, main_fn, {"action": "wait", "seconds": 0.6}), range(3)))
    assert all("FunctionError" not in response for response, _, _ in results), results
    streams = {payload["env"]["AWS_LAMBDA_LOG_STREAM_NAME"] for _, payload, _ in results}
    assert len(streams) == 3


def test_async_invoke_is_retried(rt, rlam, kind, main_fn):
    response = rlam.invoke(FunctionName=main_fn, InvocationType="Event", Payload=json.dumps({"action": "flaky"}))
    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["RequestId"]
    wait_for(lambda: f"handling {request_id}" in "\n".join(log_messages(rt, main_fn)), timeout=20)
    assert len(starts(rt, main_fn, request_id)) == 2
    assert any("attempt 1 fails" in m for m in log_messages(rt, main_fn))


# -- runtime specifics -----------------------------------------------------------------------------


def test_python_fast_path_and_awslambdaric_agree(rlam, build):
    """The same handler on the zygote fast path and through the Runtime API under awslambdaric:
    the same results, error documents and init failures."""
    ric = BY_LABEL["ric"]
    code = build(ric)
    runtime = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    pairs = {}
    for label, kwargs in (("ok", {}), ("bad", {"Handler": "missing.handler"}),
                          ("load", {"Environment": {"Variables": {"FAIL_AT_LOAD": "1"}}})):  # fmt: skip
        fast = ensure(rlam, f"agree-fast-{label}", ric, package({"app.py": source("app.py")}), runtime, **kwargs)
        api = ensure(rlam, f"agree-ric-{label}", ric, code, **kwargs)
        pairs[label] = (fast, api)
    for event in ({"action": "echo", "n": [1, 2.5, None, "é"]}, {"action": "error"}):
        (f_resp, fast, _), (a_resp, api, _) = (call(rlam, name, event) for name in pairs["ok"])
        assert f_resp.get("FunctionError") == a_resp.get("FunctionError")
        if event["action"] == "echo":
            assert fast["event"] == api["event"] == event and fast["count"] == api["count"]
            skip = {"AWS_EXECUTION_ENV", "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "_X_AMZN_TRACE_ID",
                    "AWS_LAMBDA_LOG_STREAM_NAME", "LAMBDA_TASK_ROOT"}  # fmt: skip
            assert {k: v for k, v in fast["env"].items() if k not in skip} == {
                k: v for k, v in api["env"].items() if k not in skip
            }
        else:
            assert set(fast) == set(api) == {"errorMessage", "errorType", "requestId", "stackTrace"}
            assert (fast["errorType"], fast["errorMessage"]) == (api["errorType"], api["errorMessage"])
    for label in ("bad", "load"):
        (_, fast, _), (_, api, _) = (call(rlam, name, {}) for name in pairs[label])
        assert (fast["errorType"], fast["errorMessage"]) == (api["errorType"], api["errorMessage"]), (fast, api)


def test_client_context_reaches_the_runtime(rlam, build):
    kind = BY_LABEL["node-cjs"]
    name = main_name(rlam, build, kind)
    context = {"custom": {"tenant": "t1"}, "env": {"locale": "fr"}}
    response = rlam.invoke(FunctionName=name, Payload=b'{"action":"echo"}',
                           ClientContext=base64.b64encode(json.dumps(context).encode()).decode())  # fmt: skip
    assert json.loads(response["Payload"].read())["clientContext"] == context


def test_node_callback_error_and_console_format(rlam, build):
    kind = BY_LABEL["node-cjs"]
    name = ensure(rlam, "node-callback", kind, build(kind), Handler="cb.handler")
    response, payload, _ = call(rlam, name, {"action": "error"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "RangeError" and payload["errorMessage"] == "boom by callback"
    _, _, log = call(rlam, main_name(rlam, build, kind), {"action": "echo"})
    line = next(line for line in log.splitlines() if "handling" in line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t[0-9a-f-]{36}\tINFO\thandling [0-9a-f-]{36}", line)


def test_node_esm_by_package_type(rlam):
    if not have("node"):
        missing("node is not installed here")
    code = package({
        "lib/package.json": '{"type": "module"}',
        "lib/greet.js": "import os from 'node:os';\nexport const nested = { greet: async (e) => `hi ${e.name} on ${typeof os.cpus}` };\n",
    })  # fmt: skip
    name = ensure(rlam, "node-type-module", BY_LABEL["node-cjs"], code, Handler="lib/greet.nested.greet")
    response, payload, _ = call(rlam, name, {"name": "ada"})
    assert "FunctionError" not in response and payload == "hi ada on function", payload


def test_ruby_module_class_method_handler(rlam, build):
    kind = BY_LABEL["ruby"]
    name = ensure(rlam, "ruby-greeter", kind, build(kind), Handler="function.Lamina::Greeter.greet")
    response, payload, _ = call(rlam, name, {"name": "ada"})
    assert "FunctionError" not in response and payload == {"greeting": "hello ada", "function": "ruby-greeter"}


def test_java_handler_from_a_jar_in_lib(rlam, build, tmp_path):
    kind = BY_LABEL["java"]
    build(kind)  # skips without a JDK
    classes = zipfile.ZipFile(io.BytesIO(build(kind)))
    jar = io.BytesIO()
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        for entry in classes.namelist():
            archive.writestr(entry, classes.read(entry))
    name = ensure(
        rlam, "java-jar", kind, package({"lib/handlers.jar": jar.getvalue()}), Handler="example.Styles::upper"
    )
    response, payload, _ = call(rlam, name, "jar")  # type: ignore[arg-type]
    assert "FunctionError" not in response and payload == "JAR"


def test_node_callback_waits_for_an_empty_event_loop(rlam, build):
    kind = BY_LABEL["node-cjs"]
    name = ensure(rlam, "node-lingering", kind, build(kind), Handler="cb.lingering")
    durations = []
    for wait in (True, False):
        _, payload, log = call(rlam, name, {"wait": wait})
        assert payload == {"count": 0 if wait else 100}  # the first call's timer ran before the second
        durations.append(float(re.search(r"\tDuration: ([\d.]+) ms", log).group(1)))
    assert durations[0] >= 390 and durations[1] < 390, durations


def main_name(rlam, build, kind: Kind) -> str:
    return ensure(rlam, f"main-{kind.label}", kind, build(kind))


def test_java_stream_and_string_handlers(rlam, build):
    kind = BY_LABEL["java"]
    code = build(kind)
    stream = ensure(rlam, "java-stream", kind, code, Handler="example.Styles")
    response, payload, _ = call(rlam, stream, {"a": [1, 2.5, None, True]})
    assert "FunctionError" not in response and payload == {"raw": {"a": [1, 2.5, None, True]}, "fn": "java-stream"}
    upper = ensure(rlam, "java-string", kind, code, Handler="example.Styles::upper")
    response, payload, _ = call(rlam, upper, "lamina")  # type: ignore[arg-type]
    assert payload == "LAMINA"
    tmp = ensure(rlam, "java-tmpdir", kind, code, Handler="example.Styles::tmpdir")
    _, payload, _ = call(rlam, tmp, {})
    assert payload.startswith("/tmp/lamina-scratch-"), payload  # its own scratch dir, not /tmp itself


def test_java_plain_objects_in_and_out(rlam, build):
    kind = BY_LABEL["java"]
    name = ensure(rlam, "java-pojo", kind, build(kind), Handler="example.Orders")
    order = {"id": "o-1", "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 3}], "rush": True, "extra": 1}
    response, payload, _ = call(rlam, name, order)
    assert "FunctionError" not in response, payload
    assert payload == {"orderId": "o-1", "units": 5, "rush": True, "skus": ["a", "b"]}


def test_provided_without_a_bootstrap_is_an_invalid_entrypoint(rlam):
    name = ensure(rlam, "no-bootstrap", BY_LABEL["ric"], package({"app.py": "x = 1\n"}))
    response, payload, _ = call(rlam, name, {})
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == "Runtime.InvalidEntrypoint"


def test_oversized_response_is_refused(rlam, build):
    if not have("node"):
        missing("node is not installed here")
    code = package({"index.js": "exports.handler = async () => 'x'.repeat(7 * 1024 * 1024);\n"})
    name = ensure(rlam, "node-big", BY_LABEL["node-cjs"], code, MemorySize=512)
    response, payload, _ = call(rlam, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Function.ResponseSizeTooLarge"


def test_a_missing_toolchain_is_refused_at_create_function(tmp_path):
    env = {"LAMINA_TOOLCHAINS": "java=/nonexistent/bin/java,ruby=/nonexistent/bin/ruby"}
    with LaminaServer(tmp_path / "data", env=env) as server:
        lam = server.client("lambda")
        for runtime, named in (("java21", "Java (/nonexistent/bin/java and javac)"), ("ruby3.3", "Ruby")):
            started = time.monotonic()
            with pytest.raises(ClientError) as info:
                lam.create_function(FunctionName=f"f-{runtime[:4]}", Runtime=runtime, Role=ROLE,
                                    Handler="x.y", Code={"ZipFile": package({"x": "y"})})  # fmt: skip
            error = info.value.response["Error"]
            assert error["Code"] == "InvalidParameterValueException"
            assert named in error["Message"] and "not installed" in error["Message"]
            assert time.monotonic() - started < 5


def test_memory_limit_kills_a_runtime_over_it(rlam):
    if not have("node"):
        missing("node is not installed here")
    code = package({"index.js": "exports.handler = async () => {\n  const held = [];\n"
                    "  for (let i = 0; i < 40; i++) held.push(Buffer.alloc(10 * 1024 * 1024, 1));\n"
                    "  return held.length;\n};\n"})  # fmt: skip
    name = ensure(rlam, "node-hog", BY_LABEL["node-cjs"], code)
    response, payload, log = call(rlam, name, {})
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == "Runtime.OutOfMemory", payload
    assert re.search(r"Max Memory Used: (\d+) MB", log)


def test_provisioned_concurrency_starts_bootstraps_ahead(rlam, build):
    kind = BY_LABEL["node-cjs"]
    name = ensure(rlam, "node-provisioned", kind, build(kind))
    version = rlam.publish_version(FunctionName=name)["Version"]
    rlam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
    assert wait_status(rlam, name, version, "READY")["AllocatedProvisionedConcurrentExecutions"] == 1
    response = rlam.invoke(FunctionName=name, Qualifier=version, Payload=b'{"action":"echo"}', LogType="Tail")
    log = base64.b64decode(response["LogResult"]).decode()
    assert "FunctionError" not in response and "REPORT" in log and "Init Duration" not in log
    assert json.loads(response["Payload"].read())["count"] == 1
    rlam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)


def test_lamina_deploy_a_directory_with_a_bootstrap_and_the_aws_cli(rt, tmp_path):
    """`lamina deploy DIR --runtime provided.al2023` keeps the executable bit; the AWS CLI invokes it."""
    if not shutil.which("curl"):
        missing("curl is not installed here")
    source_dir = tmp_path / "shellfn"
    source_dir.mkdir()
    (source_dir / "bootstrap").write_text(source("bootstrap.sh"))
    (source_dir / "bootstrap").chmod(0o755)
    (source_dir / "function.sh").write_text(source("function.sh"))
    lamina(rt, "deploy", str(source_dir), "--name", "cli-shell", "--runtime", "provided.al2023",
           "--handler", "function.handler")  # fmt: skip
    out = tmp_path / "out.txt"
    rt.aws_cli("lambda", "invoke", "--function-name", "cli-shell", "--payload", '{"k": 1}', str(out))
    assert out.read_text() == "Echoing request: '{\"k\": 1}'"


def test_every_runtime_forks_from_the_one_host_zygote(rt, rlam, build):
    """Bootstraps are exec'd from children of the host Python's zygote (and its spares): no zygote
    of their own, whatever the runtime."""
    for kind in KINDS:
        if kind.available():
            call(rlam, ensure(rlam, f"main-{kind.label}", kind, build(kind)), {"action": "echo"})
    assert rt.health()["zygotes"] == 1
