"""docs/benchmarks.md from one run's results: machine, goals (met or not), tables, observations."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.latency import ColdResult, WarmResult
from bench.procs import CpuUsage
from bench.stats import Summary
from bench.throughput import LoadResult

# Hand-written findings (profiles, traces) appended to the report; dated, so they can go stale.
NOTES = Path(__file__).with_name("investigation.md")

# Timing goals (they live here, not in tests).
COLD_GOAL_MS = {"trivial": 10.0, "boto3": 20.0}
WARM_GOAL_MS = 1.0
THROUGHPUT_GOAL = 3000.0

DASH = "\u2013"  # en dash
TIMES = "\u00d7"  # multiplication sign

AWS_REFERENCE = (
    "For reference, on AWS Lambda a Python function's Init Duration is typically 70\u2013110 ms before any "
    "import of its own, and importing boto3 alone costs ~300 ms (as it does for the naive runner below)."
)


@dataclass
class Results:
    command: str
    quick: bool
    date: str
    machine: dict[str, str]
    revision: str
    server_settings: dict[str, str]
    loadavg_before: str
    loadavg_after: str = ""
    elapsed_s: float = 0.0
    cold: list[ColdResult] = field(default_factory=list)  # forced cold, then new functions
    warm: list[WarmResult] = field(default_factory=list)
    load: list[LoadResult] = field(default_factory=list)
    direct: dict[str, Summary] = field(default_factory=dict)  # handler key → summary
    naive: dict[str, Summary] = field(default_factory=dict)
    sections: dict[str, CpuUsage] = field(default_factory=dict)
    left_behind: list[int] = field(default_factory=list)
    stragglers: list[int] = field(default_factory=list)
    wrk: str = ""
    steal_s: float = 0.0


def ms(value: float) -> str:
    if math.isnan(value):
        return DASH
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    if value >= 0.1:
        return f"{value:.2f} ms"
    return f"{value * 1000:.2f} µs"


def ratio(a: float, b: float) -> str:
    if not b or math.isnan(a) or math.isnan(b):
        return DASH
    r = a / b
    return f"{r:,.0f}{TIMES}" if r >= 100 else f"{r:.1f}{TIMES}"


def pct(value: float) -> str:
    return f"{value:.0f}%"


def met(ok: bool) -> str:
    return "met" if ok else "**NOT MET**"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _cold(results: Results, kind: str) -> dict[str, ColdResult]:
    return {c.handler.key: c for c in results.cold if c.kind == kind}


def _forced(results: Results) -> dict[str, ColdResult]:
    """The cold starts the goals are judged on: forced, each after a pause (sporadic, as in production)."""
    return _cold(results, "spaced")


def goals(results: Results) -> list[str]:
    rows = []
    forced = _forced(results)
    for key, goal in COLD_GOAL_MS.items():
        cold = forced.get(key)
        if cold is None:
            continue
        p50 = cold.client.p50
        rows.append([f"Cold start p50, {key} handler (client side)", f"≤ {goal:.0f} ms", ms(p50), met(p50 <= goal)])
    burst = _cold(results, "burst").get("trivial")
    if burst is not None:
        p50 = burst.client.p50
        goal = COLD_GOAL_MS["trivial"]
        label = "Cold start p50, trivial, back-to-back (burst; for reference)"
        rows.append([label, f"≤ {goal:.0f} ms", ms(p50), met(p50 <= goal)])
    raw = next((w for w in results.warm if w.client.startswith("raw")), None)
    if raw is not None:
        p50 = raw.summary.p50
        rows.append(["Warm sync invoke p50 over HTTP", f"≤ {WARM_GOAL_MS:.0f} ms", ms(p50), met(p50 <= WARM_GOAL_MS)])
    for connections in sorted({run.connections for run in results.load}):
        runs = [run for run in results.load if run.connections == connections]
        label = f"Throughput, {connections} clients"
        if any(run.bad for run in runs):
            rows.append([label, "≥ 3,000 /s", "errors (see below)", met(False)])
            continue
        measured = " / ".join(f"{run.rps:,.0f}" for run in runs) + " /s"
        measured += " (" + " / ".join(run.tool.split(" ")[0] for run in runs) + ")"
        passed = sum(run.rps >= THROUGHPUT_GOAL for run in runs)
        status = (
            met(passed == len(runs)) if passed in (0, len(runs)) else f"**BORDERLINE**: {passed} of {len(runs)} runs"
        )
        rows.append([label, "≥ 3,000 /s", measured, status])
    return table(["goal", "target", "measured", "status"], rows)


def cells(s: Summary) -> list[str]:
    return [ms(s.p50), ms(s.p90), ms(s.p99)]


def cold_section(results: Results) -> list[str]:
    header = ["handler", "how", "N cold (not cold)", "client p50", "p90", "p99"]
    header += ["client p50 range over 5 rounds", "Init Duration p50", "p90", "p99", "Duration p50"]
    rows = []
    for c in results.cold:
        counted = f"{c.client.n} ({c.not_cold})" + (f", {len(c.failures)} failed" if c.failures else "")
        lo, hi = c.p50_spread
        client = [*cells(c.client), f"{ms(lo)} {DASH} {ms(hi)}"]
        rows.append([c.handler.key, c.method, counted, *client, *cells(c.init), ms(c.duration.p50)])
    lines = table(header, rows)
    comparison = []
    for key, cold in _forced(results).items():
        naive = results.naive.get(key)
        if naive is not None:
            aws = f"70{DASH}110 ms" + (" + ~300 ms import" if key.startswith("boto3") else "")
            comparison.append([key, ms(cold.client.p50), ms(naive.p50), ratio(naive.p50, cold.client.p50), aws])
    if comparison:
        lines += ["Against the peers (p50):", ""]
        header = ["handler", "Lamina cold invoke", "fresh `python` per invoke", "fresh ÷ Lamina", "AWS Lambda init"]
        lines += table(header, comparison)
    return lines


def warm_section(results: Results) -> list[str]:
    header = ["client", "N", "p50", "p90", "p99", "max", "p50 range over 5 rounds"]
    rows = []
    for w in results.warm:
        s = w.summary
        lo, hi = w.p50_spread
        label = w.client + (f" ({w.failures} failed)" if w.failures else "")
        rows.append([label, str(s.n), *cells(s), ms(s.max), f"{ms(lo)} {DASH} {ms(hi)}"])
    direct = results.direct.get("trivial")
    if direct is not None:
        rows.append(["peer: direct in-process call (the floor)", str(direct.n), *cells(direct), ms(direct.max), DASH])
    return table(header, rows)


def load_section(results: Results) -> list[str]:
    header = ["load generator", "clients", "window", "invokes", "invokes/s", "p50", "p90", "p99", "max"]
    header += ["bad", "cold starts", "DB size", "CPU: server", "(its event loop)", "environments", "load gen"]
    header += ["other", "machine"]
    rows = []
    for r in results.load:
        cpu = r.cpu
        measured = [f"{r.window_s:.1f} s", f"{r.requests:,}", f"{r.rps:,.0f}"]
        latencies = [ms(r.p50_ms), ms(r.p90_ms), ms(r.p99_ms), ms(r.max_ms)]
        usage = [pct(cpu.server), pct(cpu.server_loop), pct(cpu.environments), pct(cpu.bench), pct(cpu.other)]
        usage.append(pct(cpu.machine))
        checks = [str(r.bad), str(r.cold_starts), f"{r.database_mb:.0f} MB"]
        rows.append([r.tool, str(r.connections), *measured, *latencies, *checks, *usage])
    lines = table(header, rows)
    lines.append(
        "CPU columns are % of one core over the whole load-generator run (its warm-up included; `load gen` "
        "includes the idle driver); the "
        f"machine's ceiling is {results.machine.get('Cores', '?')}00%. `bad` counts non-200 responses, "
        "responses with `X-Amz-Function-Error` and socket errors. `cold starts` counts environments "
        "started during the run (each concurrency level is warmed up first). `DB size` is the server's "
        "SQLite database at the start of the run: it grows by the log and meter rows of every invocation."
    )
    notes = [f"- {r.tool}, {r.connections} clients: {r.note}" for r in results.load if r.note]
    return [*lines, "", *notes, *([""] if notes else [])]


def peers_section(results: Results) -> list[str]:
    rows = []
    for label, data in (("direct in-process call", results.direct), ("fresh `python -c` per invoke", results.naive)):
        for key, s in data.items():
            rows.append([label, key, str(s.n), ms(s.p50), ms(s.p90), ms(s.p99)])
    return table(["peer", "handler", "N", "p50", "p90", "p99"], rows)


def observations(results: Results) -> list[str]:
    """Plain statements derived from this run's numbers: where the time goes, what limits throughput."""
    notes = []
    spaced, burst, new = _forced(results), _cold(results, "burst"), _cold(results, "new")
    for cold in spaced.values():
        notes.append(
            f"Cold start, {cold.handler.key}: of the {ms(cold.client.p50)} client-side p50, {ms(cold.init.p50)} is "
            "the server-measured init (spawn request to the zygote, fork, sandboxing, importing the handler "
            f"module, its module-level code); the other {ms(cold.client.p50 - cold.init.p50)} is the HTTP "
            "request, the invoke path, the first invocation and the log/meter write."
        )
    if "trivial" in spaced and "trivial" in burst:
        a, b = spaced["trivial"], burst["trivial"]
        delta = b.init.p50 - a.init.p50
        why = (
            "back to back, cold starts come faster than each zygote's spare is replaced, so some pay the cgroup "
            "join a spare otherwise absorbs"
            if delta >= 0
            else "spaced cold starts pay a cgroup join that back-to-back ones partly skip"
        )
        notes.append(
            f"Back-to-back cold starts of the trivial handler take {ms(b.client.p50)} p50 (init {ms(b.init.p50)}) "
            f"against {ms(a.client.p50)} (init {ms(a.init.p50)}) when each follows a pause: {why} "
            "(see the investigation notes below)."
        )
    if "boto3" in spaced and "boto3-client" in spaced:
        extra = spaced["boto3-client"].init.p50 - spaced["boto3"].init.p50
        notes.append(
            f"Creating an S3 client at init costs {ms(extra)} on top of importing boto3 (which the zygote has "
            "already done): boto3's default session and the client itself, with botocore's models and endpoint "
            "rules already loaded in the zygote (LAMINA_PRELOAD_SERVICES)."
        )
    for key, cold in new.items():
        if key in spaced:
            extra = cold.client.p50 - spaced[key].client.p50
            more = f"{ms(extra)} more" if extra >= 0 else f"{ms(-extra)} less"
            notes.append(
                f"First invoke of a newly created {key} function: {ms(cold.client.p50)} p50, {more} than a "
                "forced cold start of an existing one (the one-time work per new code package, within noise "
                "when small)."
            )
    raw = next((w for w in results.warm if w.client.startswith("raw")), None)
    direct = results.direct.get("trivial")
    if raw is not None and direct is not None:
        notes.append(
            f"Warm invoke: {ms(raw.summary.p50)} p50 over HTTP against {ms(direct.p50)} for the bare call: "
            "nearly all of it is the platform path (HTTP, routing, validation, the frame to the environment and "
            "back, the durable meter + log write), not the handler."
        )
    boto = next((w for w in results.warm if w.client.startswith("boto3")), None)
    if raw is not None and boto is not None:
        notes.append(
            f"boto3 adds {ms(boto.summary.p50 - raw.summary.p50)} per call on the client side "
            f"({ms(boto.summary.p50)} p50 vs {ms(raw.summary.p50)})."
        )
    cores = int(results.machine.get("Cores", "2") or 2)
    for r in results.load:
        cpu = r.cpu
        parts = [
            f"server process {pct(cpu.server)} of a core (event loop thread {pct(cpu.server_loop)}, other threads "
            f"{pct(cpu.server - cpu.server_loop)}), environments {pct(cpu.environments)}, load generator "
            f"{pct(cpu.bench)}, machine {pct(cpu.machine)} of {cores * 100}%"
        ]
        if cpu.server >= 85:
            parts.append(
                "the server process (its event loop and store-writer threads share one GIL) stays at about "
                "one core while the machine has idle CPU: the server is the limit, not the machine"
                if cpu.machine < cores * 100 * 0.85
                else "the server is at one core and the machine is saturated"
            )
        if cpu.bench >= 50:
            parts.append(f"the load generator itself needed {pct(cpu.bench)} of a core")
        notes.append(f"Throughput, {r.connections} clients ({r.tool.split(' ')[0]}): " + "; ".join(parts) + ".")
    noisy = {name: u for name, u in results.sections.items() if u.other >= 15}
    if noisy:
        listed = ", ".join(f"{name} {pct(u.other)}" for name, u in noisy.items())
        notes.append(f"Other processes on the machine used noticeable CPU during: {listed} (of one core).")
    return [*(f"- {note}" for note in notes), ""]


