"""The same handlers without Lamina: the floor (a direct call) and the naive runner (a process per call)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.handlers import Handler
from bench.stats import Summary

# What a naive runner does per invoke: start Python, import the handler module, call it, print.
NAIVE = "import json, sys; import app; print(json.dumps(app.handler(json.loads(sys.argv[1]), None)))"


class _Context:
    """Enough of LambdaContext for the handlers here."""

    function_name = "bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _write(handler: Handler, directory: Path) -> None:
    (directory / "app.py").write_text(handler.source)


def direct_call(handler: Handler, n: int) -> Summary:
    """Import the module once (init), then time `handler(event, context)` alone, n times."""
    with tempfile.TemporaryDirectory(prefix="lamina-bench-peer-") as tmp:
        _write(handler, Path(tmp))
        spec = importlib.util.spec_from_file_location(f"bench_peer_{handler.key}", Path(tmp) / "app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn: Any = module.handler
        event: dict[str, Any] = {}
        context = _Context()
        samples = []
        clock = time.perf_counter_ns
        for _ in range(n):
            started = clock()
            fn(event, context)
            samples.append((clock() - started) / 1e6)
    return Summary.of(samples)


def subprocess_per_invoke(handler: Handler, n: int) -> Summary:
    """`python -c` importing the handler module and calling it, timed from spawn to exit."""
    env = {**os.environ, "AWS_REGION": "us-east-1"}
    samples = []
    with tempfile.TemporaryDirectory(prefix="lamina-bench-peer-") as tmp:
        _write(handler, Path(tmp))
        for _ in range(n):
            started = time.perf_counter()
            completed = subprocess.run(
                [sys.executable, "-c", NAIVE, "{}"], cwd=tmp, env=env, capture_output=True, timeout=60
            )
            samples.append((time.perf_counter() - started) * 1000)
            if completed.returncode != 0 or not json.loads(completed.stdout).get("ok"):
                raise RuntimeError(f"naive runner failed: {completed.stderr[-1000:]!r}")
    return Summary.of(samples)
