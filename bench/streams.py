"""Streams benchmark: Lamina's Kinesis ingest and reads, over HTTP and in-process, next to Redis Streams.

    .venv/bin/python bench/streams.py            # full run (~1 minute), results to docs/benchmarks-streams.md
    .venv/bin/python bench/streams.py --quick    # a smoke run, written to a temp file

Every side ingests the same records (500-record batches of 100-byte records with random partition
keys over 4 shards / 4 Redis stream keys) from several producer threads, then reads everything
back. A Lamina put counts once its PutRecords call returned: it is committed (SQLite WAL,
synchronous=FULL) by then. Redis runs twice: with its default persistence (RDB snapshots; an XADD
reply means the record is in memory only) and with `appendfsync always` (fsynced before the reply,
the durability Lamina gives). Separate from `./dev bench` (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import machine
from bench.resp import Resp, RespError
from bench.server import LaminaServer
from bench.streams_report import Measure, Report, render

DOC = machine.ROOT / "docs" / "benchmarks-streams.md"
STREAM = "bench"
SHARDS = 4
BATCH = 500
RECORD_BYTES = 100
TARGET = "Kinesis_20131202."
FAILED = re.compile(rb'"FailedRecordCount"\s*:\s*(\d+)')


@dataclass(frozen=True)
class Plan:
    duration_s: float = 6.0
    warmup_s: float = 1.0
    producers: int = 2  # processes (HTTP, Redis)
    threads: int = 4  # per producer process: connections (HTTP, Redis) / threads (in-process: producers x threads)
    read_cap_s: float = 12.0
    batches: int = 16  # distinct pre-built batches each producer cycles through


def records(seed: int) -> list[tuple[str, bytes]]:
    """One batch: (partition key, 100 random bytes) x 500."""
    rnd = random.Random(seed)
    return [(f"pk-{rnd.getrandbits(48):012x}", rnd.randbytes(RECORD_BYTES)) for _ in range(BATCH)]


@dataclass
class Tally:
    """Records acknowledged in the measured window, and in all (warm-up and the tail included)."""

    window: int = 0
    total: int = 0
    failed: int = 0
    calls: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.window += other.window
        self.total += other.total
        self.failed += other.failed
        self.calls += other.calls
        self.errors += other.errors[:3]


def _drive(threads: int, send: Callable[[int], Callable[[], tuple[int, int]]], start: float, measure_from: float,
           stop: float) -> Tally:  # fmt: skip
    """Run `threads` loops of `send(i)()` → (acked, failed) from `start` to `stop`; count completions."""
    tallies = [Tally() for _ in range(threads)]

    def loop(i: int) -> None:
        tally = tallies[i]
        try:
            call = send(i)
            time.sleep(max(0.0, start - time.time()))
            while time.time() < stop:
                acked, failed = call()
                tally.calls += 1
                tally.total += acked
                tally.failed += failed
                if measure_from <= time.time() <= stop:
                    tally.window += acked
        except Exception as exc:  # reported, not raised: a dead producer shows in the numbers
            tally.errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out = Tally()
    for t in tallies:
        out.add(t)
    return out


def _in_processes(plan: Plan, worker: Callable[..., None], *args: Any) -> tuple[Tally, float]:
    """Run `worker(*args, seed, start, measure_from, stop, queue)` in `plan.producers` processes."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start = time.time() + 0.5
    measure_from, stop = start + plan.warmup_s, start + plan.warmup_s + plan.duration_s
    procs = [
        ctx.Process(target=worker, args=(*args, p, start, measure_from, stop, queue)) for p in range(plan.producers)
    ]
    for proc in procs:
        proc.start()
    total = Tally()
    for _ in procs:
        total.add(queue.get(timeout=plan.warmup_s + plan.duration_s + 120))
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return total, stop - measure_from


# --- Lamina over HTTP ----------------------------------------------------------------------------


