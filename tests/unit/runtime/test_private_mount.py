"""Interpreters under a private home (pyenv in a 0700 /root) still get unprivileged environments:
their zygotes run from a bind mount of the prefix in a mount namespace of their own."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from lamina.runtime import sandbox as sandbox_module
from lamina.runtime.sandbox import Sandbox, world_readable

from .conftest import call, make_pool, make_spec, wait_gone


def _private_interpreter() -> str | None:
    """A Python >= 3.10 whose prefix is not reachable by other uids (pyenv's, under /root)."""
    found = []
    for path in glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3.*")):
        match = re.search(r"/python3\.(\d+)$", path)
        if match and int(match.group(1)) >= 10 and not world_readable(path) and os.access(path, os.X_OK):
            found.append((int(match.group(1)) != 12, path))  # 3.12 first
    return min(found)[1] if found else None


PRIVATE_PYTHON = _private_interpreter()
needs_private_python = pytest.mark.skipif(
    os.geteuid() != 0 or PRIVATE_PYTHON is None,
    reason="needs root and a Python under a directory other uids cannot reach",
)

WHOAMI = """
import os, sys
def handler(event, context):
    import json, decimal, sqlite3, ssl  # stdlib modules the zygote did not preload
    import boto3
    return {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(), "prefix": sys.prefix, "executable": sys.executable,
            "boto3": boto3.__version__, "stdlib": json.__file__, "sqlite": sqlite3.sqlite_version,
            "decimal": str(decimal.Decimal("1.10") + 1), "path": os.environ["PATH"]}
"""


@needs_private_python
def test_private_interpreter_runs_unprivileged_from_a_private_mount(runner, tmp_path):
    assert PRIVATE_PYTHON is not None
    pool = make_pool(tmp_path)
    spec = make_spec(WHOAMI, interpreter=PRIVATE_PYTHON)

    async def scenario():
        results = await asyncio.gather(*(call(pool, spec) for _ in range(2)))
        zygotes = [z._proc.pid for z in pool._zygotes.values() if z._proc is not None]
        mounts = [z.mount for z in pool._zygotes.values()]
        # the mount lives in the zygotes' namespace only: the host sees an empty root-owned dir
        mountpoint = mounts[0].mountpoint if mounts[0] is not None else ""
        st = os.lstat(mountpoint)
        assert st.st_uid == 0 and st.st_mode & 0o777 == 0o755 and os.listdir(mountpoint) == []
        with open("/proc/self/mountinfo") as f:
            assert mountpoint not in f.read()
        with open(f"/proc/{zygotes[0]}/mountinfo") as f:
            assert mountpoint in f.read()
        return results, zygotes, mounts

    try:
        results, zygotes, mounts = runner.run(scenario())
    finally:
        runner.run(pool.close())
    mount = mounts[0]
    assert mount is not None
    prefix = os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(PRIVATE_PYTHON)), ".."))
    assert mount.prefix == prefix
    outs = [json.loads(r.payload) for r in results]
    for out in outs:
        assert out["uid"] >= 200_000 and out["gid"] == out["uid"]
        assert out["prefix"] == mount.mountpoint
        assert out["executable"].startswith(mount.mountpoint + "/bin/")
        assert out["stdlib"].startswith(mount.mountpoint + "/lib/")
        assert out["decimal"] == "2.10" and out["boto3"]
        assert out["path"].startswith(mount.mountpoint + "/bin:")
    assert outs[0]["uid"] != outs[1]["uid"]
    assert not os.path.exists(mount.mountpoint)  # removed with the scratch root
    assert wait_gone([out["pid"] for out in outs] + zygotes) == []  # close() left no processes


@needs_private_python
def test_without_unshare_environments_keep_the_server_uid(runner, tmp_path, monkeypatch, caplog):
    assert PRIVATE_PYTHON is not None
    # as in a container without CAP_SYS_ADMIN: the probe through "unshare" fails
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name, path=None: "/bin/false")
    pool = make_pool(tmp_path)
    spec = make_spec(WHOAMI, interpreter=PRIVATE_PYTHON)
    try:
        out = json.loads(runner.run(call(pool, spec)).payload)
    finally:
        runner.run(pool.close())
    assert out["uid"] == 0
    assert out["prefix"] == os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(PRIVATE_PYTHON)), ".."))
    assert "no private mount" in caplog.text


def test_can_drop_judges_a_mounted_prefix_from_the_prefix_down():
    if os.geteuid() != 0:
        pytest.skip("only root drops privileges")
    home = Path(tempfile.mkdtemp())
    home.chmod(0o700)  # a private home
    prefix = home / "python"
    (prefix / "lib" / "python3.99").mkdir(parents=True)
    (prefix / "lib" / "secret").mkdir(mode=0o700)
    for path in (prefix, prefix / "lib", prefix / "lib" / "python3.99"):
        path.chmod(0o755)
    sandbox = Sandbox(drop_privileges=True)
    mountpoint = str(Path(tempfile.gettempdir()) / "lamina-test-mountpoint")
    try:
        assert not sandbox.can_drop([str(prefix / "lib" / "python3.99")])  # as the host sees it
        sandbox._mounts[mountpoint] = str(prefix)
        assert sandbox.can_drop([mountpoint + "/lib/python3.99", mountpoint + "/lib/python3.99/missing.zip"])
        assert not sandbox.can_drop([mountpoint + "/lib/secret"])
        prefix.chmod(0o700)
        sandbox._readable.clear()
        assert not sandbox.can_drop([mountpoint + "/lib/python3.99"])  # the prefix itself is private
    finally:
        sandbox.close()
        shutil.rmtree(home)


def test_interpreter_mount_is_only_for_unreachable_interpreters_when_dropping():
    if os.geteuid() != 0:
        pytest.skip("only root drops privileges")
    dropping, keeping = Sandbox(drop_privileges=True), Sandbox(drop_privileges=False)
    try:
        for python in ("/usr/bin/python3", "/usr/bin/python3.11"):
            if os.path.exists(python) and world_readable(python):
                assert dropping.interpreter_mount(python) is None
        if PRIVATE_PYTHON is not None:
            assert keeping.interpreter_mount(PRIVATE_PYTHON) is None
            assert dropping.interpreter_mount(PRIVATE_PYTHON) is not None
    finally:
        dropping.close()
        keeping.close()
