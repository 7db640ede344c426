"""The asynchronous invocation queue: accepts Event invokes durably and feeds them to functions.

accept: one Enqueue op through the store (group commit: concurrent Event invokes share a COMMIT);
202 is answered only after it resolves. The event is handed to the consumer in memory as soon as
the insert is queued, so the run overlaps the commit's fsync.

The consumer (one asyncio task) keeps the queued events of each function in a FIFO, the ones
waiting for a retry in a heap by due time, and starts events while the function has concurrency
to spare (`limiter.available`): a busy function makes events wait, it does not fail them. It
sleeps until something is enqueued, a run finishes, or the next retry is due (no polling while
idle; while a function is saturated by invocations that are not ours, it looks again every
BUSY_POLL seconds, since the limiter does not announce freed slots).

Each event runs through `InvokeService.invoke` as a RequestResponse call with the event's id as
its request id, so it gets its logs and meter row like any invoke. Then, by outcome:
- success → OnSuccess record, event deleted;
- function error (raised, timed out, crashed) → retried after base, then 2 * base, up to
  MaximumRetryAttempts; then OnFailure record (RetriesExhausted) and DLQ, event kept as failed;
- throttle or system error → back on the queue with exponential backoff (1 s → cap), no attempt
  counted;
- too old (MaximumEventAgeInSeconds) when due → OnFailure (EventAgeExceeded) and DLQ, kept as failed;
- reserved concurrency 0 → OnFailure/DLQ at once, no retries;
- function gone, or any other client error → kept as failed with the error (nothing to deliver to).
Destination records are committed in the same transaction as the event's own change.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence

from lamina import ids
from lamina.config import Settings
from lamina.errors import ClientError, LaminaError, ResourceNotFound, TooManyRequests
from lamina.functions.names import FunctionRef, parse_function_ref
from lamina.invoke.asynchronous.backoff import expired, requeue_delay, retry_delay
from lamina.invoke.asynchronous.configs import EventInvokeConfigs
from lamina.invoke.asynchronous.destinations import (
    ON_FAILURE,
    ON_SUCCESS,
    Delivery,
    Destinations,
    destination_record,
)
from lamina.invoke.service import InvokeService, Prepared
from lamina.model.events import Condition, EventInvokeConfig, EventState, QueuedEvent, QueueStats
from lamina.model.function import LATEST
from lamina.model.invocation import InvokeRequest, InvokeResult
from lamina.store.events import Enqueue, EventOp, EventStore, Remove, Update

log = logging.getLogger("lamina.async")

BUSY_POLL = 0.02  # seconds between looks while a function is saturated by others' invocations
CACHED_PAYLOAD = 256 * 1024  # payloads up to this size stay in memory until run; larger ones are re-read
_ERROR_TEXT = 1024


class EventQueue:
    """Implements `invoke.service.EventSink`, and runs the consumer between start() and stop()."""

    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        invoker: InvokeService,
        configs: EventInvokeConfigs,
        destinations: Destinations,
    ) -> None:
        self.settings = settings
        self.store = store
        self.invoker = invoker
        self.configs = configs
        self.destinations = destinations
        self._ready: dict[str, deque[QueuedEvent]] = {}
        self._delayed: list[tuple[float, int, QueuedEvent]] = []
        self._order = itertools.count()
        self._running: dict[str, QueuedEvent] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._pending_before_start: list[QueuedEvent] = []

    # -- accepting ----------------------------------------------------------------------------

    async def accept(self, request: InvokeRequest, prepared: Prepared, request_id: str) -> None:
        """Commit the event, then schedule it: 202 means it survives kill -9."""
        qualifier = parse_function_ref(request.function, request.qualifier).qualifier
        now = time.time()
        event = QueuedEvent(id=request_id, function=prepared.config.name, qualifier=qualifier,
                            payload=prepared.payload, enqueued=now, next_attempt=now)  # fmt: skip
        committed = self.store.apply_nowait([Enqueue(event)])
        # Scheduled while the commit's fsync is under way: the handler may start before 202 is
        # sent, never before the insert is queued ahead of the event's own later writes (the
        # writer applies them in order). If the commit fails the caller hears an error, though
        # the event may still run once (docs/async.md, "Duplicates").
        self._schedule(event)
        await asyncio.wrap_future(committed)

    async def commit(self, ops: Sequence[EventOp]) -> None:
        """Apply ops durably, then schedule the events they enqueue (destination deliveries)."""
        await asyncio.wrap_future(self.store.apply_nowait(ops))
        self.committed(ops)

    def committed(self, ops: Sequence[EventOp]) -> None:
        """Schedule the events `ops` enqueued, once another store committed them in its own
        transaction (a mapping's on-failure record commits with the mapping's checkpoint)."""
        for op in ops:
            if isinstance(op, Enqueue):
                self._schedule(op.event)

    def _schedule(self, event: QueuedEvent) -> None:
        if len(event.payload) > CACHED_PAYLOAD:
            event = event.with_changes(payload=b"")
        if self._wake is None:  # not started yet: kept for start()
            self._pending_before_start.append(event)
            return
        if event.next_attempt > time.time():
            heapq.heappush(self._delayed, (event.next_attempt, next(self._order), event))
        else:
            self._ready.setdefault(event.function, deque()).append(event)
        self._wake.set()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load what was queued before a restart (in-flight events included: at-least-once)."""
        self._wake = asyncio.Event()
        recovered = await asyncio.to_thread(self.store.pending_events)
        seen = {e.id for e in recovered}
        for event in [*recovered, *(e for e in self._pending_before_start if e.id not in seen)]:
            self._schedule(event)
        self._pending_before_start.clear()
        if recovered:
            log.info("%d queued events recovered", len(recovered))
        self._loop_task = asyncio.get_running_loop().create_task(self._consume(), name="lamina-async-consumer")

    async def stop(self) -> None:
        """Stop starting events and wait briefly for running ones (the rest run again after restart)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    # -- consuming ----------------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            now = time.time()
            while self._delayed and self._delayed[0][0] <= now:
                event = heapq.heappop(self._delayed)[2]
                self._ready.setdefault(event.function, deque()).append(event)
            try:
                started, blocked = self._start_ready()
            except Exception:  # a bug must not stop the consumer: the events stay queued
                log.exception("async consumer: could not start events; trying again shortly")
                started, blocked = 0, True
            if started:
                await asyncio.sleep(0)  # let the new runs take their leases before counting again
                continue
            timeout = self._delayed[0][0] - now if self._delayed else None
            if blocked:
                timeout = BUSY_POLL if timeout is None else min(timeout, BUSY_POLL)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    def _start_ready(self) -> tuple[int, bool]:
        """Start what each function has room for, round-robin; (started, some left waiting)."""
        limiter = self.invoker.limiter
        started, blocked = 0, False
        for function in list(self._ready):
            queue = self._ready[function]
            room = len(queue) if limiter.reserved(function) == 0 else limiter.available(function)
            while queue and room > 0:
                self._start(queue.popleft())
                room -= 1
                started += 1
            if queue:
                blocked = True
                self._ready[function] = self._ready.pop(function)  # to the back of the round
            else:
                del self._ready[function]
        return started, blocked

    def _start(self, event: QueuedEvent) -> None:
        self._running[event.id] = event
        task = asyncio.get_running_loop().create_task(self._run(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, event: QueuedEvent) -> None:
        try:
            await self._process(event)
        except Exception:  # a bug must not lose the event: it stays queued in the store
            log.exception("async event %s of %s: unexpected failure; it runs again after a restart",
                          event.id, event.function)  # fmt: skip
        finally:
            self._running.pop(event.id, None)
            if self._wake is not None:
                self._wake.set()

    async def _process(self, event: QueuedEvent) -> None:
        config = self.configs.effective(event.function, event.qualifier)
        now = time.time()
        if expired(event.enqueued, self.configs.max_age(config), now):
            message = f"event is older than MaximumEventAgeInSeconds ({self.configs.max_age(config):g} s)"
            await self._fail(event, Condition.EVENT_AGE_EXCEEDED, message, None, None)
            return
        if self.invoker.limiter.reserved(event.function) == 0:
            message = "throttled: the function's reserved concurrency is 0"
            await self._fail(event, Condition.RETRIES_EXHAUSTED, message, None, None)
            return
        payload = event.payload or await asyncio.to_thread(self.store.event_payload, event.id)
        if payload is None:
            return  # removed meanwhile (a redrive or a delete raced it)
        event = event.with_changes(payload=payload)
        # Checked as JSON when it was accepted (or built by Lamina: destination records).
        request = InvokeRequest(function=event.function, qualifier=event.qualifier, payload=payload,
                                request_id=event.id, trusted_json=True)  # fmt: skip
        try:
            result = await self.invoker.invoke(request)
        except TooManyRequests as exc:
            if self.invoker.limiter.reserved(event.function) == 0:
                await self._fail(event, Condition.RETRIES_EXHAUSTED, f"throttled: {exc.message}", None, None)
            else:
                await self._requeue(event, f"throttled ({exc.reason}): {exc.message}")
            return
        except ResourceNotFound as exc:
            await self._drop(event, f"the function no longer exists: {exc.message}")
            return
        except ClientError as exc:
            await self._drop(event, f"{exc.code}: {exc.message}")
            return
        except LaminaError as exc:
            await self._requeue(event, f"system error {exc.code}: {exc.message}")
            return
        except Exception as exc:
            log.exception("async event %s of %s: system error", event.id, event.function)
            await self._requeue(event, f"system error: {exc!r}")
            return
        await self._finish(event.with_changes(attempts=event.attempts + 1, throttles=0), config, result)

    async def _finish(self, event: QueuedEvent, config: EventInvokeConfig, result: InvokeResult) -> None:
        response = (result.executed_version, result.function_error, result.payload)
        if result.function_error is None:
            ops: list[EventOp] = []
            if config.on_success:
                ops += self._deliver_record(event, Condition.SUCCESS, config.on_success, ON_SUCCESS, response,
                                            result.executed_version)  # fmt: skip
            await self.commit([*ops, Remove(event.id)])
            return
        error = _error_text(result)
        if event.attempts <= config.retries:
            now = time.time()
            due = now + retry_delay(event.attempts, self.settings.async_retry_base_seconds)
            # A retry due after the event has expired is not waited for: it expires then.
            due = min(due, event.enqueued + self.configs.max_age(config) + 0.001)
            retry = event.with_changes(next_attempt=due, last_error=error)
            await self.commit([Update(retry)])
            self._schedule(retry)
            return
        await self._fail(event, Condition.RETRIES_EXHAUSTED, error, response, result.executed_version)

    async def _requeue(self, event: QueuedEvent, error: str) -> None:
        """A throttle or system error: back on the queue with exponential backoff (no attempt counted)."""
        throttles = event.throttles + 1
        due = time.time() + requeue_delay(throttles, self.settings.async_backoff_max_seconds)
        config = self.configs.effective(event.function, event.qualifier)
        due = min(due, event.enqueued + self.configs.max_age(config) + 0.001)
        retry = event.with_changes(throttles=throttles, next_attempt=due, last_error=error)
        await self.commit([Update(retry)])
        self._schedule(retry)

    async def _drop(self, event: QueuedEvent, error: str) -> None:
        """Kept as failed, with no destination: there is no function config to deliver by."""
        log.warning("async event %s of %s failed: %s", event.id, event.function, error)
        await self.commit([Update(event.with_changes(state=EventState.FAILED, last_error=error))])

    async def _fail(
        self,
        event: QueuedEvent,
        condition: Condition,
        error: str,
        response: tuple[str, str | None, bytes] | None,
        executed_version: str | None,
    ) -> None:
        """Failed for good: OnFailure record and DLQ, committed with the event kept as failed."""
        if not event.payload:
            event = event.with_changes(payload=await asyncio.to_thread(self.store.event_payload, event.id) or b"")
        config = self.configs.effective(event.function, event.qualifier)
        ops: list[EventOp] = []
        notes = [error]
        if config.on_failure:
            delivered = self._deliver_record(event, condition, config.on_failure, ON_FAILURE, response,
                                             executed_version)  # fmt: skip
            if delivered is None:
                notes.append(f"OnFailure delivery to {config.on_failure} failed")
            ops += delivered or []
        dlq = self._dead_letter_target(event)
        if dlq:
            attributes = {"RequestID": event.id, "ErrorCode": "200", "ErrorMessage": error[:_ERROR_TEXT]}
            try:
                ops += self.destinations.deliver(dlq, Delivery(event.payload, event, attributes))
            except LaminaError as exc:
                log.warning("async event %s of %s: dead-letter delivery failed: %s", event.id, event.function,
                            exc.message)  # fmt: skip
                notes.append(f"DLQ delivery failed: {exc.message}")
        failed = event.with_changes(state=EventState.FAILED, condition=condition, last_error="; ".join(notes))
        await self.commit([*ops, Update(failed)])

    def _deliver_record(
        self,
        event: QueuedEvent,
        condition: Condition,
        target: str,
        purpose: str,
        response: tuple[str, str | None, bytes] | None,
        executed_version: str | None,
    ) -> list[EventOp] | None:
        arn = self.invoker.functions.arns.function(event.function, executed_version or event.qualifier or LATEST)
        body = destination_record(event, condition, arn, event.payload, response)
        try:
            return list(self.destinations.deliver(target, Delivery(body, event, {})))
        except LaminaError as exc:
            log.warning("async event %s of %s: %s delivery to %s failed: %s", event.id, event.function, purpose,
                        target, exc.message)  # fmt: skip
            return None

    def _dead_letter_target(self, event: QueuedEvent) -> str | None:
        try:
            config = self.invoker.functions.resolve(FunctionRef(event.function, event.qualifier))
        except LaminaError:
            return None
        return config.dead_letter_target or None

    # -- beyond AWS: visibility and redrive ---------------------------------------------------

    async def stats(self, function: str) -> dict[str, object]:
        """The function's queue: stored counts, plus the runs in flight (known on this loop only)."""
        stored: QueueStats = await asyncio.to_thread(self.store.queue_stats, function)
        now = time.time()
        running = sum(1 for e in self._running.values() if e.function == function)
        return {
            "function": function,
            "depth": stored.queued,
            "in_flight": running,
            "in_retry": stored.in_retry,
            "oldest_age_s": round(now - stored.oldest_enqueued, 3) if stored.oldest_enqueued else None,
            "failed": stored.failed,
        }

    def failed(self, function: str, limit: int = 100) -> list[QueuedEvent]:
        return self.store.failed_events(function, limit)

    async def redrive(self, function: str, ids: Sequence[str] | None = None) -> list[str]:
        """Queue failed events again as new arrivals (age and attempts reset; the id is kept)."""
        failed = await asyncio.to_thread(self.store.failed_events, function, 1_000_000)
        if ids is not None:
            wanted = set(ids)
            failed = [e for e in failed if e.id in wanted]
        now = time.time()
        again = [e.with_changes(state=EventState.QUEUED, attempts=0, throttles=0, enqueued=now, next_attempt=now,
                                condition=None, last_error=None) for e in failed]  # fmt: skip
        if again:
            await asyncio.wrap_future(self.store.apply_nowait([Update(e) for e in again]))
            for event in again:
                self._schedule(event)
        return [e.id for e in again]


def new_event_id() -> str:
    return ids.request_id()


def _error_text(result: InvokeResult) -> str:
    text = result.payload.decode(errors="replace")
    return f"{result.function_error}: {text}"[:_ERROR_TEXT]