def _post(conn: http.client.HTTPConnection, op: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", "/", body, {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + op})
    response = conn.getresponse()
    return response.status, response.read()


def http_producer(port: int, threads: int, batches: int, p: int, start: float, measure_from: float, stop: float,
                  queue: Any) -> None:  # fmt: skip
    bodies = []
    for b in range(batches):
        batch = [{"Data": base64.b64encode(d).decode(), "PartitionKey": k} for k, d in records(p * 1000 + b)]
        bodies.append(json.dumps({"StreamName": STREAM, "Records": batch}).encode())

    def send(i: int) -> Callable[[], tuple[int, int]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        turn = [i]

        def call() -> tuple[int, int]:
            turn[0] += 1
            status, data = _post(conn, "PutRecords", bodies[turn[0] % len(bodies)])
            if status != 200:
                raise RuntimeError(f"PutRecords answered {status}: {data[:200]!r}")
            match = FAILED.search(data)
            failed = int(match.group(1)) if match else BATCH
            return BATCH - failed, failed

        return call

    queue.put(_drive(threads, send, start, measure_from, stop))


def http_read(port: int, cap_s: float) -> tuple[int, float, bool]:
    """Read every shard from TRIM_HORIZON with GetRecords (Limit 10,000) until caught up or `cap_s`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    count = 0
    started = time.perf_counter()
    for shard in range(SHARDS):
        body = {"StreamName": STREAM, "ShardId": f"shardId-{shard:012d}", "ShardIteratorType": "TRIM_HORIZON"}
        status, data = _post(conn, "GetShardIterator", json.dumps(body).encode())
        iterator = json.loads(data)["ShardIterator"]
        while time.perf_counter() - started < cap_s:
            status, data = _post(conn, "GetRecords", json.dumps({"ShardIterator": iterator, "Limit": 10000}).encode())
            if status != 200:
                raise RuntimeError(f"GetRecords answered {status}: {data[:200]!r}")
            page = json.loads(data)
            count += len(page["Records"])
            iterator = page["NextShardIterator"]
            if not page["Records"] and page["MillisBehindLatest"] == 0:
                break
    conn.close()
    elapsed = time.perf_counter() - started
    return count, elapsed, elapsed >= cap_s


def bench_http(plan: Plan) -> tuple[Measure, Measure]:
    server = LaminaServer(env={"LAMINA_ACCESS_KEY_ID": "", "LAMINA_SECRET_ACCESS_KEY": ""})
    server.start(wait_for_zygote=False)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        status, data = _post(conn, "CreateStream", json.dumps({"StreamName": STREAM, "ShardCount": SHARDS}).encode())
        if status != 200:
            raise RuntimeError(f"CreateStream answered {status}: {data[:300]!r}")
        conn.close()
        tally, window = _in_processes(plan, http_producer, server.port, plan.threads, plan.batches)
        read, read_s, capped = http_read(server.port, plan.read_cap_s)
        ingest = Measure(
            "Lamina, HTTP PutRecords",
            tally.window / window,
            f"{plan.producers} processes x {plan.threads} keep-alive connections, raw HTTP (no SigV4)",
            durable=True,
            acked=tally.total,
            failed=tally.failed,
            errors=tally.errors,
        )
        reads = Measure("Lamina, HTTP GetRecords", read / read_s, f"1 client, {read:,} records, Limit 10,000",
                        durable=True, acked=read, complete=None if capped else read == tally.total)  # fmt: skip
        return ingest, reads
    finally:
        left = server.stop()
        if server.left_behind:
            print(f"warning: processes left behind: {server.left_behind} ({left})", file=sys.stderr)


# --- Lamina in-process ---------------------------------------------------------------------------


def bench_in_process(plan: Plan) -> tuple[Measure, Measure]:
    from lamina.sources.streams import Entry, IteratorType, SqliteStreamStore, StreamService
    from lamina.store.sqlite.database import Database

    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-streams-"))
    database = Database(tmp / "streams.db")
    try:
        service = StreamService(SqliteStreamStore(database))
        service.create_stream(STREAM, SHARDS)
        threads = plan.producers * plan.threads
        batches = [[Entry(d, k) for k, d in records(b)] for b in range(plan.batches)]

        def send(i: int) -> Callable[[], tuple[int, int]]:
            turn = [i]

            def call() -> tuple[int, int]:
                turn[0] += 1
                results = service.put_records(STREAM, batches[turn[0] % len(batches)])
                failed = sum(1 for r in results if r.error_code)
                return len(results) - failed, failed

            return call

        start = time.time() + 0.2
        measure_from, stop = start + plan.warmup_s, start + plan.warmup_s + plan.duration_s
        tally = _drive(threads, send, start, measure_from, stop)
        count = 0
        started = time.perf_counter()
        for shard in range(SHARDS):
            iterator = service.get_shard_iterator(STREAM, f"shardId-{shard:012d}", IteratorType.TRIM_HORIZON)
            while time.perf_counter() - started < plan.read_cap_s:
                page = service.get_records(iterator, 10000)
                count += len(page.records)
                iterator = page.next_iterator
                if not page.records and page.millis_behind_latest == 0:
                    break
        read_s = time.perf_counter() - started
        capped = read_s >= plan.read_cap_s
        ingest = Measure("Lamina, in-process put_records", tally.window / plan.duration_s,
                         f"{threads} threads, StreamService over SqliteStreamStore", durable=True, acked=tally.total,
                         failed=tally.failed, errors=tally.errors)  # fmt: skip
        reads = Measure("Lamina, in-process get_records", count / read_s, f"1 thread, {count:,} records, limit 10,000",
                        durable=True, acked=count, complete=None if capped else count == tally.total)  # fmt: skip
        return ingest, reads
    finally:
        database.close()
        shutil.rmtree(tmp, ignore_errors=True)


# --- Redis Streams -------------------------------------------------------------------------------


class RedisServer:
    """Debian's redis-server on a free port, in a temp dir, in the foreground of our own process."""

    def __init__(self, *extra: str) -> None:
        from lamina.testing import free_port

        self.tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-redis-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.tmp),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                *extra,
            ],
            stdout=open(self.tmp / "redis.log", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                client = Resp(self.port)
                client.call("PING")
                client.close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"redis-server did not start: {(self.tmp / 'redis.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def redis_producer(port: int, threads: int, batches: int, p: int, start: float, measure_from: float, stop: float,
                   queue: Any) -> None:  # fmt: skip
    pipelines = []
    for b in range(batches):
        commands = [Resp.encode("XADD", f"{STREAM}:{hash(k) % SHARDS}", "*", "pk", k, "d", d)
                    for k, d in records(p * 1000 + b)]  # fmt: skip
        pipelines.append(commands)

    def send(i: int) -> Callable[[], tuple[int, int]]:
        client = Resp(port)
        turn = [i]

        def call() -> tuple[int, int]:
            turn[0] += 1
            replies = client.pipeline(pipelines[turn[0] % len(pipelines)])
            failed = sum(1 for r in replies if isinstance(r, RespError))
            return len(replies) - failed, failed

        return call

    queue.put(_drive(threads, send, start, measure_from, stop))


