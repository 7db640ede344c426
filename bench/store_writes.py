"""Micro-benchmark of the store's per-invocation write path, without HTTP or environments.

Each "invocation" does what `InvokeService._finish` does: on an asyncio loop, build 5 log events
(START, two output lines, END, REPORT) and an InvocationRecord, call `append_logs_nowait` and
`record_invocation_nowait`, and await both futures (durable before acknowledged). N concurrent
clients, each with its own log stream (one environment per client), in one function's group.

Prints, per concurrency level: invocations/s, the group-commit writer thread's CPU time per
invocation (from /proc/self/task/<tid>/schedstat, in ns, else utime + stime), the event-loop
thread's CPU per invocation (building the rows and the `_nowait` calls run there), the whole
process's CPU per invocation, and the mean batch (invocations per commit).

    .venv/bin/python bench/store_writes.py                      # 16 and 64 clients, 4 s each
    .venv/bin/python bench/store_writes.py --clients 64 --seconds 8 --repeat 3 --json

Runs against whatever `lamina` is importable (PYTHONPATH=/some/other/src to compare trees).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from lamina.model.invocation import InvocationRecord, Outcome
from lamina.store.base import LogEvent
from lamina.store.sqlite import SqliteStore

GROUP = "/aws/lambda/bench"


def thread_cpu_ns(tid: int) -> int:
    """CPU time of one thread of this process, in ns."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def writer_tid() -> int:
    for t in threading.enumerate():
        if t.name == "lamina-writer" and t.native_id is not None:
            return t.native_id
    raise RuntimeError("no lamina-writer thread")


def invocation_rows(stream: str, n: int) -> tuple[list[LogEvent], InvocationRecord]:
    request_id = str(uuid.uuid4())
    started = time.time()
    start_ms = int(started * 1000)
    end_ms = start_ms + 1
    record = InvocationRecord(
        request_id=request_id,
        function="bench",
        version="$LATEST",
        start=started,
        duration_ms=0.41,
        billed_ms=1,
        memory_size=128,
        max_memory_used_mb=31,
        cold=False,
        init_duration_ms=None,
        outcome=Outcome.SUCCESS,
        error_type=None,
        log_stream=stream,
    )
    events = [
        LogEvent(start_ms, f"START RequestId: {request_id} Version: $LATEST", end_ms),
        LogEvent(start_ms, f"handling event {n}", end_ms),
        LogEvent(end_ms, f"[INFO]\t{request_id}\tdone in 0.4 ms", end_ms),
        LogEvent(end_ms, f"END RequestId: {request_id}", end_ms),
        LogEvent(
            end_ms,
            f"REPORT RequestId: {request_id}\tDuration: 0.41 ms\tBilled Duration: 1 ms\t"
            "Memory Size: 128 MB\tMax Memory Used: 31 MB\t",
            end_ms,
        ),
    ]
    return events, record


async def run_level(store: SqliteStore, clients: int, warmup: float, seconds: float) -> dict[str, float]:
    streams = [f"2026/11/27/[$LATEST]{uuid.uuid4().hex}" for _ in range(clients)]
    done = [0]
    phase = {"stop": False}

    async def client(i: int) -> None:
        stream = streams[i]
        n = 0
        while not phase["stop"]:
            events, record = invocation_rows(stream, n)
            await asyncio.gather(
                asyncio.wrap_future(store.append_logs_nowait(GROUP, stream, events)),
                asyncio.wrap_future(store.record_invocation_nowait(record)),
            )
            n += 1
            done[0] += 1

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.sleep(warmup)
    wtid, ltid = writer_tid(), threading.get_native_id()
    count0, commits0 = done[0], store.stats().commits
    w0, l0, p0, t0 = thread_cpu_ns(wtid), thread_cpu_ns(ltid), time.process_time_ns(), time.perf_counter_ns()
    await asyncio.sleep(seconds)
    w1, l1, p1, t1 = thread_cpu_ns(wtid), thread_cpu_ns(ltid), time.process_time_ns(), time.perf_counter_ns()
    count1, commits1 = done[0], store.stats().commits
    phase["stop"] = True
    await asyncio.gather(*tasks)
    n = max(1, count1 - count0)
    return {
        "clients": clients,
        "invocations": count1 - count0,
        "invocations_per_s": n / ((t1 - t0) / 1e9),
        "writer_us_per_inv": (w1 - w0) / 1e3 / n,
        "loop_us_per_inv": (l1 - l0) / 1e3 / n,
        "process_us_per_inv": (p1 - p0) / 1e3 / n,
        "writer_cpu_pct": 100 * (w1 - w0) / (t1 - t0),
        "inv_per_commit": n / max(1, commits1 - commits0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per level; the median is printed")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--dir", type=Path, help="where to put the database (default: a temporary directory)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per run instead of a table")
    args = parser.parse_args()

    try:
        import uvloop  # the server's loop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = asyncio.new_event_loop

    results: dict[int, list[dict[str, float]]] = {c: [] for c in args.clients}
    for _ in range(args.repeat):
        for clients in args.clients:
            # A fresh database per run: every run starts from the same state.
            with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
                store = SqliteStore.open(Path(tmp) / "lamina.db", synchronous=args.synchronous)
                loop = loop_factory()
                try:
                    result = loop.run_until_complete(run_level(store, clients, args.warmup, args.seconds))
                finally:
                    loop.close()
                    store.close()
            results[clients].append(result)
            if args.json:
                print(json.dumps({"synchronous": args.synchronous, **result}), flush=True)

    if not args.json:
        print(f"lamina from {Path(sys.modules['lamina'].__file__ or '').parent}, synchronous={args.synchronous}")
        header = (
            "clients",
            "invocations/s",
            "writer µs/inv",
            "writer CPU",
            "loop µs/inv",
            "process µs/inv",
            "inv/commit",
        )
        print("  ".join(f"{h:>14}" for h in header))
        for clients, runs in results.items():

            def med(key: str, runs: list[dict[str, float]] = runs) -> float:
                return statistics.median(r[key] for r in runs)

            row = (
                f"{clients}",
                f"{med('invocations_per_s'):,.0f}",
                f"{med('writer_us_per_inv'):.1f}",
                f"{med('writer_cpu_pct'):.0f}%",
                f"{med('loop_us_per_inv'):.1f}",
                f"{med('process_us_per_inv'):.1f}",
                f"{med('inv_per_commit'):.1f}",
            )
            print("  ".join(f"{c:>14}" for c in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
