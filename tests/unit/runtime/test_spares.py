"""Spare processes: forked ahead of demand, handed a function once, never carrying anything over.

A spare has joined its own cgroups and set up its session and rlimits, as root and with the
zygote's (empty) environment, and waits for a spec. These tests assert what can be observed:
that spares exist and are used, and that an environment born from one is exactly what an
environment forked on demand is (its function's variables, uid, scratch dir, limits).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from lamina.model.invocation import Outcome
from lamina.runtime.environment import EnvironmentProcess
from lamina.runtime.limits import MemoryMode
from lamina.runtime.pool import ProcessPool
from lamina.runtime.zygote import Zygote

from .conftest import call, gone, invocation, make_pool, make_spec, wait_gone

SYSTEM_PYTHON = f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"
# An interpreter every uid can read, so environments may get their own uid when we are root.
INTERPRETER = SYSTEM_PYTHON if os.path.exists(SYSTEM_PYTHON) else sys.executable

PROBE = """
import os, resource, stat, sys
def handler(event, context):
    tmp = os.environ["TMPDIR"]
    st = os.stat(tmp)
    limits = {n: list(resource.getrlimit(getattr(resource, "RLIMIT_" + n))) for n in ("NOFILE", "NPROC", "CORE", "FSIZE")}
    return {
        "env": dict(os.environ), "pid": os.getpid(), "sid": os.getsid(0), "pgid": os.getpgid(0),
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "cwd": os.getcwd(), "tmp_uid": st.st_uid, "tmp_mode": stat.S_IMODE(st.st_mode),
        "tmp_entries": os.listdir(tmp), "limits": limits, "path0": sys.path[0],
        "botocore": "botocore" in sys.modules,
    }
"""


async def ready_spares(
    pool: ProcessPool, zygote: Zygote, n: int = 1, timeout: float = 10.0
) -> list[EnvironmentProcess]:
    """The zygote's spares, once `n` of them are forked and inside their cgroups."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        procs = [p for p in pool._spares.get(zygote, []) if p.forked and not p.dead]
        joined = [p for p in procs if p.limits is not None and (not p.limits.groups or p.pid in p.limits.pids())]
        if len(joined) >= n:
            return joined
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {n} ready spares: {pool._spares.get(zygote)}")
        await asyncio.sleep(0.01)


async def zygote_of(pool: ProcessPool, interpreter: str, preload: tuple[str, ...] = ()) -> Zygote:
    await pool.prestart(interpreter, preload)
    return pool._zygotes[(interpreter, preload)]


def _proc_stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_a_zygote_keeps_a_spare_that_waits_in_its_own_groups(runner, pool):
    async def scenario():
        zygote = await zygote_of(pool, INTERPRETER)
        return zygote, (await ready_spares(pool, zygote))[0]

    zygote, spare = runner.run(scenario())
    assert pool.stats()["spares"] >= 1
    fields = _proc_stat(spare.pid)
    assert int(fields[1]) == zygote.info.pid  # type: ignore[union-attr]
    assert int(fields[2]) == int(fields[3]) == spare.pid  # own process group and session
    # Nothing of any function yet: the zygote's environment, the zygote's uid, no scratch dir.
    assert set(_environ(spare.pid)) <= {"LANG", "PATH"}
    assert os.stat(f"/proc/{spare.pid}").st_uid == os.geteuid()
    assert spare.uid is None and spare.scratch is None
    assert spare.listener is None
    assert spare.limits is not None
    if "memory" in spare.limits.groups:  # joined, with no memory limit of its own yet
        assert spare.pid in spare.limits.pids()
        name = "memory.max" if spare.limits.version == 2 else "memory.limit_in_bytes"
        limit = (spare.limits.groups["memory"] / name).read_text().strip()
        assert limit == "max" or int(limit) > 1 << 40
    if "pids" in spare.limits.groups:
        assert (spare.limits.groups["pids"] / "pids.max").read_text().strip() == str(pool.max_processes)


