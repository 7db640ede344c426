"""Async invocation benchmark: Lamina's Event invokes next to Celery on a Redis broker.

    .venv/bin/python bench/async_invoke.py           # full run (~8 minutes); section in docs/benchmarks.md
    .venv/bin/python bench/async_invoke.py --quick   # a smoke run, printed only

Needs the `bench` extra (`pip install -e '.[bench]'`: celery, redis) and Debian's redis-server.

Both sides run the same no-op task with the same concurrency (Lamina: LAMINA_MAX_CONCURRENCY=C
for the one function; Celery: one prefork worker with -c C). The task's first statement sends a
UDP datagram (event id, time) to a collector in this process, so "handler start" is measured the
same way on both sides.

1. Accept throughput, at each of a few offered loads: N requests kept in flight (2 client
   processes x N/2 threads) send events as fast as they are accepted (Lamina: raw HTTP Invoke with
   InvocationType Event, counted when the 202 arrived, i.e. once committed with fsync; Celery:
   apply_async, counted when it returned, i.e. once Redis has the message in memory: Celery's
   default, non-durable setup). The consumers run meanwhile. A side's throughput is its best rate
   over the loads: a closed loop of N clients measures N / (time per request) until the server
   saturates, and Lamina's time per request includes the wait for its group commit's fsync, so a
   fixed small N measures that latency rather than what the server can accept. Every load is run
   on both sides and reported, so the ratio at each load stays visible.
2. Latency, enqueue -> handler start, p50/p99: a paced load well below either side's capacity
   (events sent at a fixed rate by a few threads, staggered so they are evenly spaced), so it
   measures the path, not a backlog.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import machine, sections
from bench.server import HOST_RUNTIME, ROLE, LaminaServer
from bench.stats import Summary
from bench.streams import RedisServer

DOC = machine.ROOT / "docs" / "benchmarks.md"
SECTION = "async-invoke"
FUNCTION = "noop"

HANDLER = """
import os, socket, time
_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
_to = ("127.0.0.1", int(os.environ["BENCH_UDP_PORT"]))
def handler(event, context):
    _sock.sendto(("%s %r" % (event["id"], time.time())).encode(), _to)
"""

CELERY_TASKS = """
import os, socket, time
from celery import Celery
app = Celery("bench", broker=os.environ["BENCH_BROKER"])
app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
_to = ("127.0.0.1", int(os.environ["BENCH_UDP_PORT"]))
@app.task(name="noop")
def noop(event):
    _sock.sendto(("%s %r" % (event["id"], time.time())).encode(), _to)
"""


@dataclass(frozen=True)
class Plan:
    concurrency: int = 4  # function concurrency / Celery worker processes
    producers: int = 2  # client processes
    in_flight: tuple[int, ...] = (16, 32, 64, 128)  # offered loads: requests outstanding (producers x threads)
    warmup_s: float = 1.0
    duration_s: float = 6.0  # per load
    paced_threads: int = 4
    paced_rate: float = 50.0  # events/s per paced thread
    paced_n: int = 1500  # events in the latency phase
    drain_cap_s: float = 120.0


QUICK = Plan(in_flight=(16, 64), duration_s=2.0, warmup_s=0.5, paced_n=300, drain_cap_s=60.0)


@dataclass
class Load:
    """The throughput phase at one offered load."""

    in_flight: int
    accepted_per_s: float = 0.0
    processed_per_s: float = 0.0  # events accepted in the phase / (phase + drain): end-to-end rate
    drain_s: float = 0.0  # after the throughput window: until every accepted event had started
    lost: int = 0  # accepted events whose handler never started (within the drain cap)


@dataclass
class Side:
    name: str
    loads: list[Load] = field(default_factory=list)  # in Plan.in_flight's order
    errors: list[str] = field(default_factory=list)
    latency: Summary | None = None
    lost: int = 0  # accepted events whose handler never started, over every phase
    rounds: list[str] = field(default_factory=list)  # per round: accepted/s per load, p50 (when combined)

    def peak(self) -> Load:
        """The load at which this side accepted the most events per second."""
        return max(self.loads, key=lambda load: load.accepted_per_s)


class Collector:
    """Receives (id, time) datagrams from the handlers: the first start of each event."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.started: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self.sock.recv(256)
            except OSError:
                return
            key, _, when = data.decode().partition(" ")
            self.started.setdefault(key, float(when))

    def wait_for(self, keys: set[str], cap_s: float) -> tuple[int, float]:
        """(how many of `keys` never started, seconds waited)."""
        began = time.monotonic()
        while time.monotonic() - began < cap_s:
            missing = sum(1 for k in keys if k not in self.started)
            if not missing:
                break
            time.sleep(0.05)
        return sum(1 for k in keys if k not in self.started), time.monotonic() - began

    def close(self) -> None:
        self.sock.close()


