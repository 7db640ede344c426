"""One shard's poller: read → filter → batch → invoke → decide → checkpoint, in order, forever.

Records read ahead sit in `pending` (everything after the checkpoint that is not decided yet); a
batch is a prefix of it. The checkpoint moves only once the batch's outcome is decided and saved:
success (every record up to the batch's last), a partial failure (up to the record before the
lowest reported one), a failure given up on (delivered to OnFailure in the same commit), or records
the filters dropped. So a crash repeats at most the batch in flight.

- Wake-ups: an empty shard awaits the source's signal (new records wake it at once; there is no
  poll interval) or a poke (stop, settings updated).
- Batching: a batch is sent when `BatchSize` records are read, when the batching window
  (`MaximumBatchingWindowInSeconds`, counted from the first record of the batch) ends, or when the
  next record would take the event past 6 MB (MAX_PAYLOAD).
- Errors block the shard: the batch is retried (backoff `retry_base`·2^n up to `retry_max`) until
  it succeeds, `MaximumRetryAttempts` retries failed, or its oldest record is older than
  `MaximumRecordAgeInSeconds`; then it goes to OnFailure and the shard moves on. With
  `BisectBatchOnFunctionError` a failed batch of more than one record is split in halves first
  (no retry used); the halves (`segments`) are sent one after the other. Throttles and system
  errors are retried without counting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lamina import ids
from lamina.errors import LaminaError, TooManyRequests
from lamina.model.invocation import InvokeResult
from lamina.model.mappings import FailureCondition, MappingConfig
from lamina.sources.mappings.filters import matches_any
from lamina.sources.mappings.outcome import Kind, judge
from lamina.sources.mappings.source import SourceGone, SourceRecord
from lamina.sources.mappings.windows import Window, bounds_of

if TYPE_CHECKING:
    from lamina.sources.mappings.engine import MappingRunner

log = logging.getLogger("lamina.mappings")

MAX_PAYLOAD = 6_291_456  # the synchronous invoke request limit
_ENVELOPE = len(b'{"Records":[]}')
READ_BYTES = 5 << 20  # data read per call: with base64 and JSON, about what one event can carry


@dataclass(frozen=True)
class Failure:
    """A batch given up on: what its on-failure record says."""

    condition: FailureCondition
    attempts: int
    result: InvokeResult | None  # None: never invoked (records too old when read)
    info: dict[str, Any]
    payload: bytes  # the event, kept for replay


class ShardPoller:
    def __init__(self, runner: MappingRunner, shard: str, checkpoint: str, window: str | None = None) -> None:
        self.runner = runner
        self.shard = shard
        self.checkpoint = checkpoint
        self.read_pos = checkpoint
        self.pending: deque[SourceRecord] = deque()
        # Sizes of the next batches, in order: bisected halves, or a failed batch to retry as it was.
        self.segments: list[int] = []
        self.attempts = 0  # failed invokes of the batch at the head (approximateInvokeCount)
        self.stopping = False
        self._poke = asyncio.Event()
        # The open tumbling window (one that was open at the last checkpoint, after a restart).
        self.window: Window | None = Window.from_json(window) if window is not None else None
        self.final_due = False
        # what `lamina mappings show` reports
        self.last_result = "No records processed"
        self.iterator_age_ms = 0
        self.processed = 0

    @property
    def config(self) -> MappingConfig:
        return self.runner.config

    def poke(self) -> None:
        self._poke.set()

    def stop(self) -> None:
        self.stopping = True
        self._poke.set()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> bool:
        """Process until stopped (False) or until a closed shard is done (True)."""
        while not self.stopping:
            try:
                if self.final_due:  # a tumbling window ended (by time, by a reshard, or early)
                    await self._final()
                    continue
                taken = await self._gather()
                if taken is None:
                    continue
                if not taken:  # a closed shard read to its end (which also closes a tumbling window)
                    if self.window is not None:
                        self.final_due = True
                        continue
                    await self._save(finished=True)
                    return True
                await self._process(taken)
            except SourceGone as exc:
                self.last_result = f"PROBLEM: {exc}"
                await self._sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the shard: log, wait, go on from the checkpoint
                log.exception("mapping %s shard %s: unexpected error", self.config.uuid, self.shard)
                self.last_result = "PROBLEM: internal error"
                await self._sleep(1.0)
        return False

    async def _gather(self) -> list[SourceRecord] | None:
        """The next batch's records (a prefix of `pending`); [] when the shard is finished; None
        when interrupted (stop or poke: look at the settings again)."""
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while not self.stopping:
            config = self.config
            limit = self.segments[0] if self.segments else config.batch_size
            version = self._version()
            need = limit - len(self.pending)
            got, finished = await self._fill(need) if need > 0 else (0, False)
            if finished and not got and not self.pending:
                return []
            if not self.pending:
                timeout = None
                if self.window is not None:  # a tumbling window is open: its end needs a final invoke
                    timeout = self.window.end / 1000 - time.time()
                    if timeout <= 0:
                        self.final_due = True
                        return None
                await self._wait(version, timeout)
                if self._take_poke():
                    return None
                continue
            if config.tumbling_window_s:
                start, end = bounds_of(self.pending[0].arrival_ms, config.tumbling_window_s)
                if self.window is not None and (start, end) != self.window.bounds:
                    self.final_due = True  # the open window is over: close it before the next one
                    return None
                if self.window is None:
                    self.window = Window(start, end)
                same = next((i for i, r in enumerate(self.pending) if r.arrival_ms >= end), len(self.pending))
                limit = min(limit, same)
                if same < len(self.pending):  # records of a later window are there: this one is whole
                    return list(self.pending)[:limit]
            retrying = self.attempts > 0 or bool(self.segments)
            if config.window_s == 0 or len(self.pending) >= limit or retrying:
                return list(self.pending)[:limit]
            if deadline is None:
                deadline = loop.time() + config.window_s
            remaining = deadline - loop.time()
            if remaining <= 0:
                return list(self.pending)[:limit]
            if got:
                continue  # more may be there already
            await self._wait(version, remaining)
            if self._take_poke() and self.stopping:
                return None
        return None

    async def _process(self, taken: list[SourceRecord]) -> None:
        config = self.config
        runner = self.runner
        source = runner.source
        if config.max_record_age_s != -1 and self.attempts == 0:
            # Records already older than MaximumRecordAgeInSeconds are not sent: they go to
            # OnFailure (RecordAgeExceeded) without an invoke. Arrival order makes them a prefix.
            cutoff = time.time() * 1000 - config.max_record_age_s * 1000
            expired = next((i for i, r in enumerate(taken) if r.arrival_ms >= cutoff), len(taken))
            if expired:
                await self._fail(taken[:expired], FailureCondition.RECORD_AGE_EXCEEDED, None)
                return
        patterns = runner.patterns
        matching = [r for r in taken if matches_any(patterns, source.filter_view(r))] if patterns else taken
        encoded = source.event_records(self.shard, matching, runner.role)
        extra = self.window.fields(self.shard, source.arn, final=False) if self.window is not None else b""
        # The 6 MB cut: the batch ends before the record that would take the event past the limit.
        size, fit = _ENVELOPE + len(extra), 0
        for body in encoded:
            size += len(body) + 1
            if size > MAX_PAYLOAD and fit > 0:
                break
            fit += 1
        if fit < len(matching):
            stop_at = matching[fit]
            taken = taken[: next(i for i, r in enumerate(taken) if r is stop_at)]
            matching, encoded = matching[:fit], encoded[:fit]
        if not matching:  # every record filtered out: skipped, and checkpointed past
            await self._advance(len(taken))
            return
        payload = b'{"Records":[' + b",".join(encoded) + b"]" + extra + b"}"
        try:
            result = await runner.invoke(payload)
        except TooManyRequests:
            self.last_result = "PROBLEM: Function call throttled"
            await self._backoff(self.attempts + 1)
            return
        except LaminaError as exc:
            self.last_result = f"PROBLEM: {exc.message}"
            await self._backoff(self.attempts + 1)
            return
        verdict = judge(result, [r.position for r in matching], config.report_item_failures,
                        window=self.window is not None)  # fmt: skip
        self.iterator_age_ms = max(0, int(time.time() * 1000) - matching[-1].arrival_ms)
        if self.window is not None and verdict.kind is not Kind.FAILURE and self.window.keep(verdict.state):
            self.final_due = True  # AWS: a state over 1 MB ends the window early
        if verdict.kind is Kind.SUCCESS:
            self.last_result = "OK"
            self.processed += len(matching)
            await self._advance(len(taken))
            return
        self.last_result = "PROBLEM: Function call failed"
        if verdict.kind is Kind.PARTIAL:
            failed = matching[verdict.failed_at]
            done = next(i for i, r in enumerate(taken) if r is failed)
            self.processed += verdict.failed_at
            if done:
                await self._advance(done, keep_attempts=True)
                taken = taken[done:]
        elif config.bisect and len(taken) > 1:
            half = len(taken) // 2
            self.segments[:1] = [half, len(taken) - half]
            self.attempts = 0
            return
        self.attempts += 1
        condition = self._give_up(taken)
        if condition is None:
            # Retried as it was: the same records, however many arrived meanwhile.
            self.segments[:1] = [len(taken)]
            await self._backoff(self.attempts)
            return
        await self._fail(taken, condition, result)

    # -- tumbling windows -------------------------------------------------------------------

    async def _final(self) -> None:
        """The window's last invoke (no records, `isFinalInvokeForWindow`); then the state resets.
        A failing final invoke is retried like a batch; given up, the window's state is dropped."""
        if self.window is None:  # nothing open (a reshard and a window end at once)
            self.final_due = False
            return
        payload = b'{"Records":[]' + self.window.fields(self.shard, self.runner.source.arn, final=True) + b"}"
        try:
            result = await self.runner.invoke(payload)
        except LaminaError as exc:
            self.last_result = f"PROBLEM: {exc.message}"
            await self._backoff(self.attempts + 1)
            return
        if result.function_error:
            self.attempts += 1
            self.last_result = "PROBLEM: Function call failed"
            config = self.config
            if config.max_retries == -1 or self.attempts <= config.max_retries:
                await self._backoff(self.attempts)
                return
        self.attempts = 0
        self.window, self.final_due = None, False
        await self._save()  # the window is closed: a restart must not close it again

    def _give_up(self, taken: Sequence[SourceRecord]) -> FailureCondition | None:
        config = self.config
        if config.max_retries != -1 and self.attempts > config.max_retries:
            return FailureCondition.RETRIES_EXHAUSTED
        oldest = min(r.arrival_ms for r in taken)
        if config.max_record_age_s != -1 and time.time() * 1000 - oldest > config.max_record_age_s * 1000:
            return FailureCondition.RECORD_AGE_EXCEEDED
        if oldest < self.runner.source.expired_before_ms(self.shard):
            return FailureCondition.RECORD_AGE_EXCEEDED  # "until the record expires": past retention
        return None

    # -- deciding ---------------------------------------------------------------------------

    async def _advance(self, count: int, keep_attempts: bool = False) -> None:
        """The first `count` pending records are decided: checkpoint past them."""
        records = [self.pending.popleft() for _ in range(count)]
        self._consumed(count)
        if not keep_attempts:
            self.attempts = 0
        self.checkpoint = records[-1].position
        await self._decided(records, None)

    def _consumed(self, count: int) -> None:
        if self.segments:
            self.segments[0] -= count
            if self.segments[0] <= 0:
                self.segments.pop(0)

    async def _fail(
        self,
        taken: list[SourceRecord],
        condition: FailureCondition,
        result: InvokeResult | None,
    ) -> None:
        """Give the batch up: on-failure record, kept batch and checkpoint in one commit."""
        runner = self.runner
        source = runner.source
        role = runner.role
        payload = b'{"Records":[' + b",".join(source.event_records(self.shard, taken, role)) + b"]}"
        failure = Failure(condition, self.attempts, result, source.batch_info(self.shard, taken), payload)
        for _ in range(len(taken)):
            self.pending.popleft()
        self._consumed(len(taken))
        self.attempts = 0
        self.checkpoint = taken[-1].position
        await self._decided(taken, failure)
        log.info("mapping %s shard %s: batch of %d went to OnFailure (%s)", self.config.uuid, self.shard,
                 len(taken), condition)  # fmt: skip

    async def _save(self, finished: bool = False) -> None:
        await self.runner.save_checkpoint(self.shard, self.checkpoint, finished, self._window_json())

    def _window_json(self) -> str | None:
        """The open tumbling window and its state, saved with the checkpoint (so a restart resumes
        the window where the checkpoint is, state included)."""
        return self.window.to_json() if self.window is not None else None

    # -- where records come from and where decisions go (a parallel lane overrides these) ---

    def _version(self) -> int:
        return self.runner.source.version(self.shard)

    async def _fill(self, need: int) -> tuple[int, bool]:
        """Read up to `need` more records into `pending`: (how many came, the shard is finished)."""
        result = await asyncio.to_thread(self.runner.source.read, self.shard, self.read_pos, need, READ_BYTES)
        if result.records:
            self.pending.extend(result.records)
            self.read_pos = result.records[-1].position
        return len(result.records), result.finished

    async def _signal(self, version: int, timeout: float | None) -> bool:
        return await self.runner.source.wait(self.shard, version, timeout)

    async def _decided(self, records: list[SourceRecord], failure: Failure | None) -> None:
        """`records` (a prefix of what was pending, in order) are decided: save the checkpoint,
        with the failure's delivery and kept batch in the same commit."""
        if failure is None:
            await self._save()
        else:
            await self.runner.give_up(self.shard, records[-1].position, failure, self._window_json())

    # -- waiting ----------------------------------------------------------------------------

    async def _wait(self, version: int, timeout: float | None) -> None:
        """Until records arrive (the source's signal), a poke, or the timeout."""
        if self._poke.is_set():
            return
        waiter = asyncio.ensure_future(self._signal(version, timeout))
        poked = asyncio.ensure_future(self._poke.wait())
        try:
            await asyncio.wait({waiter, poked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, poked):
                if not task.done():
                    task.cancel()
            await asyncio.gather(waiter, poked, return_exceptions=True)

    def _take_poke(self) -> bool:
        poked = self._poke.is_set()
        self._poke.clear()
        return poked

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._poke.wait(), seconds)
        except TimeoutError:
            pass
        self._poke.clear()

    async def _backoff(self, attempt: int) -> None:
        runner = self.runner
        await self._sleep(min(runner.retry_max, runner.retry_base * 2 ** max(0, attempt - 1)))

    # -- visibility -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "checkpoint": self.checkpoint,
            "lastResult": self.last_result,
            "retries": self.attempts,
            "pending": len(self.pending),
            "iteratorAgeMs": self.iterator_age_ms,
            "processed": self.processed,
        }


def new_request_id() -> str:
    return ids.request_id()
