"""One environment's lifecycle: warm reuse, cold-start reporting, and every way it can die."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import pytest

from lamina.config import Settings
from lamina.model.invocation import Outcome
from lamina.runtime.base import EnvironmentState
from lamina.runtime.output import TRUNCATED

from .conftest import call, invocation, make_pool, make_spec, processes_in_group, wait_gone


def _doc(result) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(result.payload)


def test_echo_and_warm_reuse(runner, pool):
    spec = make_spec(
        """
        count = 0
        print("init output")
        def handler(event, context):
            global count
            count += 1
            return {"count": count, "event": event}
        """
    )
    first = runner.run(call(pool, spec, b'{"hello": "world"}'))
    second = runner.run(call(pool, spec, b"[1, 2]"))
    assert first.outcome is Outcome.SUCCESS
    assert json.loads(first.payload) == {"count": 1, "event": {"hello": "world"}}
    assert json.loads(second.payload) == {"count": 2, "event": [1, 2]}
    assert first.environment_id == second.environment_id
    assert first.init_duration_ms is not None and first.init_duration_ms > 0
    assert second.init_duration_ms is None
    assert [line.text for line in first.init_logs] == ["init output"]
    assert first.logs == [] and second.logs == [] and second.init_logs == []
    assert first.max_memory_used_mb > 0 and first.interpreter_note is None


def _crash(runner, pool, body: str, expected: str) -> None:
    spec = make_spec(f"import ctypes, os, sys\ndef handler(event, context):\n    {body}\n")
    result = runner.run(call(pool, spec))
    request_id = _doc(result)["errorMessage"].split()[1]
    assert result.outcome is Outcome.CRASH
    assert result.error_type == "Runtime.ExitError"
    assert _doc(result) == {
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {expected}",
        "errorType": "Runtime.ExitError",
    }
    assert [line.text for line in result.logs[-2:]] == [_doc(result)["errorMessage"], "Runtime.ExitError"]
    # The next invocation gets a fresh environment.
    again = runner.run(call(pool, spec))
    assert again.environment_id != result.environment_id and again.init_duration_ms is not None


def test_sys_exit(runner, pool):
    _crash(runner, pool, "sys.exit(1)", "exit status 1")


def test_os_exit(runner, pool):
    _crash(runner, pool, "os._exit(3)", "exit status 3")


def test_segfault(runner, pool):
    _crash(runner, pool, "ctypes.string_at(0)", "signal: segmentation fault (core dumped)")


def test_abort(runner, pool):
    _crash(runner, pool, "os.abort()", "signal: aborted (core dumped)")


def test_exit_zero_is_exit_without_reason(runner, pool):
    spec = make_spec("import sys\ndef handler(e, c):\n    sys.exit(0)\n")
    result = runner.run(call(pool, spec))
    assert result.outcome is Outcome.CRASH
    assert _doc(result)["errorMessage"].endswith(" Error: Runtime exited without providing a reason")


def test_crash_during_init(runner, pool):
    spec = make_spec("import os\nos._exit(7)\n")
    result = runner.run(call(pool, spec))
    assert result.outcome is Outcome.CRASH
    assert _doc(result)["errorMessage"].endswith("Runtime exited with error: exit status 7")


def test_timeout_kills_children_and_grandchildren(runner, pool):
    pid_dir = Path(tempfile.mkdtemp())
    pid_dir.chmod(0o777)  # the handler may run under its own uid
    pid_file = pid_dir / "pids"
    spec = make_spec(
        """
        import os, subprocess, time
        def handler(event, context):
            child = subprocess.Popen(["sleep", "60"])
            escaped = subprocess.Popen(["sleep", "60"], start_new_session=True)  # leaves the group
            with open(event["pid_file"], "w") as f:
                f.write(f"{os.getpid()} {child.pid} {escaped.pid}")
            print("working")
            time.sleep(60)
        """,
        timeout_s=0.5,
    )
    started = time.monotonic()
    result = runner.run(call(pool, spec, json.dumps({"pid_file": str(pid_file)}).encode()))
    assert time.monotonic() - started < 3
    request_id = _doc(result)["errorMessage"].split()[1]
    assert result.outcome is Outcome.TIMEOUT
    assert result.error_type == "Sandbox.Timedout"
    assert _doc(result) == {
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 0.50 seconds",
        "errorType": "Sandbox.Timedout",
    }
    assert result.logs[0].text == "working"
    assert result.logs[-1].text.endswith(f"Z {request_id} Task timed out after 0.50 seconds")
    assert 450 < result.duration_ms < 2000
    pids = [int(p) for p in pid_file.read_text().split()]
    assert wait_gone(pids) == []
    assert processes_in_group(pids[0]) == []


def test_memory_overrun_is_out_of_memory(runner, pool):
    spec = make_spec(
        """
        import time
        def handler(event, context):
            hog = b"x" * (200 << 20)
            time.sleep(1)  # a watchdog (no cgroups) polls every 20 ms
            return len(hog)
        """,
        memory_mb=64,
    )
    result = runner.run(call(pool, spec))
    if pool._get_limits().mode == "off":
        pytest.skip("no memory enforcement on this machine")
    request_id = _doc(result)["errorMessage"].split()[1]
    assert result.outcome is Outcome.OUT_OF_MEMORY
    assert result.error_type == "Runtime.OutOfMemory"
    assert _doc(result) == {
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
        "errorType": "Runtime.OutOfMemory",
    }
    assert result.max_memory_used_mb >= 60


def test_memory_watchdog(runner, tmp_path):
    watchdog_pool = make_pool(tmp_path, memory_enforcement="watchdog")
    try:
        spec = make_spec(
            """
            import time
            def handler(event, context):
                hog = b"x" * (300 << 20)
                time.sleep(2)
            """,
            memory_mb=100,
        )
        result = runner.run(call(watchdog_pool, spec))
        assert result.outcome is Outcome.OUT_OF_MEMORY
        assert result.max_memory_used_mb >= 100
    finally:
        runner.run(watchdog_pool.close())


def test_output_flood_is_capped_and_drained(runner, tmp_path):
    capped = make_pool(tmp_path, max_log_bytes_per_invoke=100_000)
    try:
        spec = make_spec(
            """
            import sys
            def handler(event, context):
                line = "x" * 99 + "\\n"
                for _ in range(50):
                    sys.stdout.write(line * 10_486)  # ~1 MB a write, 50 MB in all
                print("after the flood")
                return event
            """
        )
        started = time.monotonic()
        flooded = runner.run(call(capped, spec))
        assert time.monotonic() - started < 20
        assert flooded.outcome is Outcome.SUCCESS
        assert flooded.logs[-1].text == TRUNCATED
        assert sum(len(line.text) + 1 for line in flooded.logs[:-1]) <= 100_000
        assert [line.text for line in flooded.logs].count(TRUNCATED) == 1
        quiet = make_spec("def handler(e, c):\n    print('one line')\n")
        assert [line.text for line in runner.run(call(capped, quiet)).logs] == ["one line"]
    finally:
        runner.run(capped.close())


def test_fork_bomb_is_contained(runner, tmp_path):
    small = make_pool(tmp_path, max_processes=32)
    try:
        if not runner.run(_limits_processes(small)):
            pytest.skip("neither a pids cgroup nor a per-environment uid here")
        spec = make_spec(
            """
            import os, time
            def handler(event, context):
                forks = 0
                for _ in range(500):  # a hard stop, should containment fail
                    try:
                        pid = os.fork()
                    except OSError:
                        break
                    if pid == 0:
                        try:
                            os.fork()  # children fork too
                        except OSError:
                            pass
                        time.sleep(60)
                        os._exit(0)
                    forks += 1
                return {"forks": forks, "pid": os.getpid()}
            """
        )
        result = runner.run(call(small, spec))
        out = json.loads(result.payload)
        print(out, processes_in_group(out["pid"]))
        assert result.outcome is Outcome.SUCCESS
        assert out["forks"] < 32
        assert len(processes_in_group(out["pid"])) <= 32
        runner.run(small.close())
        assert wait_gone(processes_in_group(out["pid"])) == []
    finally:
        runner.run(small.close())


async def _limits_processes(pool) -> bool:  # type: ignore[no-untyped-def]
    return pool._get_limits().limits_processes or pool._get_sandbox()._drop


def test_invoke_after_death_is_refused(runner, pool):
    spec = make_spec("import os\ndef handler(e, c):\n    os._exit(1)\n")

    async def scenario():
        async with pool.lease(spec) as env:
            await env.invoke(invocation())
            assert env.state is EnvironmentState.DEAD
            with pytest.raises(Exception, match="cannot invoke"):
                await env.invoke(invocation())

    runner.run(scenario())


def test_large_payload_round_trip(runner, pool):
    spec = make_spec("def handler(e, c): return e\n")
    payload = json.dumps({"data": "y" * 5_000_000}).encode()
    result = runner.run(call(pool, spec, payload))
    assert result.outcome is Outcome.SUCCESS
    assert result.payload == payload  # json.dumps defaults on both sides: the same bytes back


def test_slow_init_times_out(runner, tmp_path):
    impatient = make_pool(tmp_path, init_timeout_s=0.2)
    try:
        spec = make_spec("import time\ntime.sleep(30)\ndef handler(e, c): return 1\n", timeout_s=0.2)
        started = time.monotonic()
        result = runner.run(call(impatient, spec))
        assert time.monotonic() - started < 3
        assert result.outcome is Outcome.TIMEOUT
        assert _doc(result)["errorType"] == "Sandbox.Timedout"
        assert _doc(result)["errorMessage"].endswith("Task timed out after 0.40 seconds")
    finally:
        runner.run(impatient.close())


def test_cancelled_invocation_kills_the_environment(runner, pool):
    spec = make_spec("import os, time\ndef handler(e, c):\n    time.sleep(e)\n    return os.getpid()\n")
    warm = runner.run(call(pool, spec, b"0"))

    async def scenario():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call(pool, spec, b"30"), 0.2)

    runner.run(scenario())
    assert wait_gone([json.loads(warm.payload)]) == []
    assert runner.run(call(pool, spec, b"0")).init_duration_ms is not None


INTERPRETERS = sorted(Settings().interpreters.items())  # every Python runtime found here


@pytest.mark.parametrize(("runtime", "interpreter"), INTERPRETERS, ids=[r for r, _ in INTERPRETERS])
def test_every_installed_python_runs_the_bootstrap(runner, pool, runtime, interpreter):
    spec = make_spec(
        """
        import logging, sys
        def handler(event, context):
            if event == "fail":
                raise RuntimeError("as expected")
            logging.getLogger().warning("on %s", sys.version_info[:2])
            return {"version": list(sys.version_info[:2]), "memory": context.memory_limit_in_mb}
        """,
        runtime=runtime,
        interpreter=interpreter,
    )
    ok = runner.run(call(pool, spec))
    assert ok.outcome is Outcome.SUCCESS, ok.payload
    assert json.loads(ok.payload) == {"version": [int(p) for p in runtime[6:].split(".")], "memory": "128"}
    assert ok.logs[-1].text.startswith("[WARNING]\t")
    failed = runner.run(call(pool, spec, b'"fail"'))
    assert _doc(failed)["errorType"] == "RuntimeError"
    assert failed.environment_id == ok.environment_id