def test_a_handed_out_spare_becomes_the_function(runner, pool):
    spec = make_spec(PROBE, interpreter=INTERPRETER, memory_mb=192, env_vars={"USER_VAR": "x"})

    async def scenario():
        zygote = await zygote_of(pool, INTERPRETER)
        spare = (await ready_spares(pool, zygote))[0]
        async with pool.lease(spec) as env:
            limit = None
            if env._limits is not None and "memory" in env._limits.groups:
                name = "memory.max" if env._limits.version == 2 else "memory.limit_in_bytes"
                limit = int((env._limits.groups["memory"] / name).read_text())
            result = await env.invoke(invocation())
            born = (env.from_spare, env.pid == spare.pid, env.id == spare.id, env.plan.env, env.log_stream)
        replacement = (await ready_spares(pool, zygote))[0]
        return result, limit, born, replacement

    result, limit, (from_spare, same_pid, same_id, plan_env, log_stream), replacement = runner.run(scenario())
    assert result.outcome is Outcome.SUCCESS, result.payload
    assert from_spare and same_pid and same_id
    out = json.loads(result.payload)
    # Exactly the function's variables (the zygote's LANG=C.UTF-8 is gone), and its own ones.
    assert set(out["env"]) == set(plan_env) | {"AWS_LAMBDA_LOG_STREAM_NAME", "TMPDIR", "HOME"}
    assert out["env"]["USER_VAR"] == "x" and out["env"]["LANG"] == "en_US.UTF-8"
    assert out["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "192"
    assert out["env"]["AWS_LAMBDA_LOG_STREAM_NAME"] == log_stream
    assert out["cwd"] == out["path0"] == str(spec.code_dir)
    assert out["sid"] == out["pgid"] == out["pid"]
    # A private scratch dir, owned by the environment's uid; that uid when we can drop root.
    assert out["env"]["TMPDIR"] == out["env"]["HOME"] and out["tmp_entries"] == []
    assert out["tmp_mode"] == 0o700 and out["tmp_uid"] == out["uid"]
    if pool._get_sandbox().can_drop([str(spec.code_dir), INTERPRETER]):
        assert out["uid"] == out["euid"] == out["gid"] >= 200_000 and out["groups"] == []
    else:
        assert out["uid"] == os.geteuid()
    limits = out["limits"]
    assert limits["NOFILE"] == [1024, 1024] and limits["NPROC"] == [1024, 1024]
    assert limits["CORE"] == [0, 0] and limits["FSIZE"] == [512 << 20, 512 << 20]
    if limit is not None:
        assert limit == 192 << 20  # set when it was handed out, before its function ran
    assert replacement.pid != out["pid"]  # a new spare replaced it


def test_memory_limit_is_enforced_on_a_spare_born_environment(runner, pool):
    if pool._get_limits().mode is MemoryMode.OFF:
        pytest.skip("no memory enforcement on this machine")
    spec = make_spec(
        """
        import time
        def handler(event, context):
            hog = b"x" * (200 << 20)
            time.sleep(1)  # a watchdog (no cgroups) polls every 20 ms
            return len(hog)
        """,
        interpreter=INTERPRETER,
        memory_mb=64,
    )

    async def scenario():
        zygote = await zygote_of(pool, INTERPRETER)
        await ready_spares(pool, zygote)
        async with pool.lease(spec) as env:
            return env.from_spare, await env.invoke(invocation())

    from_spare, result = runner.run(scenario())
    assert from_spare
    assert result.outcome is Outcome.OUT_OF_MEMORY
    assert result.error_type == "Runtime.OutOfMemory"


def test_a_function_that_bundles_boto3_never_gets_a_preloaded_spare(runner, pool):
    bundled = make_spec(PROBE, preload=("boto3",), files={"boto3/__init__.py": "__version__ = 'bundled'\n"})

    async def scenario():
        preloading = await zygote_of(pool, sys.executable, ("boto3",))
        plain = await zygote_of(pool, sys.executable)
        preloaded_spare = (await ready_spares(pool, preloading))[0]
        await ready_spares(pool, plain)
        async with pool.lease(bundled) as env:
            result = await env.invoke(invocation())
            used = (env.from_spare, env._proc.zygote is plain, env.pid != preloaded_spare.pid)
        still = [p.pid for p in pool._spares[preloading] if not p.dead]
        return result, used, preloaded_spare.pid, still

    result, (from_spare, plain_zygote, other_pid), preloaded_pid, still = runner.run(scenario())
    assert from_spare and plain_zygote and other_pid
    assert json.loads(result.payload)["botocore"] is False  # nothing preloaded in that process
    assert still == [preloaded_pid] and not gone(preloaded_pid)  # the preloaded spare was not touched


def test_a_spare_that_died_waiting_is_never_handed_out(runner, pool):
    spec = make_spec(PROBE, interpreter=INTERPRETER)

    async def scenario():
        zygote = await zygote_of(pool, INTERPRETER)
        spare = (await ready_spares(pool, zygote))[0]
        os.kill(spare.pid, signal.SIGKILL)
        while not spare.dead:  # its channel closes; the zygote reports its exit
            await asyncio.sleep(0.01)
        async with pool.lease(spec) as env:
            return spare.pid, env.from_spare, await env.invoke(invocation())

    dead_pid, from_spare, result = runner.run(scenario())
    assert result.outcome is Outcome.SUCCESS
    assert json.loads(result.payload)["pid"] != dead_pid
    assert not from_spare  # forked on demand; a replacement spare follows
    assert pool.stats()["spares"] >= 1


def test_spares_die_with_their_zygote_and_the_new_one_gets_its_own(runner, pool):
    async def scenario():
        zygote = await zygote_of(pool, INTERPRETER)
        old = (await ready_spares(pool, zygote))[0]
        os.kill(zygote._proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
        await asyncio.to_thread(zygote._proc.wait)  # type: ignore[union-attr]
        while zygote.alive:
            await asyncio.sleep(0.01)
        result = await call(pool, make_spec(PROBE, interpreter=INTERPRETER))
        new = (await ready_spares(pool, pool._zygotes[(INTERPRETER, ())]))[0]
        return old.pid, result, new, zygote

    old_pid, result, new, dead_zygote = runner.run(scenario())
    assert wait_gone([old_pid]) == []
    assert result.outcome is Outcome.SUCCESS
    assert new.zygote is not dead_zygote and dead_zygote not in pool._spares


def test_close_stops_spares_and_leaves_no_processes_or_groups(runner, tmp_path):
    closing = make_pool(tmp_path, spares=2)
    spec = make_spec(PROBE, interpreter=INTERPRETER)

    async def scenario():
        zygote = await zygote_of(closing, INTERPRETER)
        spares = await ready_spares(closing, zygote, 2)
        result = await call(closing, spec)  # takes one
        closing._fill_spares(zygote)  # its replacement: still forking when close() begins
        assert not all(p.forked for p in closing._spares[zygote])
        groups = [g for p in closing._spares[zygote] if p.limits for g in p.limits.groups.values()]
        groups += [g for p in spares if p.limits for g in p.limits.groups.values()]
        await closing.close()
        return [p.pid for p in spares], result, zygote.info.pid, groups  # type: ignore[union-attr]

    spare_pids, result, zygote_pid, groups = runner.run(scenario())
    assert len(set(spare_pids)) == 2
    pids = [*spare_pids, json.loads(result.payload)["pid"], zygote_pid]
    assert wait_gone(pids) == []
    assert closing.stats()["spares"] == 0 and closing.stats()["environments"] == 0
    assert not any(g.exists() for g in groups)


def test_no_spares_when_disabled(runner, tmp_path):
    eager = make_pool(tmp_path, spares=0)
    try:

        async def scenario():
            await zygote_of(eager, INTERPRETER)
            await asyncio.sleep(0.1)
            spares = eager.stats()["spares"]
            async with eager.lease(make_spec(PROBE, interpreter=INTERPRETER)) as env:
                result = await env.invoke(invocation())
                return spares, env.from_spare, result, eager.stats()["spares"]

        before, from_spare, result, after = runner.run(scenario())
        assert before == after == 0 and not from_spare
        out = json.loads(result.payload)
        assert result.outcome is Outcome.SUCCESS and out["sid"] == out["pid"]
        assert stat.S_IMODE(out["tmp_mode"]) == 0o700
    finally:
        runner.run(eager.close())
