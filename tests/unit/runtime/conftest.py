"""Fixtures for runtime tests: real zygotes, real processes, handlers written to temp dirs.

Each test module shares one event loop and one pool (zygotes start once per module); tests use
their own spec keys so they do not see each other's environments. pytest-asyncio is not used:
`runner.run(coro)` drives the module's loop.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.config import Settings
from lamina.runtime.base import EnvironmentSpec, Invocation, RunResult
from lamina.runtime.pool import ProcessPool

# Built once per machine and reused across runs: the Python 3.9 set is a pip install.
PACKAGES_DIR = Path(tempfile.gettempdir()) / "lamina-test-runtime-packages"
PY39 = "/root/.pyenv/versions/3.9.18/bin/python3.9"
HOST_RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"
CODE_ROOT = Path(tempfile.mkdtemp(prefix="lamina-test-code-"))
CODE_ROOT.chmod(0o755)
atexit.register(shutil.rmtree, CODE_ROOT, True)


class Runner:
    """LAMINA_TEST_LOOP=uvloop runs the runtime tests on uvloop (the server's loop)."""

    def __init__(self) -> None:
        if os.environ.get("LAMINA_TEST_LOOP") == "uvloop":
            import uvloop

            self.loop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(asyncio.wait_for(coro, 60))

    def close(self) -> None:
        self.loop.close()


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    r = Runner()
    yield r
    r.close()


def make_pool(tmp: Path, **settings: object) -> ProcessPool:
    options: dict[str, object] = {"data_dir": tmp, "keep_alive_seconds": 600.0}
    options.update(settings)
    pool_keys = ("max_processes", "drop_privileges", "init_timeout_s", "spares", "preload_services")
    pool_args = {k: options.pop(k) for k in pool_keys if k in options}
    return ProcessPool(Settings(**options), packages_dir=PACKAGES_DIR, **pool_args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pool(runner: Runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessPool]:
    p = make_pool(tmp_path_factory.mktemp("pool"))
    yield p
    runner.run(p.close())


def write_code(source: str, files: dict[str, str] | None = None, module: str = "app") -> Path:
    """A world-readable code dir (so environments may run under their own uid)."""
    code = Path(tempfile.mkdtemp(prefix="code-", dir=CODE_ROOT))
    code.chmod(0o755)
    (code / f"{module}.py").write_text(textwrap.dedent(source))
    for name, text in (files or {}).items():
        path = code / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for dirpath, dirnames, filenames in os.walk(code):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return code


def make_spec(
    source: str,
    *,
    handler: str = "app.handler",
    timeout_s: float = 3.0,
    memory_mb: int = 128,
    runtime: str = HOST_RUNTIME,
    interpreter: str = sys.executable,
    preload: tuple[str, ...] = (),
    files: dict[str, str] | None = None,
    env_vars: dict[str, str] | None = None,
) -> EnvironmentSpec:
    code = write_code(source, files)
    name = "fn" + uuid.uuid4().hex[:8]
    return EnvironmentSpec(
        key=(name, "$LATEST", code.name),
        function_name=name,
        version="$LATEST",
        handler=handler,
        runtime=runtime,
        interpreter=interpreter,
        code_dir=code,
        memory_mb=memory_mb,
        timeout_s=timeout_s,
        env_vars={"AWS_REGION": "us-east-1", **(env_vars or {})},
        preload=preload,
    )


def invocation(payload: bytes = b"{}", timeout_s: float = 3.0, **fields: object) -> Invocation:
    return Invocation(
        request_id=str(uuid.uuid4()),
        payload=payload,
        deadline_ms=int(time.time() * 1000 + timeout_s * 1000),
        invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:fn",
        **fields,  # type: ignore[arg-type]
    )


async def call(pool: ProcessPool, spec: EnvironmentSpec, payload: bytes = b"{}", **fields: object) -> RunResult:
    async with pool.lease(spec) as env:
        return await env.invoke(invocation(payload, spec.timeout_s, **fields))


def gone(pid: int) -> bool:
    """The process no longer exists (or is a zombie about to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:  # FileNotFoundError, or ProcessLookupError while it is being torn down
        return True


def wait_gone(pids: list[int], timeout: float = 3.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if not gone(p)]
        time.sleep(0.02)
    return alive


def processes_in_group(pgid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(name))
    return found
