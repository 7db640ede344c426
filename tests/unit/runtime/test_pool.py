"""The warm pool: reuse, isolation, concurrency, retirement, reaping, zygote choice, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from lamina.errors import TooManyRequests
from lamina.model.invocation import Outcome

from .conftest import PY39, call, gone, invocation, make_pool, make_spec, wait_gone

SLEEPY = """
import os, time
value = None
def handler(event, context):
    global value
    previous = value
    value = event.get("value")
    tmp = os.environ["TMPDIR"]
    seen = sorted(os.listdir(tmp))
    with open(os.path.join(tmp, "mark-" + str(event.get("value"))), "w") as f:
        f.write("x")
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid(), "previous": previous, "seen": seen, "tmp": tmp}
"""


def test_concurrent_leases_get_separate_isolated_environments(runner, pool):
    spec = make_spec(SLEEPY)

    async def scenario():
        payloads = [json.dumps({"value": i, "sleep": 0.3}).encode() for i in range(4)]
        return await asyncio.gather(*(call(pool, spec, p) for p in payloads))

    results = runner.run(scenario())
    outs = [json.loads(r.payload) for r in results]
    assert len({o["pid"] for o in outs}) == 4  # N concurrent leases -> N processes
    assert len({o["tmp"] for o in outs}) == 4
    assert all(o["previous"] is None and o["seen"] == [] for o in outs)  # no globals, no /tmp shared
    assert all(r.init_duration_ms is not None for r in results)
    assert pool.stats()["idle"] >= 4

    # Warm reuse keeps each environment's own globals and files.
    again = json.loads(runner.run(call(pool, spec, b'{"value": "later"}')).payload)
    assert again["pid"] in {o["pid"] for o in outs}
    assert again["previous"] in {0, 1, 2, 3}
    assert again["seen"] == [f"mark-{again['previous']}"]


def test_lifo_reuse(runner, pool):
    spec = make_spec(SLEEPY)

    async def scenario():
        both = await asyncio.gather(*(call(pool, spec, b'{"sleep": 0.1}') for _ in range(2)))
        last = await call(pool, spec)
        return both, last

    both, last = runner.run(scenario())
    # The environment released last is the one reused first.
    assert last.environment_id in {r.environment_id for r in both}
    again = runner.run(call(pool, spec))
    assert again.environment_id == last.environment_id


def test_retire_makes_the_next_lease_cold(runner, pool):
    spec = make_spec(SLEEPY)
    first = runner.run(call(pool, spec))
    pid = json.loads(first.payload)["pid"]
    pool.retire(spec.key[:1])
    assert wait_gone([pid]) == []
    second = runner.run(call(pool, spec))
    assert second.init_duration_ms is not None
    assert second.environment_id != first.environment_id


def test_retire_while_busy_stops_after_the_lease(runner, pool):
    spec = make_spec(SLEEPY)

    async def scenario():
        async with pool.lease(spec) as env:
            task = asyncio.ensure_future(call(pool, make_spec("def handler(e, c): return 1\n")))
            pool.retire(spec.key)
            result = await env.invoke(invocation())
            await task
        return result

    result = runner.run(scenario())
    assert result.outcome is Outcome.SUCCESS  # the busy one finished its invocation...
    assert wait_gone([json.loads(result.payload)["pid"]]) == []  # ...then was stopped


def test_idle_environments_are_reaped(runner, tmp_path):
    short = make_pool(tmp_path, keep_alive_seconds=0.2)
    try:
        spec = make_spec(SLEEPY)
        first = runner.run(call(short, spec))
        pid = json.loads(first.payload)["pid"]
        assert short.stats()["idle"] == 1
        runner.run(asyncio.sleep(0.6))
        assert short.stats()["idle"] == 0
        assert wait_gone([pid]) == []
        assert runner.run(call(short, spec)).init_duration_ms is not None
    finally:
        runner.run(short.close())


def test_close_leaves_no_processes(runner, tmp_path):
    closing = make_pool(tmp_path)
    spec = make_spec(
        """
        import os, subprocess
        procs = []
        def handler(event, context):
            procs.append(subprocess.Popen(["sleep", "60"]))
            procs.append(subprocess.Popen(["sleep", "60"], start_new_session=True))
            return [os.getpid()] + [p.pid for p in procs]
        """
    )

    async def scenario():
        results = await asyncio.gather(*(call(closing, spec) for _ in range(3)))
        zygotes = [z._proc.pid for z in closing._zygotes.values()]
        busy = asyncio.ensure_future(call(closing, make_spec("import time\ndef handler(e, c): time.sleep(30)\n")))
        await asyncio.sleep(0.2)
        await closing.close()
        crashed = await busy
        return results, zygotes, crashed

    results, zygotes, crashed = runner.run(scenario())
    pids = [pid for r in results for pid in json.loads(r.payload)] + zygotes
    assert len(pids) == 3 * 3 + 1
    assert wait_gone(pids) == []
    assert crashed.outcome is Outcome.CRASH
    assert closing.stats()["environments"] == 0
    with pytest.raises(Exception, match="closed"):
        runner.run(call(closing, spec))


def test_zygote_restarts_after_dying(runner, pool):
    spec = make_spec(SLEEPY)
    runner.run(call(pool, spec))
    zygote = pool._plans[spec.key].zygote
    os.kill(zygote._proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    zygote._proc.wait()  # type: ignore[union-attr]
    runner.run(asyncio.sleep(0.1))
    assert not zygote.alive
    result = runner.run(call(pool, spec))  # the old environment died with its zygote
    assert result.outcome is Outcome.SUCCESS
    assert result.init_duration_ms is not None
    assert pool._plans[spec.key].zygote is not zygote


BOTO3_VERSION = """
import boto3, sys
def handler(event, context):
    return {"boto3": boto3.__version__, "file": boto3.__file__, "python": list(sys.version_info[:2])}
