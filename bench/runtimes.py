"""Runtime benchmark: cold start and warm invoke per runtime, the Python fast path against Python
through the Runtime API (awslambdaric), and AWS's published cold starts next to them.

    .venv/bin/python bench/runtimes.py           # full run (~1-2 minutes); section in docs/benchmarks.md
    .venv/bin/python bench/runtimes.py --quick   # a smoke run, printed only

Every function is the trivial handler of its language (returns {"ok": true}), 128 MB. Cold starts
are forced as in bench/run.py: an UpdateFunctionConfiguration retires the warm environment, a
pause, then one invoke (client-side time over raw HTTP, and the REPORT line's Init Duration).
Warm invokes: sequential, one keep-alive connection, after a warm-up. Runtimes whose toolchain
is missing are left out (and said so).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import machine, sections
from bench.invoke import RawInvoker
from bench.server import HOST_RUNTIME, ROLE, LaminaServer
from bench.stats import Summary
from lamina.config import Settings
from lamina.runtime import runtimes
from lamina.testing import awslambdaric_files, function_zip

DOC = machine.ROOT / "docs" / "benchmarks.md"
SECTION = "runtimes"
JAVA_API = Path(runtimes.__file__).parent / "bootstrap" / "java"

PYTHON = 'def handler(event, context):\n    return {"ok": True}\n'
NODE = "exports.handler = async () => ({ ok: true });\n"
RUBY = "def handler(event:, context:)\n  { 'ok' => true }\nend\n"
JAVA = """package bench;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.Map;

public class Trivial {
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        return Map.of("ok", true);
    }
}
"""
GO = """package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
)

