"""Run every benchmark against a Lamina server of our own and write docs/benchmarks.md.

    .venv/bin/python bench/run.py            # the full run (~2 minutes), results to docs/benchmarks.md
    .venv/bin/python bench/run.py --quick    # a smoke run: few samples, written to a temp file

Sections: cold starts (forced by a configuration change, and first invokes of new functions),
warm sequential invokes (raw HTTP and boto3), throughput at 16 and 64 clients (bench/loadgen.py,
and wrk when installed), and the peers (direct call, fresh interpreter per invoke).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import latency, machine, peers, procs, sections, throughput
from bench.handlers import HANDLERS, TRIVIAL_HANDLER
from bench.invoke import RawInvoker
from bench.report import Results, render
from bench.server import HOST_RUNTIME, LaminaServer

DOC = machine.ROOT / "docs" / "benchmarks.md"
CONCURRENCY_LEVELS = (16, 64)
COLD_PAUSE_S = 0.1  # between retiring the warm environment and the cold invoke
MAX_CONCURRENCY = 256  # LAMINA_MAX_CONCURRENCY for our server: well above the 64 clients


@dataclass(frozen=True)
class Plan:
    cold_n: int  # forced cold starts per handler, each after a pause
    burst_n: int  # forced cold starts of the trivial handler, back-to-back
    new_n: int  # new functions per handler
    warm_n: int
    boto3_n: int
    load_warmup_s: float
    load_s: float
    direct_n: int
    naive_n: dict[str, int]


FULL = Plan(
    cold_n=100,
    burst_n=50,
    new_n=20,
    warm_n=5000,
    boto3_n=1000,
    load_warmup_s=1.5,
    load_s=8.0,
    direct_n=50_000,
    naive_n={"trivial": 40, "boto3": 20, "boto3-client": 20},
)
QUICK = Plan(
    cold_n=8,
    burst_n=8,
    new_n=3,
    warm_n=500,
    boto3_n=100,
    load_warmup_s=0.5,
    load_s=2.0,
    direct_n=5_000,
    naive_n={"trivial": 5, "boto3": 3, "boto3-client": 3},
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _terminate(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops the server


def measure_server(results: Results, plan: Plan, use_wrk: bool) -> None:
    server = LaminaServer({"LAMINA_MAX_CONCURRENCY": str(MAX_CONCURRENCY)})
    invoker: RawInvoker | None = None
    log(f"starting lamina up on port {server.port} (data dir {server.data_dir})")
    try:
        server.start()
        lam = server.client()
        invoker = RawInvoker(server.port)
        functions = {h.key: f"bench-cold-{h.key}" for h in HANDLERS}
        for h in HANDLERS:
            latency.deploy(lam, functions[h.key], h)
        latency.deploy(lam, "bench-warm", TRIVIAL_HANDLER)
        latency.deploy(lam, "bench-load", TRIVIAL_HANDLER)
        for name in [*functions.values(), "bench-warm", "bench-load"]:
            invoker.invoke(name)  # unpack the code and start the first environment: not measured

        interpreter = server.environment_interpreter()
        if interpreter:
            version = machine.python_version(interpreter)
            results.server_settings["Python (Lamina environments)"] = (
                f"{version} ({interpreter}), runtime {HOST_RUNTIME}"
            )

        log(f"cold starts: {plan.cold_n} per handler, forced by UpdateFunctionConfiguration")
        with procs.CpuMeter(server.pid) as meter:
            results.cold += latency.forced_cold(lam, invoker, functions, HANDLERS, plan.cold_n, COLD_PAUSE_S)
        results.sections["cold start (spaced)"] = meter.usage
        log(f"cold starts: {plan.burst_n} back-to-back (trivial)")
        with procs.CpuMeter(server.pid) as meter:
            results.cold += latency.forced_cold(lam, invoker, functions, [TRIVIAL_HANDLER], plan.burst_n, 0.0)
        results.sections["cold start (back-to-back)"] = meter.usage
        log(f"cold starts: {plan.new_n} new functions per handler")
        with procs.CpuMeter(server.pid) as meter:
            results.cold += latency.new_functions(lam, invoker, HANDLERS, plan.new_n, COLD_PAUSE_S)
        results.sections["cold start (new functions)"] = meter.usage

        log(f"warm: {plan.warm_n} raw HTTP invokes, {plan.boto3_n} boto3 invokes")
        with procs.CpuMeter(server.pid) as meter:
            results.warm.append(latency.warm_raw(invoker, "bench-warm", plan.warm_n))
        results.sections["warm (raw HTTP)"] = meter.usage
        with procs.CpuMeter(server.pid) as meter:
            results.warm.append(latency.warm_boto3(lam, "bench-warm", plan.boto3_n))
        results.sections["warm (boto3)"] = meter.usage

        wrk = throughput.wrk_path() if use_wrk else None
        if wrk:
            results.wrk = f"{throughput.wrk_version(wrk)} ({wrk})"
        for connections in CONCURRENCY_LEVELS:
            throughput.prewarm(server, "bench-load", connections, plan.load_warmup_s)
            log(f"throughput: {connections} clients, {plan.load_s:.0f} s (bench/loadgen.py)")
            run = throughput.run_loadgen(server, "bench-load", connections, plan.load_warmup_s, plan.load_s)
            results.load.append(run)
            results.sections[f"throughput {connections} (loadgen)"] = run.cpu
            if wrk:
                log(f"throughput: {connections} clients, {plan.load_s:.0f} s (wrk)")
                run = throughput.run_wrk(server, wrk, "bench-load", connections, plan.load_s)
                results.load.append(run)
                results.sections[f"throughput {connections} (wrk)"] = run.cpu
    finally:
        if invoker is not None:
            invoker.close()
        log("stopping the server")
        results.stragglers = server.stop()
        results.left_behind = server.left_behind
        if server.left_behind:
            log(f"WARNING: processes left behind: {server.left_behind}")


def measure_peers(results: Results, plan: Plan) -> None:
    for h in HANDLERS:
        log(f"peers: direct call ({h.key}, {plan.direct_n}), fresh python per invoke ({plan.naive_n[h.key]})")
        results.direct[h.key] = peers.direct_call(h, plan.direct_n)
        results.naive[h.key] = peers.subprocess_per_invoke(h, plan.naive_n[h.key])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lamina benchmarks; results to docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (written to a temp file)")
    parser.add_argument("--output", type=Path, help="where to write the report")
    parser.add_argument("--no-wrk", action="store_true", help="skip wrk even when it is installed")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    output = args.output or (
        Path(tempfile.gettempdir()) / "lamina-benchmarks-quick.md"
        if args.quick
        else machine.ROOT / "docs" / "benchmarks.md"
    )
    signal.signal(signal.SIGTERM, _terminate)
    command = ".venv/bin/python bench/run.py" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    started = time.monotonic()
    results = Results(
        command=command,
        quick=args.quick,
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine.describe(),
        revision=machine.git_revision(),
        server_settings={
            "Lamina server": f"`lamina up` on 127.0.0.1, LAMINA_MAX_CONCURRENCY={MAX_CONCURRENCY}, "
            "other settings default (LAMINA_PRELOAD=boto3, keep-alive 600 s, memory enforcement auto)",
        },
        loadavg_before=procs.loadavg(),
    )
    log(f"loadavg {results.loadavg_before}; {'quick' if args.quick else 'full'} run")
    steal_before = procs.steal_s()
    measure_server(results, plan, use_wrk=not args.no_wrk)
    measure_peers(results, plan)
    results.loadavg_after = procs.loadavg()
    results.steal_s = procs.steal_s() - steal_before
    results.elapsed_s = time.monotonic() - started
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(results) + sections.kept(output))  # sections other benchmarks own stay
    log(f"done in {results.elapsed_s:.0f} s; wrote {output}")
    return 1 if results.left_behind else 0


if __name__ == "__main__":
    sys.exit(main())
