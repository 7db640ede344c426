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

from lamina.model.invocation import Outcome

from .conftest import PY39, call, invocation, make_pool, make_spec, wait_gone

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