func main() {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	for {
		resp, err := http.Get(base + "next")
		if err != nil {
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		out, err := http.Post(base+id+"/response", "application/json", bytes.NewReader([]byte(`{"ok":true}`)))
		if err == nil {
			io.Copy(io.Discard, out.Body)
			out.Body.Close()
		}
	}
}
"""

# AWS's published cold starts (init), for comparison: the figures issue 6 gives.
AWS_COLD = {
    "python-fast": "70-110 ms init (Python)",
    "python-ric": "70-110 ms init (Python)",
    "nodejs": "115-165 ms (Node.js)",
}


package = function_zip


def ric_package(settings: Settings) -> bytes | None:
    try:
        files = awslambdaric_files(settings.interpreter_for(HOST_RUNTIME)[0])
    except ImportError:
        return None
    return package({**files, "app.py": PYTHON}, executable=("bootstrap",))


def go_package(tmp: Path) -> bytes | None:
    if shutil.which("go") is None:
        return None
    (tmp / "main.go").write_text(GO)
    subprocess.run(["go", "build", "-o", "bootstrap", "main.go"], cwd=tmp, check=True, capture_output=True,
                   env={**os.environ, "GO111MODULE": "off"}, timeout=300)  # fmt: skip
    return package({"bootstrap": (tmp / "bootstrap").read_bytes()}, executable=("bootstrap",))


def java_package(tmp: Path) -> bytes:
    source = tmp / "bench" / "Trivial.java"
    source.parent.mkdir(parents=True)
    source.write_text(JAVA)
    out = tmp / "classes"
    subprocess.run(["javac", "-d", str(out), "-sourcepath", str(JAVA_API), "-implicit:none", str(source)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    return package({str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.class")})


@dataclass(frozen=True)
class Subject:
    key: str
    title: str
    runtime: str
    handler: str
    code: bytes


def subjects(settings: Settings, tmp: Path) -> tuple[list[Subject], list[str]]:
    found, missing = [], []
    found.append(Subject("python-fast", f"Python fast path ({HOST_RUNTIME}, zygote fork)", HOST_RUNTIME,
                         "app.handler", package({"app.py": PYTHON})))  # fmt: skip
    ric = ric_package(settings)
    if ric is None:
        missing.append("awslambdaric (pip install awslambdaric)")
    else:
        found.append(Subject("python-ric", "Python through the Runtime API (provided.al2023 + awslambdaric)",
                             "provided.al2023", "app.handler", ric))  # fmt: skip
    go = go_package(tmp)
    if go is None:
        missing.append("go")
    else:
        found.append(Subject("go", "Go, standard library (provided.al2023)", "provided.al2023", "x", go))
    for runtime, key, title, handler, make in (
        ("nodejs20.x", "nodejs", "Node.js (nodejs20.x)", "index.handler", lambda: package({"index.js": NODE})),
        ("ruby3.3", "ruby", "Ruby (ruby3.3)", "function.handler", lambda: package({"function.rb": RUBY})),
        ("java17", "java", "Java (java17)", "bench.Trivial::handleRequest", lambda: java_package(tmp)),
    ):
        problem = runtimes.missing(runtime, settings)
        if problem is not None:
            missing.append(problem)
            continue
        entry = runtimes.info(runtime)
        assert entry is not None and entry.tool is not None
        chain = runtimes.toolchain(entry.tool, settings)
        assert chain is not None
        found.append(Subject(key, f"{title} on {entry.label} {chain.version_text}", runtime, handler, make()))
    return found, missing


@dataclass
class Result:
    subject: Subject
    cold_client: Summary
    cold_init: Summary
    warm: Summary
    failures: int


def measure(server: LaminaServer, subject: Subject, cold_n: int, warm_n: int, pause_s: float) -> Result:
    lam = server.client("lambda")
    name = f"bench-rt-{subject.key}"
    lam.create_function(FunctionName=name, Runtime=subject.runtime, Role=ROLE, Handler=subject.handler,
                        Code={"ZipFile": subject.code}, MemorySize=128, Timeout=30)  # fmt: skip
    invoker = RawInvoker(server.port)
    failures = 0
    first = invoker.invoke(name, tail=True)  # one-time work (e.g. compiling the Java bootstrap)
    failures += not first.ok
    cold_client, cold_init = [], []
    for i in range(cold_n):
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"ROUND": str(i)}})
        time.sleep(pause_s)
        outcome = invoker.invoke(name, tail=True)
        if not outcome.ok:
            failures += 1
            continue
        if outcome.init_ms is not None:
            cold_client.append(outcome.elapsed_ms)
            cold_init.append(outcome.init_ms)
    for _ in range(min(200, warm_n)):
        invoker.invoke(name)
    warm = []
    for _ in range(warm_n):
        outcome = invoker.invoke(name)
        failures += not outcome.ok
        warm.append(outcome.elapsed_ms)
    invoker.close()
    return Result(subject, Summary.of(cold_client), Summary.of(cold_init), Summary.of(warm), failures)


def render(results: list[Result], missing: list[str], args: argparse.Namespace, seconds: float) -> str:
    info = machine.describe()
    host = f"{info['CPU']}, {info['Cores']} cores, {info['RAM']}"
    lines = [
        "## Runtimes: cold start and warm invoke per runtime",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `.venv/bin/python bench/runtimes.py` "
        f"({seconds:.0f} s); machine: {host}. Code: {machine.git_revision()}.",
        "",
        f'Trivial handler per language (returns `{{"ok": true}}`), 128 MB. **Cold**: {args.cold} starts per '
        f"runtime, each forced by UpdateFunctionConfiguration and a {args.pause * 1000:.0f} ms pause, client "
        "side over raw HTTP (keep-alive), and the REPORT line's Init Duration (fork from the zygote's spare to "
        f"the runtime's first `/next`). **Warm**: {args.warm} sequential invokes after a warm-up, one "
        "connection. Everything but Python's fast path runs its bootstrap as a process that speaks the "
        "Runtime API (decision 0100).",
        "",
        "| runtime | cold p50 (client) | Init Duration p50 | warm p50 | warm p99 | AWS published cold start |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        aws = AWS_COLD.get(r.subject.key, "—")
        failed = f" ({r.failures} failed)" if r.failures else ""
        lines.append(
            f"| {r.subject.title}{failed} | {r.cold_client.p50:.1f} ms | {r.cold_init.p50:.1f} ms | "
            f"{r.warm.p50:.2f} ms | {r.warm.p99:.2f} ms | {aws} |"
        )
    by_key = {r.subject.key: r for r in results}
    lines.append("")
    if "python-fast" in by_key and "python-ric" in by_key:
        fast, ric = by_key["python-fast"].warm, by_key["python-ric"].warm
        overhead = ric.p50 - fast.p50
        verdict = "met" if overhead <= 1.0 else "not met"
        lines.append(
            f"- Runtime API warm overhead (awslambdaric p50 - fast path p50): **{overhead:+.2f} ms** "
            f"(goal ≤ 1 ms: **{verdict}**); p99 {ric.p99 - fast.p99:+.2f} ms."
        )
    lines.append(
        "- AWS's figures are the ones issue 6 quotes (init, on AWS's hardware); the others are not published "
        "in a comparable form. Lamina's cold start includes no download or sandbox boot: the spare process "
        "is forked ahead, so the cost is the runtime's own start (interpreter or JVM) plus the handler's load."
    )
    for line in missing:
        lines.append(f"- Left out: {line}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few samples; print, do not write the doc")
    parser.add_argument("--cold", type=int, default=None)
    parser.add_argument("--warm", type=int, default=None)
    parser.add_argument("--pause", type=float, default=0.1)
    args = parser.parse_args()
    args.cold = args.cold or (3 if args.quick else 20)
    args.warm = args.warm or (100 if args.quick else 2000)
    started = time.monotonic()
    settings = Settings.load(env={})
    with tempfile.TemporaryDirectory(prefix="lamina-bench-rt-") as tmp:
        found, missing = subjects(settings, Path(tmp))
        server = LaminaServer({"LAMINA_MAX_CONCURRENCY": "16"}).start()
        try:
            results: list[Any] = []
            for subject in found:
                print(f"{subject.title} ...", flush=True)
                results.append(measure(server, subject, args.cold, args.warm, args.pause))
        finally:
            server.stop()
    text = render(results, missing, args, time.monotonic() - started)
    print(text)
    if not args.quick:
        sections.replace(DOC, SECTION, text)


if __name__ == "__main__":
    main()
