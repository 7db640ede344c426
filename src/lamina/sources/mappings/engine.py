"""The mapping engine: one runner per enabled mapping, one poller per shard, parents first.

A runner discovers the source's shards, gives each new one a checkpoint (a child shard starts at
its horizon) and starts a poller for every unfinished shard whose parents are all finished; when a
poller finishes a closed shard it looks again, so children start right after their parents.

The engine settles state transitions (Creating, Updating, Enabling, Disabling → Enabled or
Disabled; Deleting → gone) once it has applied them: a settings change reaches running pollers
live (they read `runner.config` for every batch), disabling stops them after the batch in flight,
deleting also drops the checkpoints.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from lamina.errors import LaminaError
from lamina.functions.names import FunctionRef
from lamina.functions.service import FunctionService
from lamina.invoke.asynchronous.destinations import Delivery, Destinations
from lamina.invoke.service import InvokeService
from lamina.model.events import QueuedEvent
from lamina.model.invocation import InvokeRequest, InvokeResult
from lamina.model.mappings import Checkpoint, FailureCondition, MappingConfig, MappingState
from lamina.sources.mappings.filters import parse_filters
from lamina.sources.mappings.parallel import ParallelShard, factor_one_window
from lamina.sources.mappings.poller import Failure, ShardPoller, new_request_id
from lamina.sources.mappings.source import Source, SourceGone
from lamina.store.events import EventOp
from lamina.store.mappings import MappingStore, NewFailedBatch

log = logging.getLogger("lamina.mappings")

STOP_GRACE_S = 10.0  # how long a stop waits for batches in flight before cancelling them
SourceFactory = Callable[[str], Source]


class MappingRunner:
    """One enabled mapping: its source, its pollers and the way they reach the rest of Lamina."""

    def __init__(self, engine: MappingEngine, config: MappingConfig, source: Source) -> None:
        self.engine = engine
        self.source = source
        self.pollers: dict[str, ShardPoller | ParallelShard] = {}
        self.tasks: dict[str, asyncio.Task[bool]] = {}
        self.stopping = False
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.config = config
        self.patterns: list[dict[str, Any]] = parse_filters(config.filters)
        self._last_result = "No records processed"

    @property
    def last_result(self) -> str:
        """LastProcessingResult: a problem of any shard, else OK once a batch succeeded."""
        results = [p.last_result for p in self.pollers.values()]
        problem = next((r for r in results if r.startswith("PROBLEM")), None)
        if problem is not None:
            return problem
        return "OK" if "OK" in results else self._last_result

    @last_result.setter
    def last_result(self, value: str) -> None:
        self._last_result = value

    @property
    def retry_base(self) -> float:
        return self.engine.retry_base

    @property
    def retry_max(self) -> float:
        return self.engine.retry_max

    @property
    def role(self) -> str:
        try:
            return self.engine.functions.resolve(FunctionRef(self.config.function, self.config.qualifier)).role
        except LaminaError:
            return ""

    def update(self, config: MappingConfig) -> None:
        restart = config.parallelization != self.config.parallelization
        self.patterns = parse_filters(config.filters)
        self.config = config
        for poller in self.pollers.values():
            # Another ParallelizationFactor deals keys to other lanes: restart from the checkpoint
            # (after the batches in flight) rather than break the order of a key.
            poller.stop() if restart else poller.poke()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"mapping-{self.config.uuid}")

    async def stop(self) -> None:
        self.stopping = True
        self._poke.set()
        for poller in self.pollers.values():
            poller.stop()
        tasks = [t for t in [self._task, *self.tasks.values()] if t is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervise(self) -> None:
        while not self.stopping:
            try:
                await self._start_ready_shards()
            except SourceGone as exc:
                self.last_result = f"PROBLEM: {exc}"
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mapping %s: shard discovery failed", self.config.uuid)
            try:
                await asyncio.wait_for(self._poke.wait(), 5.0)  # also catches reshards nobody reported
            except TimeoutError:
                pass
            self._poke.clear()

    async def _start_ready_shards(self) -> None:
        store = self.engine.store
        shards = await asyncio.to_thread(self.source.shards)
        checkpoints = {c.shard: c for c in await asyncio.to_thread(store.checkpoints, self.config.uuid)}
        missing = [s for s in shards if s.id not in checkpoints]
        if missing:  # shards born after the mapping (resharding): from their beginning
            new = [Checkpoint(self.config.uuid, s.id, self.source.horizon(s.id)) for s in missing]
            await asyncio.wrap_future(store.save_progress_nowait(new))
            checkpoints.update((c.shard, c) for c in new)
        known = {s.id for s in shards}
        for shard in shards:
            checkpoint = checkpoints[shard.id]
            if checkpoint.finished or shard.id in self.tasks or self.stopping:
                continue
            # Parents first: a parent that aged out of the listing counts as finished.
            if all(p not in known or checkpoints[p].finished for p in shard.parents):
                factor = self.config.parallelization
                poller: ShardPoller | ParallelShard = (
                    ShardPoller(self, shard.id, checkpoint.position, factor_one_window(checkpoint.window))
                    if factor == 1
                    else ParallelShard(self, shard.id, checkpoint.position, factor, checkpoint.window)
                )  # fmt: skip
                self.pollers[shard.id] = poller
                task = asyncio.get_running_loop().create_task(poller.run(), name=f"poller-{shard.id}")
                self.tasks[shard.id] = task
                task.add_done_callback(lambda t, s=shard.id: self._finished(s, t))

    def _finished(self, shard: str, task: asyncio.Task[bool]) -> None:
        """A poller ended: its shard is done (children may start) or it was stopped (restart it,
        from the saved checkpoint, unless the whole runner is stopping)."""
        if self.tasks.get(shard) is task:
            self.pollers.pop(shard, None)
            self.tasks.pop(shard, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("mapping %s shard %s: poller failed", self.config.uuid, shard, exc_info=task.exception())
        self._poke.set()

    # -- what pollers call ------------------------------------------------------------------

    async def invoke(self, payload: bytes) -> InvokeResult:
        config = self.config
        request = InvokeRequest(function=config.function, qualifier=config.qualifier, payload=payload,
                                request_id=new_request_id(), trusted_json=True)  # fmt: skip
        return await self.engine.invoker.invoke(request)

    async def save_checkpoint(
        self, shard: str, position: str, finished: bool = False, window: str | None = None
    ) -> None:
        checkpoint = Checkpoint(self.config.uuid, shard, position, finished, time.time(), window)
        await asyncio.wrap_future(self.engine.store.save_progress_nowait([checkpoint]))
        if shard in self.pollers and self.pollers[shard].last_result == "OK":
            self._last_result = "OK"

    async def give_up(self, shard: str, position: str, failure: Failure, window: str | None = None) -> None:
        """Deliver the on-failure record, keep the batch, move the checkpoint: one commit."""
        engine = self.engine
        config = self.config
        request_id = new_request_id()
        condition, payload = failure.condition, failure.payload
        record = failure_record(
            request_id,
            engine.functions.arns.function(config.function, config.qualifier),
            condition,
            failure.attempts,
            failure.result,
            self.source.batch_info_key,
            failure.info,
        )
        ops: Sequence[EventOp] = ()
        if config.on_failure:
            source_event = QueuedEvent(id=request_id, function=config.function, qualifier=config.qualifier,
                                       payload=payload, enqueued=time.time())  # fmt: skip
            try:
                ops = engine.destinations.deliver(config.on_failure, Delivery(record, source_event, {}))
            except LaminaError as exc:
                log.warning("mapping %s: cannot deliver to %s: %s", config.uuid, config.on_failure, exc)
        failed = NewFailedBatch(config.uuid, shard, str(condition), record.decode(), payload, time.time())
        checkpoint = Checkpoint(config.uuid, shard, position, False, time.time(), window)
        await asyncio.wrap_future(engine.store.save_progress_nowait([checkpoint], failed, ops))
        if ops:
            engine.schedule(ops)
        self.last_result = "PROBLEM: Function call failed"


def failure_record(
    request_id: str,
    function_arn: str,
    condition: FailureCondition,
    attempts: int,
    result: InvokeResult | None,
    info_key: str,
    info: dict[str, Any],
) -> bytes:
    """AWS's on-failure record for a stream batch (the records themselves are not included);
    without `responseContext` when the batch was never invoked (its records were too old)."""
    record: dict[str, Any] = {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": str(condition),
            "approximateInvokeCount": attempts,
        },
    }
    if result is not None:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": result.executed_version}
        if result.function_error:
            response["functionError"] = result.function_error
        record["responseContext"] = response
    record["version"] = "1.0"
    record["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    record[info_key] = info
    return json.dumps(record, separators=(",", ":")).encode()


class MappingEngine:
    """Runs the enabled mappings between `start()` and `stop()`; `changed(uuid)` (from any thread)
    applies what the control plane wrote."""

    def __init__(
        self,
        store: MappingStore,
        functions: FunctionService,
        invoker: InvokeService,
        sources: SourceFactory,
        destinations: Destinations,
        schedule: Callable[[Sequence[EventOp]], None] = lambda ops: None,
        retry_base: float = 0.1,
        retry_max: float = 5.0,
    ) -> None:
        self.store = store
        self.functions = functions
        self.invoker = invoker
        self.sources = sources
        self.destinations = destinations
        self.schedule = schedule
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.lock = threading.Lock()  # serialises every write of a mapping's config (with the control plane)
        self.runners: dict[str, MappingRunner] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._results: dict[str, str] = {}  # LastProcessingResult of mappings not running (disabled)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for config in await asyncio.to_thread(self.store.list_mappings):
            self._spawn(config.uuid)

    async def stop(self) -> None:
        self._loop = None
        runners = list(self.runners.values())
        self.runners.clear()
        await asyncio.gather(*(r.stop() for r in runners), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def changed(self, uuid: str) -> None:
        """Thread-safe: reconcile the mapping with what is stored (no-op before start)."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._spawn, uuid)
        except RuntimeError:  # the loop is closed: shutting down
            pass

    def _spawn(self, uuid: str) -> None:
        task = asyncio.get_running_loop().create_task(self._reconcile(uuid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconcile(self, uuid: str) -> None:
        lock = self._locks.setdefault(uuid, asyncio.Lock())
        async with lock:
            try:
                await self._apply(uuid)
            except Exception:
                log.exception("mapping %s: could not apply its change", uuid)

    async def _apply(self, uuid: str) -> None:
        config = await asyncio.to_thread(self.store.get_mapping, uuid)
        runner = self.runners.get(uuid)
        if config is None or config.state is MappingState.DELETING:
            if runner is not None:
                del self.runners[uuid]
                await runner.stop()
            if config is not None:
                await asyncio.to_thread(self.store.delete_mapping, uuid)
            self._locks.pop(uuid, None)
            self._results.pop(uuid, None)
            return
        if not config.enabled:
            if runner is not None:
                del self.runners[uuid]
                await runner.stop()
                self._results[uuid] = runner.last_result
        elif runner is None:
            runner = MappingRunner(self, config, self.sources(config.source_arn))
            runner.last_result = self._results.pop(uuid, runner.last_result)
            self.runners[uuid] = runner
            runner.start()
        else:
            runner.update(config)
        if config.state.transitional:
            await asyncio.to_thread(self._settle, config)

    def _settle(self, seen: MappingConfig) -> None:
        """Write the final state, unless the mapping changed again meanwhile (that change settles)."""
        final = MappingState.ENABLED if seen.enabled else MappingState.DISABLED
        with self.lock:
            current = self.store.get_mapping(seen.uuid)
            if current is None or current != seen:
                return
            self.store.put_mapping(current.with_changes(state=final))

    # -- visibility -------------------------------------------------------------------------

    def last_result(self, uuid: str) -> str | None:
        runner = self.runners.get(uuid)
        return runner.last_result if runner is not None else self._results.get(uuid)

    def shard_status(self, uuid: str) -> dict[str, dict[str, Any]]:
        runner = self.runners.get(uuid)
        return {s: p.status() for s, p in runner.pollers.items()} if runner is not None else {}

    async def replay(self, config: MappingConfig, payload: bytes) -> InvokeResult:
        """Invoke the mapping's function (as it is now) with a kept batch's event."""
        request = InvokeRequest(function=config.function, qualifier=config.qualifier, payload=payload,
                                request_id=new_request_id())  # fmt: skip
        return await self.invoker.invoke(request)