"""


def test_preloaded_boto3_and_a_bundled_copy_that_wins(runner, pool):
    preloaded = make_spec(BOTO3_VERSION, preload=("boto3",))
    bundled = make_spec(BOTO3_VERSION, preload=("boto3",), files={"boto3/__init__.py": "__version__ = 'bundled'\n"})
    real = json.loads(runner.run(call(pool, preloaded)).payload)
    own = json.loads(runner.run(call(pool, bundled)).payload)
    import boto3

    assert real["boto3"] == boto3.__version__
    assert own == {"boto3": "bundled", "file": f"{bundled.code_dir}/boto3/__init__.py", "python": real["python"]}
    assert pool._plans[preloaded.key].zygote.preload == ("boto3",)
    assert pool._plans[bundled.key].zygote.preload == ()


def test_runtime_packages_only_expose_boto3_and_its_dependencies(runner, pool):
    spec = make_spec(
        """
        import importlib.util
        def handler(event, context):
            return {n: importlib.util.find_spec(n) is not None for n in ("botocore", "urllib3", "click", "uvicorn", "lamina")}
        """
    )
    found = json.loads(runner.run(call(pool, spec)).payload)
    assert found == {"botocore": True, "urllib3": True, "click": False, "uvicorn": False, "lamina": False}


@pytest.mark.skipif(not os.path.exists(PY39), reason="no Python 3.9 interpreter here")
def test_python39_runs_a_handler_with_boto3(runner, pool):
    spec = make_spec(
        BOTO3_VERSION.replace(
            "return {", "return {'client': type(boto3.client('s3', region_name='us-east-1')).__name__, "
        ),
        runtime="python3.9",
        interpreter=PY39,
        preload=("boto3",),
    )
    result = runner.run(call(pool, spec))
    assert result.outcome is Outcome.SUCCESS, result.payload
    out = json.loads(result.payload)
    assert out["python"] == [3, 9]
    assert out["client"] == "S3"
    assert result.interpreter_note is None


def test_interpreter_note_when_the_runtime_is_missing(runner, pool):
    spec = make_spec("def handler(e, c): return 1\n", runtime="python3.14")
    first = runner.run(call(pool, spec))
    second = runner.run(call(pool, spec))
    version = ".".join(map(str, sys.version_info[:3]))
    note = f"Runtime python3.14 is not installed here; running on Python {version} ({sys.executable})"
    assert first.interpreter_note == second.interpreter_note == note
    assert first.init_logs[0].text == note
    assert second.init_logs == []


SYSTEM_PYTHON = f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give environments their own uid")
@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason=f"no {SYSTEM_PYTHON} (a world-readable Python)")
def test_environments_run_under_their_own_uid(runner, pool):
    spec = make_spec(
        """
        import os
        def handler(event, context):
            try:
                os.listdir("/root")
                root = "readable"
            except PermissionError:
                root = "denied"
            tmp = os.environ["TMPDIR"]
            open(os.path.join(tmp, "f"), "w").close()
            return {"uid": os.getuid(), "gid": os.getgid(), "root": root, "tmp_owner": os.stat(tmp).st_uid}
        """,
        interpreter=SYSTEM_PYTHON,
    )
    if not pool._get_sandbox().can_drop([str(spec.code_dir), SYSTEM_PYTHON]):
        pytest.skip("paths are not world-readable here")

    async def two():
        return await asyncio.gather(*(call(pool, spec, b"{}") for _ in range(2)))

    outs = [json.loads(r.payload) for r in runner.run(two())]
    for out in outs:
        assert out["uid"] >= 200_000 and out["gid"] == out["uid"]
        assert out["root"] == "denied"
        assert out["tmp_owner"] == out["uid"]
    assert outs[0]["uid"] != outs[1]["uid"]


def test_stats(runner, pool):
    stats = pool.stats()
    assert set(stats) == {
        "environments", "idle", "busy", "starting", "zygotes", "spares", "cold_starts", "warm_starts",
        "provisioned",
    }  # fmt: skip
    assert stats["cold_starts"] > 0 and stats["zygotes"] >= 1


def test_cold_and_warm_are_fast(runner, pool):
    """Smoke bounds only (the benchmark measures): a cold start well under 100 ms, warm under 10."""
    spec = make_spec("def handler(e, c): return e\n")
    started = time.perf_counter()
    cold = runner.run(call(pool, spec))
    cold_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    for _ in range(20):
        runner.run(call(pool, spec))
    warm_ms = (time.perf_counter() - started) * 1000 / 20
    assert cold.init_duration_ms is not None
    assert cold_ms < 100 and warm_ms < 10, (cold_ms, warm_ms)
    assert Path(cold.log_stream).name  # named


# Scaling rate ----------------------------------------------------------------------------------

INIT_TYPE = """
import os, time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid(), "init_type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
"""


def test_the_scaling_rate_throttles_new_environments_not_warm_ones(runner, tmp_path):
    limited = make_pool(tmp_path, scaling_rate_per_10s=2)
    spec = make_spec(INIT_TYPE)

    async def burst():
        return await asyncio.gather(*(call(limited, spec, b'{"sleep": 0.3}') for _ in range(3)), return_exceptions=True)

    try:
        results = runner.run(burst())
        throttles = [r for r in results if isinstance(r, TooManyRequests)]
        assert len(throttles) == 1 and throttles[0].reason == "FunctionInvocationRateLimitExceeded"
        assert sum(1 for r in results if not isinstance(r, BaseException)) == 2
        for _ in range(4):  # the two warm environments serve on, tokens or not
            assert runner.run(call(limited, spec)).init_duration_ms is None
        assert limited.stats()["cold_starts"] == 2
        other = make_spec(INIT_TYPE)  # another function has its own bucket
        assert runner.run(call(limited, other)).init_duration_ms is not None
    finally:
        runner.run(limited.close())


# Provisioned concurrency -----------------------------------------------------------------------


def wait_state(runner, pool, key, allocated=None, failure=False):
    def reached():
        state = pool.provisioned_state(key)
        return state is not None and (state.failure is not None if failure else state.allocated == allocated)

    runner.run(until(reached))
    return pool.provisioned_state(key)


async def until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


def test_provisioned_environments_are_initialised_ahead_and_used_first(runner, tmp_path):
    quick = make_pool(tmp_path, keep_alive_seconds=0.2)
    spec = make_spec(INIT_TYPE)

    async def scenario():
        quick.provision(spec, 2)
        await until(lambda: quick.provisioned_state(spec.key).allocated == 2)
        assert quick.stats()["cold_starts"] == 0 and quick.stats()["provisioned"] == 2
        both = await asyncio.gather(*(call(quick, spec, b'{"sleep": 0.2}') for _ in range(2)))
        third = await asyncio.gather(*(call(quick, spec, b'{"sleep": 0.2}') for _ in range(3)))
        return both, third

    try:
        both, third = runner.run(scenario())
        outs = [json.loads(r.payload) for r in both]
        assert {o["init_type"] for o in outs} == {"provisioned-concurrency"}
        assert all(r.init_duration_ms is None for r in both)  # no cold start
        # Three at once: the two provisioned ones, and one on-demand cold start.
        kinds = sorted(json.loads(r.payload)["init_type"] for r in third)
        assert kinds == ["on-demand", "provisioned-concurrency", "provisioned-concurrency"]
        assert [r.init_duration_ms is None for r in third].count(True) == 2
        # Keep-alive reaps the on-demand one, never the provisioned ones.
        time.sleep(0.4)
        quick.reap_idle()
        assert quick.stats()["idle"] == 2 and quick.provisioned_state(spec.key).allocated == 2
    finally:
        runner.run(quick.close())


def test_a_provisioned_environment_that_dies_is_replaced(runner, pool):
    spec = make_spec(INIT_TYPE)

    async def scenario():
        pool.provision(spec, 1)
        await until(lambda: pool.provisioned_state(spec.key).allocated == 1)
        first = json.loads((await call(pool, spec)).payload)["pid"]
        os.kill(first, signal.SIGKILL)  # dies while idle
        await until(lambda: gone(first))
        await asyncio.sleep(0.1)

        def replaced():
            state = pool.provisioned_state(spec.key)
            return state.allocated == 1 and quick_pid() not in (None, first)

        def quick_pid():
            envs = pool._provisioned[spec.key].idle
            return envs[0].pid if envs else None

        await until(replaced, timeout=10.0)
        result = await call(pool, spec)
        pool.unprovision(spec.key)
        return first, result

    first, result = runner.run(scenario())
    out = json.loads(result.payload)
    assert out["pid"] != first and out["init_type"] == "provisioned-concurrency"
    assert result.init_duration_ms is None
    assert wait_gone([out["pid"]]) == []  # unprovisioned: stopped
    assert pool.provisioned_state(spec.key) is None


def test_a_failing_init_stops_provisioning_with_a_reason(runner, pool):
    spec = make_spec("raise RuntimeError('broken')\ndef handler(e, c): return 1\n")
    runner.run(_provision(pool, spec, 2))
    state = wait_state(runner, pool, spec.key, failure=True)
    assert state.failure == "FUNCTION_ERROR_INIT_FAILURE" and state.allocated == 0
    pool.unprovision(spec.key)


def test_retire_drops_the_provisioned_set(runner, pool):
    spec = make_spec(INIT_TYPE)
    runner.run(_provision(pool, spec, 1))
    wait_state(runner, pool, spec.key, allocated=1)
    pid = pool._provisioned[spec.key].idle[0].pid
    pool.retire(spec.key[:2])
    assert pool.provisioned_state(spec.key) is None
    assert wait_gone([pid]) == []


def test_unprovisioning_while_environments_start_leaves_none_behind(runner, tmp_path):
    own = make_pool(tmp_path)
    spec = make_spec("import time\ntime.sleep(0.5)\ndef handler(e, c): return 1\n")

    async def scenario():
        own.provision(spec, 2)
        await asyncio.sleep(0.2)  # the two are in their init phase
        own.unprovision(spec.key)
        await until(lambda: own.stats()["environments"] == 0, timeout=5.0)

    try:
        runner.run(scenario())
        assert own.provisioned_state(spec.key) is None and own.stats()["provisioned"] == 0
    finally:
        runner.run(own.close())


async def _provision(pool, spec, count):
    pool.provision(spec, count)
