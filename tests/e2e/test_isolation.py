"""What one function does must not hurt the server or other functions; limits answer like AWS."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from .conftest import LaminaServer, create, invoke_json

WHOAMI = "import os\ndef handler(e, c):\n    return {'uid': os.getuid(), 'gid': os.getgid()}\n"


@pytest.fixture(scope="module")
def open_server():
    """A server whose data dir every uid can traverse, as `./.lamina` under a normal checkout is."""
    base = Path(tempfile.mkdtemp(prefix="lamina-e2e-", dir="/tmp"))
    base.chmod(0o755)
    instance = LaminaServer(base / "data", env={"LAMINA_MAX_CONCURRENCY": "3"}).start()
    yield instance
    instance.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop applies when Lamina runs as root")
def test_functions_run_unprivileged_when_the_server_is_root(open_server):
    lam = open_server.client()
    create(lam, "whoami", WHOAMI)
    first = invoke_json(lam, "whoami")[1]
    assert first["uid"] != 0 and first["gid"] != 0
    create(lam, "whoami-2", WHOAMI)
    second = invoke_json(lam, "whoami-2")[1]
    assert second["uid"] not in (0, first["uid"])  # each live environment has a uid of its own


def _private_runtime() -> str | None:
    """A Python runtime whose interpreter only lives under a private home (pyenv in /root)."""
    from lamina.config import discover_interpreters
    from lamina.runtime.sandbox import world_readable

    for runtime, interpreter in sorted(discover_interpreters().items(), reverse=True):
        if not world_readable(interpreter) and runtime >= "python3.10":
            return runtime
    return None


PRIVATE_RUNTIME = _private_runtime()


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop applies when Lamina runs as root")
@pytest.mark.skipif(PRIVATE_RUNTIME is None, reason="no Python runtime installed under a private directory")
def test_functions_of_an_interpreter_under_a_private_home_run_unprivileged(open_server):
    lam = open_server.client()
    source = (
        "import os, sys\ndef handler(e, c):\n    import decimal, sqlite3, boto3\n"
        "    return {'uid': os.getuid(), 'version': list(sys.version_info[:2]), 'prefix': sys.prefix}\n"
    )
    create(lam, "whoami-private", source, Runtime=PRIVATE_RUNTIME)
    out = invoke_json(lam, "whoami-private")[1]
    assert out["uid"] != 0
    assert f"python{out['version'][0]}.{out['version'][1]}" == PRIVATE_RUNTIME
    assert not out["prefix"].startswith("/root")
    assert os.listdir(out["prefix"]) == []  # the prefix is mounted there in the zygote's namespace only


def test_concurrency_over_the_account_limit_is_throttled(open_server):
    lam = open_server.client()
    create(lam, "slow", "import time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n    return 'ok'\n", Timeout=10)
    outcomes: list[str] = []

    def call() -> None:
        try:
            outcomes.append(invoke_json(lam, "slow", {"s": 1.5})[1])
        except ClientError as exc:
            err = exc.response["Error"]
            outcomes.append(
                f"{err['Code']}:{exc.response.get('Reason')}:{exc.response['ResponseMetadata']['HTTPStatusCode']}"
            )

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 3  # LAMINA_MAX_CONCURRENCY=3
    throttled = [o for o in outcomes if o != "ok"]
    assert throttled == ["TooManyRequestsException:ConcurrentInvocationLimitExceeded:429"] * 2
    assert invoke_json(lam, "slow")[1] == "ok"  # slots are released afterwards


def test_output_flood_and_fork_bomb_do_not_hurt_the_server(open_server):
    lam = open_server.client()
    create(lam, "flood", "import sys\ndef handler(e, c):\n    line = 'x' * 1023 + '\\n'\n"
                         "    for _ in range(50 * 1024):\n        sys.stdout.write(line)\n    return 'done'\n", Timeout=30)  # fmt: skip
    create(lam, "bomb", "import os, time\ndef handler(e, c):\n    while True:\n        try:\n            os.fork()\n"
                        "        except OSError:\n            time.sleep(0.01)\n", Timeout=2)  # fmt: skip
    create(lam, "bystander", "def handler(e, c):\n    return 'fine'\n")
    _, body = invoke_json(lam, "flood", LogType="Tail")
    assert body == "done"
    bomb, error = invoke_json(lam, "bomb")
    # contained either by the timeout or, as the forks add up, by the memory limit
    assert bomb["FunctionError"] == "Unhandled" and error["errorType"] in ("Sandbox.Timedout", "Runtime.OutOfMemory")
    started = time.monotonic()
    assert invoke_json(lam, "bystander")[1] == "fine"
    assert time.monotonic() - started < 5
    logs = open_server.get_json("/_lamina/logs/flood?tail=5000")["events"]
    kept = sum(len(e["message"]) for e in logs)
    assert kept < 4 * 1024 * 1024  # the 50 MB flood was capped, not stored
    assert any("truncated" in e["message"] for e in logs)


def test_missing_runtime_runs_on_host_interpreter_and_says_so(open_server):
    lam = open_server.client()
    missing = next(
        (r for r in ("python3.14", "python3.13", "python3.12") if not shutil.which(r) and not _pyenv_has(r)), None
    )
    if missing is None:
        pytest.skip("every Python runtime is installed on this machine")
    out = create(lam, "elsewhere", "import sys\ndef handler(e, c):\n    return sys.version\n", Runtime=missing)
    assert out["Runtime"] == missing
    assert out["RuntimeVersionConfig"]["Error"]["ErrorCode"] == "RuntimeNotInstalled"
    assert missing in out["RuntimeVersionConfig"]["Error"]["Message"]
    response, _ = invoke_json(lam, "elsewhere", LogType="Tail")
    assert "FunctionError" not in response
    logs = open_server.get_json("/_lamina/logs/elsewhere?tail=50")["events"]
    assert any(missing in e["message"] and "not installed" in e["message"] for e in logs)


def _pyenv_has(runtime: str) -> bool:
    return any(Path.home().joinpath(".pyenv", "versions").glob(f"{runtime[6:]}.*/bin/{runtime}"))


@pytest.mark.skipif(not list(Path.home().joinpath(".pyenv", "versions").glob("3.9.*/bin/python3.9"))
                    and not shutil.which("python3.9"), reason="no Python 3.9 on this machine")  # fmt: skip
def test_python39_runtime_runs_on_python39_with_boto3(open_server):
    lam = open_server.client()
    source = "import sys, boto3\ndef handler(e, c):\n    return [sys.version_info[0], sys.version_info[1], boto3.__version__]\n"
    out = create(lam, "py39", source, Runtime="python3.9", Timeout=60)
    assert "Error" not in out["RuntimeVersionConfig"]
    major, minor, boto3_version = invoke_json(lam, "py39")[1]
    assert (major, minor) == (3, 9) and boto3_version


def test_idle_environments_are_reaped_after_the_keep_alive(tmp_path):
    server = LaminaServer(tmp_path / "data", env={"LAMINA_KEEP_ALIVE_SECONDS": "1"}).start()
    try:
        lam = server.client()
        create(lam, "napper", "import os\ndef handler(e, c):\n    return os.getpid()\n")
        first = invoke_json(lam, "napper")[1]
        assert invoke_json(lam, "napper")[1] == first  # warm within the keep-alive
        deadline = time.monotonic() + 10
        while server.get_json("/_lamina/health").get("environments", 1) and time.monotonic() < deadline:
            time.sleep(0.2)
        # The pool has let it go; the SIGKILL it sent lands and the zygote reaps it just after.
        while _alive(first) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(first)  # the idle environment's process is gone
        response, again = invoke_json(lam, "napper", LogType="Tail")
        assert again != first and "Init Duration" in base64.b64decode(response["LogResult"]).decode()
    finally:
        server.stop()


def _alive(pid: int) -> bool:
    """Whether the process still runs: a zombie (killed, not yet reaped by its zygote) does not."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
