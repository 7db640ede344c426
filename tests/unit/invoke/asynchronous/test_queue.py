"""The consumer's decisions, with a scripted invoker: backoff on throttles and system errors, retry
delays on function errors, recovery of stored events at start, dropping events of deleted functions.
(The end-to-end behaviour against a real server is in tests/e2e/test_async.py.)"""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections import deque

import pytest

from lamina.config import Settings
from lamina.errors import ResourceNotFound, ServiceError, TooManyRequests
from lamina.functions.service import FunctionDraft, FunctionService
from lamina.invoke.asynchronous import AsyncInvocation
from lamina.invoke.concurrency import ConcurrencyLimiter
from lamina.model.events import Condition, EventState, QueuedEvent
from lamina.model.invocation import InvokeRequest, InvokeResult
from lamina.store.code import FileCodeStore
from lamina.store.events import Enqueue
from lamina.store.memory import MemoryStore
from lamina.store.memory_events import MemoryEventStore

SETTINGS = Settings(interpreters={}, async_retry_base_seconds=0.05, async_backoff_max_seconds=0.04)


class ScriptedInvoker:
    """Stands in for InvokeService: each invoke takes the next scripted outcome (a result or an error)."""

    def __init__(self, functions: FunctionService, outcomes: list[object]) -> None:
        self.functions = functions
        self.limiter = ConcurrencyLimiter(4)
        self.outcomes = deque(outcomes)
        self.calls: list[tuple[str, float]] = []

    async def invoke(self, request: InvokeRequest) -> InvokeResult:
        self.calls.append((request.request_id or "", time.time()))
        outcome = self.outcomes.popleft()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[return-value]


def ok() -> InvokeResult:
    return InvokeResult(request_id="x", status=200, payload=b'"ok"', executed_version="$LATEST")


def failed() -> InvokeResult:
    return InvokeResult(request_id="x", status=200, payload=b'{"errorMessage": "boom"}', executed_version="$LATEST",
                        function_error="Unhandled")  # fmt: skip


@pytest.fixture
def functions(tmp_path) -> FunctionService:
    service = FunctionService(SETTINGS, MemoryStore(), FileCodeStore(tmp_path / "code", 10_000, 100_000))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(e, c):\n    return 1\n")
    service.create(FunctionDraft(name="f", role="arn:aws:iam::000000000000:role/r", runtime="python3.12",
                                 handler="app.handler", zip_file=buffer.getvalue()))  # fmt: skip
    return service


def stored(n: int) -> QueuedEvent:
    now = time.time()
    return QueuedEvent(id=f"e{n}", function="f", qualifier=None, payload=b"{}", enqueued=now, next_attempt=now)


async def run_until(store: MemoryEventStore, invoker: ScriptedInvoker, functions: FunctionService, done) -> None:
    parts = AsyncInvocation(SETTINGS, store, functions, invoker)  # type: ignore[arg-type]
    await parts.start()
    try:
        deadline = time.monotonic() + 5
        while not done():
            assert time.monotonic() < deadline, f"not done; calls {invoker.calls}"
            await asyncio.sleep(0.01)
    finally:
        await parts.stop()


def test_stored_events_are_recovered_and_run_at_start(functions):
    store = MemoryEventStore()
    store.apply_nowait([Enqueue(stored(1)), Enqueue(stored(2))]).result()
    invoker = ScriptedInvoker(functions, [ok(), ok()])
    asyncio.run(run_until(store, invoker, functions, lambda: not store.pending_events()))
    assert sorted(call for call, _ in invoker.calls) == ["e1", "e2"]


def test_throttles_and_system_errors_back_off_without_counting_attempts(functions):
    store = MemoryEventStore()
    store.apply_nowait([Enqueue(stored(1))]).result()
    invoker = ScriptedInvoker(functions, [TooManyRequests("Rate Exceeded."), ServiceError("oops"), failed(), ok()])
    asyncio.run(run_until(store, invoker, functions, lambda: not store.pending_events()))
    times = [t for _, t in invoker.calls]
    assert len(times) == 4
    assert times[1] - times[0] >= 0.035  # 1 s capped to the 0.04 s maximum
    assert times[2] - times[1] >= 0.035
    assert times[3] - times[2] >= 0.045  # a function error waits the retry base (0.05 s)
    assert store.failed_events("f") == []


def test_retries_wait_base_then_twice_base_and_then_fail_for_good(functions):
    store = MemoryEventStore()
    store.apply_nowait([Enqueue(stored(1))]).result()
    invoker = ScriptedInvoker(functions, [failed(), failed(), failed()])
    asyncio.run(run_until(store, invoker, functions, lambda: bool(store.failed_events("f"))))
    times = [t for _, t in invoker.calls]
    assert times[1] - times[0] >= 0.045 and times[2] - times[1] >= 0.095
    (kept,) = store.failed_events("f")
    assert (kept.attempts, kept.condition, kept.state) == (3, Condition.RETRIES_EXHAUSTED, EventState.FAILED)
    assert "boom" in (kept.last_error or "")


def test_events_of_a_deleted_function_are_kept_with_the_reason(functions):
    store = MemoryEventStore()
    store.apply_nowait([Enqueue(stored(1))]).result()
    invoker = ScriptedInvoker(functions, [ResourceNotFound("Function not found: arn:...:f")])
    asyncio.run(run_until(store, invoker, functions, lambda: bool(store.failed_events("f"))))
    (kept,) = store.failed_events("f")
    assert kept.condition is None and "no longer exists" in (kept.last_error or "")
    assert len(invoker.calls) == 1


def test_redrive_queues_failed_events_again(functions):
    store = MemoryEventStore()
    store.apply_nowait([Enqueue(stored(1))]).result()
    invoker = ScriptedInvoker(functions, [failed(), failed(), failed(), ok()])

    async def scenario() -> None:
        parts = AsyncInvocation(SETTINGS, store, functions, invoker)  # type: ignore[arg-type]
        await parts.start()
        try:
            while not store.failed_events("f"):
                await asyncio.sleep(0.01)
            assert await parts.queue.redrive("f", ["nope"]) == []
            assert await parts.queue.redrive("f") == ["e1"]
            while len(invoker.calls) < 4 or store.pending_events():
                await asyncio.sleep(0.01)
        finally:
            await parts.stop()

    asyncio.run(asyncio.wait_for(scenario(), 5))
    assert store.failed_events("f") == [] and store.pending_events() == []
