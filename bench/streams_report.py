"""docs/benchmarks-streams.md from a streams benchmark run (bench/streams.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINESIS_SHARD_WRITE = 1000  # records/s a Kinesis shard accepts
GOALS = {"Lamina, HTTP PutRecords": 50_000, "Lamina, in-process put_records": 300_000}


@dataclass
class Measure:
    name: str
    per_s: float
    how: str
    durable: bool
    acked: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    complete: bool | None = None  # reads: did they return every acknowledged record?


@dataclass
class Report:
    date: str
    command: str
    machine: dict[str, str]
    plan: Any
    ingest: list[Measure] = field(default_factory=list)
    reads: list[Measure] = field(default_factory=list)
    redis_missing: bool = False
    elapsed_s: float = 0.0

    def add(self, ingest: Measure, reads: Measure) -> None:
        self.ingest.append(ingest)
        self.reads.append(reads)


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def _redis(measures: list[Measure], durable: bool) -> float | None:
    return next((m.per_s for m in measures if m.name.startswith("Redis") and m.durable == durable), None)


def render(report: Report) -> str:
    plan = report.plan
    default_in, aof_in = _redis(report.ingest, False), _redis(report.ingest, True)
    default_rd, aof_rd = _redis(report.reads, False), _redis(report.reads, True)
    out = [
        "# Streams benchmark: Lamina (Kinesis API) vs Redis Streams",
        "",
        f"Generated {report.date} by `{report.command}` in {report.elapsed_s:.0f} s. Separate from "
        "`./dev bench` (docs/benchmarks.md).",
        "",
        f"Each side ingests 500-record batches of {100}-byte records with random partition keys into 4 shards "
        f"(Redis: 4 stream keys) from several producers for {plan.duration_s:g} s after a {plan.warmup_s:g} s "
        "warm-up (records/s counts batches acknowledged in the measured window), then one client reads "
        "everything back from the start. A Lamina put is acknowledged only once committed (SQLite WAL, "
        "`synchronous=FULL`, group commit): it survives `kill -9` and power loss. Redis runs twice: with its "
        "default persistence (RDB snapshots, AOF off: an acknowledged XADD is only in memory, and a crash "
        "loses up to the last snapshot) and with `appendonly yes` + `appendfsync always` (fsynced before the "
        "reply: the durability Lamina gives). All clients are Python on the same 2-core machine as the "
        "servers, so they compete for the CPU.",
        "",
        "## Machine",
        "",
        *_table([[k, v] for k, v in report.machine.items()], ["", ""]),
        "",
        "## Ingest",
        "",
    ]
    rows = []
    for m in report.ingest:
        durable = "yes" if m.durable else "no (memory)"
        rows.append([m.name, f"{m.per_s:,.0f}", durable, _ratio(m.per_s, default_in), _ratio(m.per_s, aof_in),
                     f"{m.per_s / KINESIS_SHARD_WRITE:,.0f}x", f"{m.acked:,}" + (f" ({m.failed:,} failed)" if m.failed
                                                                                  else ""), m.how])  # fmt: skip
    out += _table(rows, ["", "records/s", "durable ack", "vs Redis default", "vs Redis fsync", "vs 1 Kinesis shard",
                         "acked (whole run)", "how"])  # fmt: skip
    out += ["", "## Reads", ""]
    rows = []
    for m in report.reads:
        complete = {True: "yes", False: "**no**", None: f"stopped at the {plan.read_cap_s:g} s cap"}[m.complete]
        rows.append([m.name, f"{m.per_s:,.0f}", _ratio(m.per_s, default_rd), _ratio(m.per_s, aof_rd), complete, m.how])
    out += _table(rows, ["", "records/s", "vs Redis default", "vs Redis fsync", "read every acked record", "how"])
    if report.redis_missing:
        out += ["", "Redis Streams: **not available** (`redis-server` is not installed; "
                "`apt-get install -y redis-server`)."]  # fmt: skip
    out += ["", "## Goals", ""]
    for m in report.ingest:
        goal = GOALS.get(m.name)
        if goal is None:
            continue
        met = "**met**" if m.per_s >= goal and not m.failed and not m.errors else "**not met**"
        out.append(f"- {m.name}: ≥ {goal:,} records/s durably acknowledged — {met} ({m.per_s:,.0f} records/s).")
    out += [
        "",
        "## Notes",
        "",
        "- The machine has 2 cores and the producers, the reader and the server share them; other work on the "
        "machine moves the numbers: read single runs as ±20%.",
        "- Lamina's HTTP producers send pre-encoded PutRecords bodies (base64 data, JSON) without SigV4 signing "
        "(the server runs without credentials); boto3 would add client-side cost per call, not server cost.",
        "- Reads are bound by the Python client too: decoding a 10,000-record GetRecords JSON page, or parsing "
        "10,000 nested RESP replies of an XRANGE in Python (the benchmark's ~40-line raw RESP client, "
        "bench/resp.py). Redis reads stop at the time cap when it ingested more than they can read in it.",
        "- `read every acked record` compares the records read back with the records whose put was "
        "acknowledged over the whole run (warm-up included); `yes` means the counts are equal.",
    ]
    errors = [(m.name, e) for m in report.ingest + report.reads for e in m.errors]
    if errors:
        out += ["", "## Errors", ""] + [f"- {name}: `{e}`" for name, e in errors]
    return "\n".join(out) + "\n"