def load_table(results: Results) -> list[str]:
    rows = [
        [name, f"{u.wall_s:.1f} s", u.loadavg_before, pct(u.server), pct(u.environments), pct(u.bench), pct(u.other)]
        for name, u in results.sections.items()
    ]
    return table(["section", "wall", "loadavg at start", "server", "environments", "driver", "other"], rows)


def render(results: Results) -> str:
    out = ["# Lamina benchmarks", ""]
    if results.quick:
        out += ["> **Quick smoke run**: few samples, short windows. Not for comparison.", ""]
    out += [
        f"Generated {results.date} by `{results.command}` in {results.elapsed_s:.0f} s. "
        "Every number below comes from that one run; regenerate with `./dev bench` "
        "(`.venv/bin/python bench/run.py`, or `--quick` for a short smoke run).",
        "",
        "## Machine",
        "",
    ]
    machine_rows = [[k, v] for k, v in results.machine.items()]
    machine_rows += [["Lamina revision", results.revision]]
    machine_rows += [[k, v] for k, v in results.server_settings.items()]
    machine_rows += [["wrk", results.wrk or "not installed (only bench/loadgen.py)"]]
    machine_rows += [["Load average", f"{results.loadavg_before} before, {results.loadavg_after} after the run"]]
    machine_rows += [["CPU steal during the run", f"{results.steal_s:.2f} s (what the hypervisor reports)"]]
    cleanup = "none" if not results.left_behind else f"**{len(results.left_behind)} left: {results.left_behind}**"
    if results.stragglers:
        cleanup += f" ({len(results.stragglers)} had to be SIGKILLed after the server stopped)"
    machine_rows += [["Processes left behind", cleanup]]
    out += table(["", ""], machine_rows)
    out += ["## Goals", "", *goals(results)]
    out += [AWS_REFERENCE, ""]
    out += ["## Cold start", ""]
    out += [
        "Client-side latency of an Invoke that has to start a new environment (sequential, raw HTTP, "
        "`X-Amz-Log-Type: Tail`), and the server-measured `Init Duration` from its REPORT line. A sample "
        'counts only if its REPORT line has `Init Duration` (the "not cold" count must be 0). The two '
        "handlers are interleaved so they share the machine's noise.",
        "",
    ]
    out += cold_section(results)
    out += ["## Warm sync invoke", "", "Trivial handler, sequential, one keep-alive connection.", ""]
    out += warm_section(results)
    out += ["## Throughput", ""]
    out += [
        "Trivial handler; each client has its own keep-alive connection and one request in flight. The "
        "load generator is another process on the same 2 cores.",
        "",
    ]
    out += load_section(results)
    out += ["## Peers", ""]
    out += [
        "The same handler modules without Lamina, with the driver's interpreter: a direct call after "
        "importing the module once (the floor for a warm invoke), and a fresh `python -c` that imports the "
        "module and calls it (what a naive runner does per invoke; compare with a cold start).",
        "",
    ]
    out += peers_section(results)
    out += ["## Observations", "", *observations(results)]
    out += ["## Noise", ""]
    out += [
        "CPU per section in % of one core (from /proc): `other` is everything that is not this benchmark "
        "(other engineers' tests, for example). High `other` means the numbers in that section are "
        "pessimistic.",
        "",
    ]
    out += load_table(results)
    if NOTES.exists():
        out += ["## Investigation notes", "", NOTES.read_text().strip(), ""]
    return "\n".join(out).rstrip() + "\n"
