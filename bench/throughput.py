"""Concurrent load from another process: bench/loadgen.py (asyncio, raw sockets) and wrk when installed.

Each run is bracketed by a CpuMeter, so the report can say who used the two cores: the server
process, the environments, the load generator, or something else on the machine.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.procs import CpuMeter, CpuUsage
from bench.server import LaminaServer

LOADGEN = Path(__file__).with_name("loadgen.py")

# wrk's Lua hooks: POST `{}`, count responses that are not 200 or carry X-Amz-Function-Error in
# every thread, and print one JSON line from done().
WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or headers["x-amz-function-error"] or headers["X-Amz-Function-Error"] then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total_bad = 0
  for _, t in ipairs(threads) do total_bad = total_bad + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bad": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "socket_errors": %d, "status_errors": %d}\\n',
    summary.requests, summary.duration, total_bad, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class LoadResult:
    tool: str
    connections: int
    window_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    bad: int  # non-200, X-Amz-Function-Error or socket errors
    cold_starts: int  # environments started during the run (0 once warmed up)
    cpu: CpuUsage
    database_mb: float  # at the start of the run
    note: str = ""


def path_for(function: str) -> str:
    return f"/2015-03-31/functions/{function}/invocations"


def _loadgen(server: LaminaServer, function: str, connections: int, warmup: float, duration: float) -> dict:
    args = [sys.executable, str(LOADGEN), "--port", str(server.port), "--path", path_for(function)]
    args += ["--connections", str(connections), "--warmup", str(warmup), "--duration", str(duration)]
    completed = subprocess.run(args, capture_output=True, text=True, timeout=warmup + duration + 120)
    if completed.returncode != 0:
        raise RuntimeError(f"loadgen failed: {completed.stderr[-2000:]}")
    return dict(json.loads(completed.stdout))


def prewarm(server: LaminaServer, function: str, connections: int, seconds: float, rounds: int = 4) -> None:
    """Start enough environments for `connections` clients before anything is measured: repeat
    until a round of load needs no new environment."""
    for _ in range(rounds):
        before = server.health()["cold_starts"]
        _loadgen(server, function, connections, seconds, 0.0)
        if server.health()["cold_starts"] == before:
            return


def run_loadgen(server: LaminaServer, function: str, connections: int, warmup: float, duration: float) -> LoadResult:
    database_mb = server.database_mb()
    before = server.health()
    with CpuMeter(server.pid) as meter:
        data = _loadgen(server, function, connections, warmup, duration)
    bad = data["non_200"] + data["function_errors"] + len(data["connection_errors"])
    note = "; ".join(data["connection_errors"])
    return LoadResult(
        tool=f"bench/loadgen.py ({data['loop']})",
        connections=connections,
        window_s=duration,
        requests=data["requests"],
        rps=data["rps"],
        p50_ms=data["p50_ms"],
        p90_ms=data["p90_ms"],
        p99_ms=data["p99_ms"],
        max_ms=data["max_ms"],
        bad=bad,
        cold_starts=server.health()["cold_starts"] - before["cold_starts"],
        cpu=meter.usage,
        database_mb=database_mb,
        note=note,
    )


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version(wrk: str) -> str:
    completed = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    text = (completed.stdout + completed.stderr).strip().splitlines()
    return text[0] if text else "wrk"


def run_wrk(server: LaminaServer, wrk: str, function: str, connections: int, duration: float) -> LoadResult:
    """wrk has no warm-up phase: run it after bench/loadgen.py at the same concurrency."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    seconds = max(1, math.ceil(duration))
    args = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script.name]
    args.append(server.endpoint + path_for(function))
    database_mb = server.database_mb()
    before = server.health()
    try:
        with CpuMeter(server.pid) as meter:
            completed = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120)
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({completed.returncode}): {completed.stdout[-1000:]} {completed.stderr[-1000:]}"
        )
    data = json.loads(line[len("WRKJSON ") :])
    window = data["duration_us"] / 1e6
    return LoadResult(
        tool="wrk -t2 (Lua checks status + header)",
        connections=connections,
        window_s=window,
        requests=data["requests"],
        rps=data["requests"] / window,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        bad=data["bad"] + data["socket_errors"],  # non-2xx responses are already in "bad"
        cold_starts=server.health()["cold_starts"] - before["cold_starts"],
        cpu=meter.usage,
        database_mb=database_mb,
    )