# --- clients -------------------------------------------------------------------------------------


def lamina_sender(port: int) -> Callable[[str], None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    path = f"/2015-03-31/functions/{FUNCTION}/invocations"
    headers = {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"}

    def send(key: str) -> None:
        conn.request("POST", path, json.dumps({"id": key}).encode(), headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 202:
            raise RuntimeError(f"Invoke answered {response.status}: {body[:200]!r}")

    return send


def celery_sender(broker: str, tasks_dir: str) -> Callable[[str], None]:
    import importlib.util

    os.environ["BENCH_BROKER"] = broker
    os.environ.setdefault("BENCH_UDP_PORT", "9")
    # Loaded afresh each time: each round has its own broker (a cached module would keep the old one).
    spec = importlib.util.spec_from_file_location("celery_tasks", Path(tasks_dir) / "celery_tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    task = module.noop

    def send(key: str) -> None:
        task.apply_async(args=[{"id": key}])

    return send


def _producer(make: Callable[[], Callable[[str], None]], tag: str, p: int, threads: int, start: float,
              measure_from: float, stop: float, queue: Any) -> None:  # fmt: skip
    """Send as fast as accepted from `threads` threads; report (ids accepted, count in window, errors)."""
    accepted: list[list[str]] = [[] for _ in range(threads)]
    window = [0] * threads
    errors: list[str] = []

    def loop(i: int) -> None:
        try:
            send = make()
            time.sleep(max(0.0, start - time.time()))
            n = 0
            while time.time() < stop:
                key = f"{tag}t{p}-{i}-{n}"
                send(key)
                n += 1
                accepted[i].append(key)
                if time.time() >= measure_from:
                    window[i] += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(([k for keys in accepted for k in keys], sum(window), errors))


def _paced(make: Callable[[], Callable[[str], None]], tag: str, threads: int, rate: float, n: int) -> dict[str, float]:
    """Send `n` events at `rate` per thread from `threads` threads; return id -> time sent."""
    sent: dict[str, float] = {}
    lock = threading.Lock()
    per_thread = n // threads

    began = time.perf_counter() + 0.2  # every thread's connection is open by then

    def loop(i: int) -> None:
        send = make()
        # Staggered: thread i sends i/threads of a period after thread 0, so events are evenly
        # spaced. In step, the threads fired together and each tick was a burst of `threads`
        # events queueing behind each other (client and server), which is a backlog, not the path.
        offset = i / (rate * threads)
        for k in range(per_thread):
            time.sleep(max(0.0, began + offset + k / rate - time.perf_counter()))
            key = f"{tag}l{i}-{k}"
            t = time.time()
            send(key)
            with lock:
                sent[key] = t

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sent


def measure(side: Side, tag: str, plan: Plan, make: Callable[[], Callable[[str], None]], collector: Collector) -> Side:
    """Both phases for one side; `tag` prefixes its event ids (the collector is shared)."""
    # Warm up the path (environments, worker processes, connections) with a few paced events.
    _paced(make, tag + "w", 2, 20.0, 40)
    for n in plan.in_flight:
        side.loads.append(_throughput(side, f"{tag}n{n}", plan, n, make, collector))
    sent = _paced(make, tag, plan.paced_threads, plan.paced_rate, plan.paced_n)
    missing, _ = collector.wait_for(set(sent), 30.0)
    side.lost += missing
    side.latency = Summary.of([(collector.started[k] - t) * 1000 for k, t in sent.items() if k in collector.started])
    return side


def _throughput(side: Side, tag: str, plan: Plan, in_flight: int, make: Callable[[], Callable[[str], None]],
                collector: Collector) -> Load:  # fmt: skip
    """Keep `in_flight` sends outstanding for the phase, then wait until every accepted event started."""
    load = Load(in_flight)
    threads = max(1, in_flight // plan.producers)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start = time.time() + 0.5
    measure_from, stop = start + plan.warmup_s, start + plan.warmup_s + plan.duration_s
    procs = [ctx.Process(target=_producer, args=(make, tag, p, threads, start, measure_from, stop, queue))
             for p in range(plan.producers)]  # fmt: skip
    for proc in procs:
        proc.start()
    keys: set[str] = set()
    accepted = 0
    for _ in procs:
        keys_of, window, errors = queue.get(timeout=plan.warmup_s + plan.duration_s + 120)
        keys.update(keys_of)
        accepted += window
        side.errors += errors[:3]
    for proc in procs:
        proc.join(timeout=30)
    load.accepted_per_s = accepted / plan.duration_s
    print(f"{side.name}, {in_flight} in flight: {accepted} in window, {len(keys)} accepted in all",
          file=sys.stderr, flush=True)  # fmt: skip
    load.lost, load.drain_s = collector.wait_for(keys, plan.drain_cap_s)
    side.lost += load.lost
    load.processed_per_s = (len(keys) - load.lost) / (plan.warmup_s + plan.duration_s + load.drain_s)
    return load


# --- the two sides -------------------------------------------------------------------------------


def bench_lamina(plan: Plan, collector: Collector, tag: str) -> Side:
    import io
    import zipfile

    server = LaminaServer(env={"LAMINA_ACCESS_KEY_ID": "", "LAMINA_SECRET_ACCESS_KEY": "",
                               "LAMINA_MAX_CONCURRENCY": str(plan.concurrency)})  # fmt: skip
    server.start()
    try:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("app.py", HANDLER)
        server.client().create_function(
            FunctionName=FUNCTION, Runtime=HOST_RUNTIME, Role=ROLE, Handler="app.handler",
            Code={"ZipFile": buffer.getvalue()}, Environment={"Variables": {"BENCH_UDP_PORT": str(collector.port)}},
        )  # fmt: skip
        return measure(
            Side("Lamina (Event invoke, durable 202)"), tag, plan, lambda: lamina_sender(server.port), collector
        )
    finally:
        server.stop()


def bench_celery(plan: Plan, collector: Collector, tag: str) -> Side:
    redis = RedisServer()
    tasks_dir = Path(tempfile.mkdtemp(prefix="lamina-bench-celery-"))
    (tasks_dir / "celery_tasks.py").write_text(textwrap.dedent(CELERY_TASKS))
    broker = f"redis://127.0.0.1:{redis.port}/0"
    env = {**os.environ, "BENCH_BROKER": broker, "BENCH_UDP_PORT": str(collector.port), "PYTHONPATH": str(tasks_dir)}
    celery = str(Path(sys.executable).with_name("celery"))
    worker = subprocess.Popen(
        [celery, "-A", "celery_tasks", "worker", "--pool", "prefork", "-c", str(plan.concurrency), "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=tasks_dir, env=env, stdout=open(tasks_dir / "worker.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
        start_new_session=True,
    )  # fmt: skip
    try:
        send = celery_sender(broker, str(tasks_dir))
        deadline = time.monotonic() + 60
        while tag + "ready" not in collector.started:  # the worker is up once it has run one task
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start: {(tasks_dir / 'worker.log').read_text()[-2000:]}")
            send(tag + "ready")
            time.sleep(0.5)
        return measure(Side("Celery + Redis (apply_async, default setup)"), tag, plan,
                       lambda: celery_sender(broker, str(tasks_dir)), collector)  # fmt: skip
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, 9)
            worker.wait()
        redis.stop()
        shutil.rmtree(tasks_dir, ignore_errors=True)


def combine(sides: list[Side]) -> Side:
    """The median of each number over the rounds (this VM's run-to-run noise is ~20%)."""
    import statistics

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    lats = [s.latency for s in sides if s.latency is not None and s.latency.n]
    out = Side(sides[0].name)
    for i, first in enumerate(sides[0].loads):
        at = [s.loads[i] for s in sides]
        out.loads.append(Load(first.in_flight, accepted_per_s=med([x.accepted_per_s for x in at]),
                              processed_per_s=med([x.processed_per_s for x in at]),
                              drain_s=med([x.drain_s for x in at]), lost=sum(x.lost for x in at)))  # fmt: skip
    out.lost = sum(s.lost for s in sides)
    out.errors = [e for s in sides for e in s.errors][:3]
    if lats:
        out.latency = Summary(n=sum(x.n for x in lats), p50=med([x.p50 for x in lats]), p90=med([x.p90 for x in lats]),
                              p99=med([x.p99 for x in lats]), min=min(x.min for x in lats),
                              max=max(x.max for x in lats))  # fmt: skip
    out.rounds = [
        ", ".join(f"{x.accepted_per_s:,.0f}/s at {x.in_flight}" for x in s.loads)
        + f"; p50 {_ms(s.latency.p50 if s.latency else None)}"
        for s in sides
    ]
    return out


# --- the report ----------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.1f} ms"


def render(plan: Plan, lamina: Side, celery: Side | None, header: dict[str, str]) -> str:
    sides = [lamina, *([celery] if celery else [])]
    loads = ", ".join(str(n) for n in plan.in_flight)
    short = [side.name.split(" (")[0] for side in sides]
    columns = ["requests in flight", *(f"{name} accepted/s" for name in short),
               *(["Lamina / Celery"] if celery else []),
               *(f"{name} {what}" for what in ("started/s", "time per request", "backlog drained in")
                 for name in short)]  # fmt: skip
    lines = [
        "## Asynchronous invocation: Lamina vs Celery on Redis",
        "",
        f"Generated {header['date']} by `{header['command']}` ({header['elapsed']}); machine as above unless noted: "
        f"{header['machine']}. Code: {header['revision']}. Celery {header['celery']}, Redis {header['redis']}.",
        "",
        f"Same no-op task, same concurrency ({plan.concurrency}: LAMINA_MAX_CONCURRENCY for the one function; one "
        f"prefork Celery worker with `-c {plan.concurrency}`). Its first statement sends a UDP datagram to the "
        'benchmark, which is where "handler start" is taken on both sides. **Accept throughput**: at each offered '
        f"load ({loads} requests in flight: {plan.producers} client processes, each with half as many threads, "
        f"each thread sending its next event as soon as the last was accepted), the clients send for "
        f"{plan.duration_s:g} s after a {plan.warmup_s:g} s warm-up, while the consumers run. A Lamina event counts "
        "when its 202 arrived: committed to SQLite (WAL, synchronous=FULL) first, so it survives kill -9 and power "
        "loss. A Celery event counts when `apply_async` returned: Redis has it in memory (default setup: RDB "
        "snapshots, no AOF; the worker acks on receipt). A side's **throughput** is its best rate over the loads. "
        "A closed loop of N clients accepts at most N / (time per request), and a durable acknowledgement waits "
        "for a group commit's fsync, so a small N measures Lamina's latency per request rather than how many "
        "events it can accept; every load is shown for both sides. **Time per request**: the mean time a "
        "client waited for each acceptance, N / (accepted events/s). **Started events/s**: the events accepted "
        "during a throughput phase (warm-up included) divided by the time until the last of them had started "
        "(the phase plus the backlog's drain). **Latency**: enqueue (client, before the call) to handler start, "
        f"{plan.paced_n} events sent at a fixed {plan.paced_threads} x {plan.paced_rate:g}/s (the threads "
        "staggered, so events are evenly spaced), well below either side's capacity. Clients, servers and "
        "workers share the machine's cores. Each number is the median of "
        f"{header['rounds']} round(s) (a fresh server, worker and broker each round, the two sides alternating); "
        "the rounds are listed below the tables.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---:|" * len(columns),
    ]  # fmt: skip
    for i, n in enumerate(plan.in_flight):
        at = [s.loads[i] for s in sides]
        row = [str(n), *(f"{x.accepted_per_s:,.0f}" for x in at)]
        if celery:
            row.append(_ratio(at[0].accepted_per_s, at[1].accepted_per_s))
        row += [f"{x.processed_per_s:,.0f}" for x in at]
        row += [_ms(1000 * n / x.accepted_per_s if x.accepted_per_s else None) for x in at]  # Little's law
        row += [f"{x.drain_s:.1f} s" for x in at]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "| | throughput: best accepted events/s | at | enqueue -> start p50 | p99 | max | all started |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for side in sides:
        lat, peak = side.latency, side.peak()
        lines.append(
            f"| {side.name} | {peak.accepted_per_s:,.0f} | {peak.in_flight} in flight | "
            f"{_ms(lat.p50 if lat else None)} | {_ms(lat.p99 if lat else None)} | {_ms(lat.max if lat else None)} | "
            f"{'yes' if not side.lost else f'no ({side.lost} missing)'} |"
        )
        if side.errors:
            lines.append(f"| ({side.name} errors: {'; '.join(side.errors)}) | | | | | | |")
    lines.append("")
    for side in sides:
        if side.rounds:
            lines.append(f"- Rounds, {side.name}: {'; '.join(side.rounds)}.")
    if celery and celery.loads[0].accepted_per_s and celery.peak().accepted_per_s and lamina.latency and celery.latency:
        t_ratio = lamina.peak().accepted_per_s / celery.peak().accepted_per_s
        low = lamina.loads[0].accepted_per_s / celery.loads[0].accepted_per_s
        l_ratio = lamina.latency.p50 / celery.latency.p50 if celery.latency.p50 else float("nan")
        p99_ratio = lamina.latency.p99 / celery.latency.p99 if celery.latency.p99 else float("nan")
        lines += [
            f"- Throughput (each side's best): Lamina / Celery = **{t_ratio:.2f}x** "
            f"(goal >= 2x: **{'met' if t_ratio >= 2 else 'not met'}**). At the smallest load "
            f"({plan.in_flight[0]} in flight) it is {low:.2f}x.",
            f"- Latency p50: Lamina / Celery = **{l_ratio:.2f}x** (goal <= 0.5x: "
            f"**{'met' if l_ratio <= 0.5 else 'not met'}**); p99: {p99_ratio:.2f}x.",
        ]
    elif celery is None:
        lines.append("- Celery was not measured (the `bench` extra or redis-server is missing).")
    return "\n".join(lines) + "\n"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run, printed only")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per side, medians reported [3; quick 1]")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    rounds = args.rounds or (1 if args.quick else 3)
    began = time.monotonic()
    collector = Collector()
    celery_version = redis_version = "n/a"
    try:
        import celery as celery_pkg

        celery_version = celery_pkg.__version__
    except ImportError:
        print("celery is not installed: pip install -e '.[bench]'", file=sys.stderr)
    redis_server = shutil.which("redis-server")
    with_celery = bool(redis_server) and celery_version != "n/a"
    if redis_server and with_celery:
        version = subprocess.run([redis_server, "--version"], capture_output=True, text=True).stdout.split()
        redis_version = next((v[2:] for v in version if v.startswith("v=")), "unknown")
    lamina_rounds: list[Side] = []
    celery_rounds: list[Side] = []
    for r in range(rounds):  # alternating, so a slow spell of the machine hits both sides
        print(f"round {r + 1}/{rounds}: Lamina...", flush=True)
        lamina_rounds.append(bench_lamina(plan, collector, f"lamina{r}-"))
        if with_celery:
            print(f"round {r + 1}/{rounds}: Celery...", flush=True)
            celery_rounds.append(bench_celery(plan, collector, f"celery{r}-"))
    collector.close()
    lamina = combine(lamina_rounds)
    celery_side = combine(celery_rounds) if celery_rounds else None
    described = machine.describe()
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": ".venv/bin/python bench/async_invoke.py"
        + (" --quick" if args.quick else "")
        + (f" --rounds {args.rounds}" if args.rounds else ""),
        "rounds": str(rounds),
        "elapsed": f"{time.monotonic() - began:.0f} s",
        "machine": f"{described['CPU']}, {described['Cores']} cores, {described['RAM']}",
        "revision": machine.git_revision(),
        "celery": celery_version,
        "redis": redis_version,
    }
    text = render(plan, lamina, celery_side, header)
    print(text)
    if not args.quick:
        sections.replace(DOC, SECTION, text)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