def redis_read(port: int, cap_s: float) -> tuple[int, float, bool]:
    client = Resp(port)
    count = 0
    started = time.perf_counter()
    for shard in range(SHARDS):
        low = b"-"
        while time.perf_counter() - started < cap_s:
            entries = client.call("XRANGE", f"{STREAM}:{shard}", low, "+", "COUNT", 10000)
            if isinstance(entries, RespError):
                raise RuntimeError(str(entries))
            if not entries:
                break
            count += len(entries)
            low = b"(" + entries[-1][0]
    client.close()
    elapsed = time.perf_counter() - started
    return count, elapsed, elapsed >= cap_s


def bench_redis(plan: Plan, label: str, note: str, durable: bool, *extra: str) -> tuple[Measure, Measure]:
    redis = RedisServer(*extra)
    try:
        tally, window = _in_processes(plan, redis_producer, redis.port, plan.threads, plan.batches)
        read, read_s, capped = redis_read(redis.port, plan.read_cap_s)
        ingest = Measure(f"Redis Streams ({label}), pipelined XADD", tally.window / window,
                         f"{plan.producers} processes x {plan.threads} connections, 500 XADD per pipeline; {note}",
                         durable=durable, acked=tally.total, failed=tally.failed, errors=tally.errors)  # fmt: skip
        reads = Measure(f"Redis Streams ({label}), XRANGE", read / read_s, f"1 client, {read:,} records, COUNT 10,000",
                        durable=durable, acked=read, complete=None if capped else read == tally.total)  # fmt: skip
        return ingest, reads
    finally:
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run, written to a temp file")
    parser.add_argument("--out", type=Path, default=None, help=f"where to write the report [{DOC}]")
    args = parser.parse_args()
    plan = Plan(duration_s=2.0, warmup_s=0.5, read_cap_s=4.0) if args.quick else Plan()
    out = args.out or (Path(tempfile.gettempdir()) / "benchmarks-streams-quick.md" if args.quick else DOC)
    began = time.perf_counter()
    report = Report(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command="python bench/streams.py" + (" --quick" if args.quick else ""),
        machine={**machine.describe(), "Code": machine.git_revision()},
        plan=plan,
    )
    print("Lamina over HTTP...", flush=True)
    report.add(*bench_http(plan))
    print("Lamina in-process...", flush=True)
    report.add(*bench_in_process(plan))
    redis = shutil.which("redis-server")
    if redis is None:
        print("redis-server is not installed: `apt-get install -y redis-server` (Debian/Ubuntu) to compare with "
              "Redis Streams; reporting Redis as not available.", file=sys.stderr)  # fmt: skip
        report.redis_missing = True
    else:
        version = subprocess.run([redis, "--version"], capture_output=True, text=True).stdout.split()
        report.machine["Redis"] = next((v[2:] for v in version if v.startswith("v=")), "unknown")
        print("Redis Streams, default persistence...", flush=True)
        report.add(*bench_redis(plan, "default persistence", "RDB snapshots, AOF off: a reply means in memory",
                                False))  # fmt: skip
        print("Redis Streams, appendfsync always...", flush=True)
        report.add(*bench_redis(plan, "AOF, appendfsync always", "fsynced before each reply (group-committed)", True,
                                "--appendonly", "yes", "--appendfsync", "always"))  # fmt: skip
    report.elapsed_s = time.perf_counter() - began
    text = render(report)
    out.write_text(text)
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
