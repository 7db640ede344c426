"""Event-source-mapping benchmark: PutRecords → Lamina mapping → no-op handler, next to a Redis
Streams consumer-group loop doing the same work in the same run.

    .venv/bin/python bench/mappings.py            # full run (~2-3 minutes), results into docs/benchmarks.md
    .venv/bin/python bench/mappings.py --quick    # a smoke run, printed only

Throughput: N 100-byte records with random partition keys go into a 4-shard stream (Redis: 4
stream keys) from producer threads while the mapping (Redis: one consumer per key, XREADGROUP +
XACK) processes them; records/s = N / (last record checkpointed - first put), at batch sizes
100 / 1,000 / 10,000 (BatchSize; Redis: XREADGROUP COUNT). Lamina's side is durable end to end:
each put is committed before it is acknowledged and each checkpoint is committed (fsync) before
the next batch; Redis runs with its default persistence (nothing fsynced).
The live runs are repeated with `LAMINA_EDGE_WORKERS=1` (a second process takes the puts).
Latency: one record every 20 ms at low load, window 0; put → handler = the handler's clock when
it runs minus the producer's clock just before PutRecords (Redis: before XADD, consumer's clock).
AWS's anchors: ~200 ms (shared polling, ~1 s poll per shard) and ~70 ms (enhanced fan-out).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import machine, sections
from bench.resp import Resp
from bench.server import HOST_RUNTIME, ROLE, LaminaServer
from bench.streams import RedisServer

DOC = machine.ROOT / "docs" / "benchmarks.md"
SHARDS = 4
RECORD_BYTES = 100
PUT_BATCH = 500
NOOP = "def handler(event, context):\n    return None\n"
STAMP = (
    "import base64, time\ndef handler(event, context):\n    now = time.time()\n"
    "    for r in event['Records']:\n"
    "        print('T %.6f %s' % (now, base64.b64decode(r['kinesis']['data']).decode()))\n"
)  # one line per record: its index, and when the handler started with it
TARGET = "Kinesis_20131202."


@dataclass(frozen=True)
class Plan:
    records: dict[int, int]  # batch size → records to push through
    # Each producer keeps one PutRecords in flight, and a put is answered only once committed
    # (fsync): with 2 the benchmark measured mostly a put's round trip, not what the system moves.
    producers: int = 4
    rounds: int = 3  # live runs at batch 1,000 (the goal's), each configuration; the median counts
    latency_samples: int = 200
    latency_gap_s: float = 0.02


FULL = Plan(records={100: 100_000, 1000: 200_000, 10_000: 200_000})
QUICK = Plan(records={100: 5_000, 1000: 10_000, 10_000: 20_000}, rounds=1, latency_samples=20)


def _post(conn: http.client.HTTPConnection, op: str, body: dict) -> dict:
    conn.request("POST", "/", json.dumps(body).encode(),
                 {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + op})  # fmt: skip
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{op} answered {response.status}: {data[:200]!r}")
    return json.loads(data) if data else {}


def _bodies(stream: str, total: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for start in range(0, total, PUT_BATCH):
        n = min(PUT_BATCH, total - start)
        records = [{"Data": base64.b64encode(rnd.randbytes(RECORD_BYTES)).decode(),
                    "PartitionKey": f"pk-{rnd.getrandbits(48):012x}"} for _ in range(n)]  # fmt: skip
        out.append({"StreamName": stream, "Records": records})
    return out


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# --- Lamina ----------------------------------------------------------------------------------------


def lamina_throughput(
    server: LaminaServer, batch: int, total: int, producers: int, tag: str = ""
) -> tuple[float, float]:
    """(live, drain) records/s: puts while the mapping runs; then a backlog put while it is
    disabled, drained once it is enabled (the mapping alone, without producers on the CPU).
    `tag` keeps the function and stream names of repeated runs on one server apart."""
    lam = server.client("lambda")
    name = f"noop-{batch}{tag}"
    lam.create_function(FunctionName=name, Runtime=HOST_RUNTIME, Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": _zip(NOOP)}, MemorySize=512, Timeout=60)  # fmt: skip
    rates = []
    for phase in ("live", "drain"):
        stream = f"{phase}{batch}{tag}"
        server.client("kinesis").create_stream(StreamName=stream, ShardCount=SHARDS)
        arn = f"arn:aws:kinesis:us-east-1:000000000000:stream/{stream}"
        uuid = lam.create_event_source_mapping(
            FunctionName=name,
            EventSourceArn=arn,
            BatchSize=batch,
            StartingPosition="TRIM_HORIZON",
            Enabled=phase == "live",
        )["UUID"]
        _wait_state(lam, uuid, "Enabled" if phase == "live" else "Disabled")
        bodies = _bodies(stream, total, batch)  # made before the clock starts, as Redis's pipelines are
        started = time.perf_counter()
        last = _put_all(server, bodies, producers)
        if phase == "drain":
            lam.update_event_source_mapping(UUID=uuid, Enabled=True)
            started = time.perf_counter()
        while True:
            shards = server.get_json(f"/_lamina/mappings/{uuid}?lag=0")["shards"]
            done = {s["shard"]: int(s["checkpoint"]) for s in shards}
            if all(done.get(shard, 0) >= seq for shard, seq in last.items()):
                break
            time.sleep(0.005)
        rates.append(total / (time.perf_counter() - started))
        lam.delete_event_source_mapping(UUID=uuid)
    return rates[0], rates[1]


def _wait_state(lam: object, uuid: str, state: str) -> None:
    while lam.get_event_source_mapping(UUID=uuid)["State"] != state:  # type: ignore[attr-defined]
        time.sleep(0.01)


def _put_all(server: LaminaServer, bodies: list[dict], producers: int) -> dict[str, int]:
    """Put every body from `producers` threads; the highest sequence number put per shard."""
    last: dict[str, int] = {}
    lock = threading.Lock()

    def produce(p: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        for body in bodies[p::producers]:
            answer = _post(conn, "PutRecords", body)
            assert answer["FailedRecordCount"] == 0, answer
            with lock:
                for r in answer["Records"]:
                    last[r["ShardId"]] = max(last.get(r["ShardId"], 0), int(r["SequenceNumber"]))

    _in_threads(producers, produce)
    return last


def lamina_latency(server: LaminaServer, plan: Plan) -> list[float]:
    lam, stream, name = server.client("lambda"), "latency", "stamp"
    lam.create_function(FunctionName=name, Runtime=HOST_RUNTIME, Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": _zip(STAMP)})  # fmt: skip
    kinesis = server.client("kinesis")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    arn = f"arn:aws:kinesis:us-east-1:000000000000:stream/{stream}"
    uuid = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn, StartingPosition="LATEST")["UUID"]
    while lam.get_event_source_mapping(UUID=uuid)["State"] != "Enabled":
        time.sleep(0.01)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    sent = []
    for i in range(plan.latency_samples + 5):  # the first few warm the environment up
        sent.append(time.time())
        _post(conn, "PutRecords", {"StreamName": stream, "Records": [{"Data": base64.b64encode(b"%d" % i).decode(),
                                                                       "PartitionKey": "k"}]})  # fmt: skip
        time.sleep(plan.latency_gap_s)
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 30
    while len(seen) < len(sent) and time.monotonic() < deadline:
        seen = _stamps(server, name)
        time.sleep(0.05)
    missing = sorted(set(range(len(sent))) - set(seen))
    if missing:
        raise RuntimeError(f"records {missing} never reached the handler")
    return [(seen[i] - sent[i]) * 1000 for i in range(5, len(sent))]


def _stamps(server: LaminaServer, name: str) -> dict[int, float]:
    """Record index → when the handler started with it (the first time, if it ran twice)."""
    out: dict[int, float] = {}
    cursor = 0
    while True:
        page = server.get_json(f"/_lamina/logs/{name}?after={cursor}&limit=1000")
        for event in page["events"]:
            if event["message"].startswith("T "):
                _, stamp, index = event["message"].split()
                out.setdefault(int(index), float(stamp))
        if not page["events"]:
            return out
        cursor = page["cursor"]


def _zip(source: str) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


# --- Redis Streams -----------------------------------------------------------------------------


def redis_throughput(port: int, batch: int, total: int, producers: int) -> float:
    keys = [f"tp{batch}:{i}" for i in range(SHARDS)]
    setup = Resp(port)
    for key in keys:
        setup.call("XGROUP", "CREATE", key, "g", "$", "MKSTREAM")
    remaining = [total]
    lock = threading.Lock()
    finished = threading.Event()

    def consume(i: int) -> None:
        client = Resp(port)
        while not finished.is_set():
            reply = client.call("XREADGROUP", "GROUP", "g", f"c{i}", "COUNT", batch, "BLOCK", 100, "STREAMS",
                                keys[i], ">")  # fmt: skip
            if not reply:
                continue
            entries = reply[0][1]
            _noop([fields for _, fields in entries])
            client.call("XACK", keys[i], "g", *[entry_id for entry_id, _ in entries])
            with lock:
                remaining[0] -= len(entries)
                if remaining[0] <= 0:
                    finished.set()

    rnd = random.Random(batch)
    pipelines = []
    for start in range(0, total, PUT_BATCH):
        n = min(PUT_BATCH, total - start)
        pipelines.append([Resp.encode("XADD", keys[rnd.randrange(SHARDS)], "*", "pk", f"pk-{rnd.getrandbits(48):x}",
                                      "d", rnd.randbytes(RECORD_BYTES)) for _ in range(n)])  # fmt: skip

    def produce(p: int) -> None:
        client = Resp(port)
        for commands in pipelines[p::producers]:
            client.pipeline(commands)

    consumers = [threading.Thread(target=consume, args=(i,)) for i in range(SHARDS)]
    for t in consumers:
        t.start()
    started = time.perf_counter()
    _in_threads(producers, produce)
    finished.wait(300)
    elapsed = time.perf_counter() - started
    for t in consumers:
        t.join()
    return total / elapsed


def redis_latency(port: int, plan: Plan) -> list[float]:
    key = "latency"
    Resp(port).call("XGROUP", "CREATE", key, "g", "$", "MKSTREAM")
    seen: list[float] = []
    count = plan.latency_samples + 5

    def consume() -> None:
        client = Resp(port)
        while len(seen) < count:
            reply = client.call("XREADGROUP", "GROUP", "g", "c", "COUNT", 100, "BLOCK", 1000, "STREAMS", key, ">")
            if reply:
                entries = reply[0][1]
                seen.extend(time.time() for _ in entries)
                client.call("XACK", key, "g", *[entry_id for entry_id, _ in entries])

    consumer = threading.Thread(target=consume)
    consumer.start()
    producer, sent = Resp(port), []
    for i in range(count):
        sent.append(time.time())
        producer.call("XADD", key, "*", "d", str(i))
        time.sleep(plan.latency_gap_s)
    consumer.join(30)
    return [(t - s) * 1000 for s, t in list(zip(sent, seen, strict=True))[5:]]


def _noop(batch: list) -> None:
    """The consumer's handler: nothing, like the Lamina side's."""


# --- report ------------------------------------------------------------------------------------


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _machine() -> str:
    info = machine.describe()
    return f"{info['CPU']}, {info['Cores']} cores, {info['RAM']}"


def render(default: Config, edge: Config, redis_rows: dict[int, float | None], lat: list[float],
           redis_lat: list[float] | None, plan: Plan) -> str:  # fmt: skip
    lines = [
        "## Event source mappings (bench/mappings.py)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {_machine()}.",
        "PutRecords (HTTP, 500-record calls of 100-byte records, random keys, 4 shards) → mapping → no-op",
        "Python handler, records/s from the first put until every record is checkpointed (durable: puts",
        "and checkpoints are committed with fsync). Redis: the same records XADDed to 4 stream keys, one",
        "consumer per key (XREADGROUP COUNT = batch size, a no-op, XACK), default persistence (no fsync).",
        "",
        f"Live: {plan.producers} producer threads (each with one call in flight; Redis: one pipeline of 500",
        "XADDs in flight) put while the mapping runs; producers, server and handlers share the 2 cores.",
        "Drain: the same records put first with the mapping disabled, then enabled: the mapping's own rate.",
        "Live, 1 edge worker: the live run again with `LAMINA_EDGE_WORKERS=1` (a second process owns the",
        'port and takes the puts; docs/streams.md, "Edge workers").',
        "",
        "| batch size | records | Lamina live records/s | Lamina drain records/s | Lamina live, 1 edge worker "
        "| Redis consumer group (live) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for batch, (live, drain) in default.rows.items():
        redis = redis_rows.get(batch)
        redis_text = f"{redis:,.0f}" if redis is not None else "n/a (no redis-server)"
        lines.append(f"| {batch:,} | {plan.records[batch]:,} | {live:,.0f} | {drain:,.0f} | {edge.rows[batch][0]:,.0f} "
                     f"| {redis_text} |")  # fmt: skip
    lines += [
        "",
        f"Put → handler latency at low load (one record every {plan.latency_gap_s * 1000:.0f} ms,"
        f" {len(lat)} samples, window 0):",
        "",
        "| | p50 | p99 |",
        "|---|---:|---:|",
        f"| Lamina (PutRecords over HTTP → handler running) | {_pct(lat, 0.5):.1f} ms | {_pct(lat, 0.99):.1f} ms |",
    ]
    if redis_lat:
        lines.append(f"| Redis Streams (XADD → XREADGROUP BLOCK returns) | {_pct(redis_lat, 0.5):.2f} ms |"
                     f" {_pct(redis_lat, 0.99):.2f} ms |")  # fmt: skip
    lines += ["| AWS Lambda, Kinesis shared polling (documented anchor) | ~200 ms | |",
              "| AWS Lambda, Kinesis enhanced fan-out (documented anchor) | ~70 ms | |"]  # fmt: skip
    median_default, median_edge = statistics.median(default.rounds), statistics.median(edge.rounds)
    met = median_edge >= 100_000 or median_default >= 100_000
    rounds = "; ".join(f"{name} {', '.join(f'{r:,.0f}' for r in c.rounds)}" for name, c in
                       (("default", default), ("one edge worker", edge)))  # fmt: skip
    lines += [
        "",
        f"- Goal ≥ 100,000 records/s at batch 1,000: {'met' if met else 'not met'}, median of {plan.rounds} live"
        f" runs each: {median_default:,.0f} (default), {median_edge:,.0f} (one edge worker). Rounds: {rounds}.",
        f"- With 2 producers instead of {plan.producers} (batch 1,000, live): {default.two_producers:,.0f} (default),"
        f" {edge.two_producers:,.0f} (one edge worker).",
        f"- Goal p50 ≤ 10 ms: {'met' if _pct(lat, 0.5) <= 10 else 'not met'} ({_pct(lat, 0.5):.1f} ms).",
        "- Why live is lower than drain: in live runs the producers, the puts and the mapping share the 2"
        " cores, and without edge workers the puts and the mapping share one interpreter lock in the server"
        " process (docs/decisions/0110-one-process-ceiling.md).",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Config:
    """One server configuration's results: (live, drain) per batch size, the live rounds at batch
    1,000 (the first is the table's run), and the live rate at batch 1,000 with 2 producers."""

    rows: dict[int, tuple[float, float]]
    rounds: list[float]
    two_producers: float


def run_config(env: dict[str, str], plan: Plan, latency: bool) -> tuple[Config, list[float]]:
    server = LaminaServer(env={"LAMINA_ACCESS_KEY_ID": "", "LAMINA_SECRET_ACCESS_KEY": "", "LAMINA_PRELOAD": "", **env})
    server.start(wait_for_zygote=False)
    try:
        rows = {b: lamina_throughput(server, b, n, plan.producers) for b, n in plan.records.items()}
        n = plan.records[1000]
        rounds = [rows[1000][0]] + [lamina_throughput(server, 1000, n, plan.producers, f"-r{i}")[0]
                                    for i in range(1, plan.rounds)]  # fmt: skip
        two = lamina_throughput(server, 1000, n, 2, "-p2")[0]
        lat = lamina_latency(server, plan) if latency else []
    finally:
        server.stop()
    return Config(rows, rounds, two), lat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run, printed and not written")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    default, lat = run_config({}, plan, latency=True)
    # The same runs with one edge worker taking the puts (LAMINA_EDGE_WORKERS, decision 0110).
    edge, _ = run_config({"LAMINA_EDGE_WORKERS": "1"}, plan, latency=False)
    redis_rows: dict[int, float | None] = dict.fromkeys(plan.records)
    redis_lat = None
    try:
        redis = RedisServer()
    except (OSError, RuntimeError) as exc:
        print(f"Redis skipped: {exc}")
    else:
        try:
            redis_rows = {b: redis_throughput(redis.port, b, n, plan.producers) for b, n in plan.records.items()}
            redis_lat = redis_latency(redis.port, plan)
        finally:
            redis.stop()
    text = render(default, edge, redis_rows, lat, redis_lat, plan)
    print(text)
    if not args.quick:
        sections.replace(DOC, "mappings", text)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
