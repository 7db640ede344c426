"""Sequential latency through a real server: cold starts and warm invokes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.handlers import Handler
from bench.invoke import Outcome, RawInvoker
from bench.server import HOST_RUNTIME, ROLE
from bench.stats import Summary, rounds, spread


def deploy(lam: Any, name: str, handler: Handler, salt: str = "") -> None:
    lam.create_function(
        FunctionName=name,
        Runtime=HOST_RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": handler.zip(salt)},
        MemorySize=128,
        Timeout=30,
    )


def _wait_updated(lam: Any, name: str, status: str | None) -> None:
    deadline = time.monotonic() + 30
    while status == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.005)
        status = lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus")
    if status not in (None, "Successful"):
        raise RuntimeError(f"update of {name} ended {status}")


@dataclass
class ColdResult:
    handler: Handler
    kind: str  # "spaced", "burst" or "new": see forced_cold and new_functions
    method: str
    client_ms: list[float] = field(default_factory=list)
    init_ms: list[float] = field(default_factory=list)
    duration_ms: list[float] = field(default_factory=list)
    not_cold: int = 0  # answered without Init Duration: excluded, and reported
    failures: list[str] = field(default_factory=list)

    @property
    def client(self) -> Summary:
        return Summary.of(self.client_ms)

    @property
    def p50_spread(self) -> tuple[float, float]:
        """Lowest and highest client p50 over 5 consecutive rounds of samples (drift and noise)."""
        return spread(rounds(self.client_ms, 5))

    @property
    def init(self) -> Summary:
        return Summary.of(self.init_ms)

    @property
    def duration(self) -> Summary:
        return Summary.of(self.duration_ms)

    def add(self, outcome: Outcome) -> None:
        if not outcome.ok:
            self.failures.append(f"{outcome.status} {outcome.function_error}: {outcome.body[:200]!r}")
            return
        if outcome.init_ms is None:
            self.not_cold += 1
            return
        self.client_ms.append(outcome.elapsed_ms)
        self.init_ms.append(outcome.init_ms)
        self.duration_ms.append(outcome.duration_ms or 0.0)


def forced_cold(
    lam: Any,
    invoker: RawInvoker,
    functions: dict[str, str],
    handlers: Sequence[Handler],
    n: int,
    pause_s: float,
) -> list[ColdResult]:
    """Change an env var before each invoke (that retires the warm environment), wait `pause_s`,
    invoke. Handlers are interleaved so they share the machine's noise. Only samples whose
    REPORT line has Init Duration count.

    With a pause, each cold start is isolated from the previous one, as sporadic cold starts are
    in production; without one (a burst), costs that are amortised across quick successive
    cold starts show up as the difference."""
    kind = "spaced" if pause_s > 0 else "burst"
    how = f"UpdateFunctionConfiguration, {pause_s * 1000:.0f} ms pause" if pause_s > 0 else "back-to-back"
    results = [ColdResult(h, kind, how) for h in handlers]
    for i in range(n):
        for handler, result in zip(handlers, results, strict=True):
            name = functions[handler.key]
            update = lam.update_function_configuration(
                FunctionName=name, Environment={"Variables": {"BENCH_ROUND": f"{kind}-{i}"}}
            )
            _wait_updated(lam, name, update.get("LastUpdateStatus"))
            if pause_s > 0:
                time.sleep(pause_s)
            result.add(invoker.invoke(name, tail=True))
    return results


def new_functions(
    lam: Any, invoker: RawInvoker, handlers: Sequence[Handler], n: int, pause_s: float
) -> list[ColdResult]:
    """The first invoke after CreateFunction of a never-seen package (its own SHA-256), after the
    same pause as the spaced cold starts: the difference is the one-time work per package."""
    results = [ColdResult(h, "new", f"CreateFunction (new package), {pause_s * 1000:.0f} ms pause") for h in handlers]
    created = []
    for i in range(n):
        for handler, result in zip(handlers, results, strict=True):
            name = f"bench-new-{handler.key}-{i}"
            deploy(lam, name, handler, salt=uuid.uuid4().hex)
            created.append(name)
            time.sleep(pause_s)
            result.add(invoker.invoke(name, tail=True))
    for name in created:
        lam.delete_function(FunctionName=name)
    return results


@dataclass(frozen=True)
class WarmResult:
    client: str
    samples_ms: list[float]
    rounds: int
    failures: int

    @property
    def summary(self) -> Summary:
        return Summary.of(self.samples_ms)

    @property
    def p50_spread(self) -> tuple[float, float]:
        return spread(rounds(self.samples_ms, self.rounds))


def warm_raw(invoker: RawInvoker, name: str, n: int, rounds: int = 5, warmup: int = 200) -> WarmResult:
    for _ in range(warmup):
        invoker.invoke(name)
    samples, failures = [], 0
    for _ in range(n):
        outcome = invoker.invoke(name)
        failures += not outcome.ok
        samples.append(outcome.elapsed_ms)
    return WarmResult("raw HTTP/1.1 keep-alive (`http.client`)", samples, rounds, failures)


def warm_boto3(lam: Any, name: str, n: int, rounds: int = 5, warmup: int = 50) -> WarmResult:
    def once() -> tuple[float, bool]:
        started = time.perf_counter()
        response = lam.invoke(FunctionName=name, Payload=b"{}")
        response["Payload"].read()
        return (time.perf_counter() - started) * 1000, "FunctionError" not in response

    for _ in range(warmup):
        once()
    samples, failures = [], 0
    for _ in range(n):
        elapsed, ok = once()
        failures += not ok
        samples.append(elapsed)
    return WarmResult("boto3 `invoke` (reference)", samples, rounds, failures)
