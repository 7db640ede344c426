"""Provisioned concurrency, the running side: makes the pool keep initialised environments for
every stored configuration, and reports how far it got.

The stored configurations (functions/concurrency.py) are the truth; `apply(name)` brings the pool
in line with them for one function: each configuration's qualifier is resolved to its version (an
alias to its primary version), that version's EnvironmentSpec is built as invocations build it
(InvokeService.spec_for), and the pool is told how many environments to keep. Called after every
Put/Delete, after every change of the function (a version deleted, an alias moved: its
environments follow the alias), and for every function at server start. A configuration whose
version or alias is gone is deleted, as Lambda deletes it with them.

Status (PutProvisionedConcurrencyConfig's output): IN_PROGRESS while environments start, READY
once all requested are initialised, FAILED with StatusReason when an init phase failed.
Runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from lamina.errors import ResourceNotFound
from lamina.functions.concurrency import ConcurrencyService
from lamina.functions.names import FunctionRef
from lamina.invoke.service import InvokeService
from lamina.model.concurrency import ProvisionedConfig
from lamina.runtime.base import EnvironmentSpec, LogLine
from lamina.runtime.pool import ProcessPool
from lamina.store.base import LogEvent

log = logging.getLogger("lamina.invoke")


@dataclass(frozen=True)
class ProvisionedStatus:
    allocated: int
    available: int
    status: str  # IN_PROGRESS | READY | FAILED
    reason: str | None = None


class Provisioner:
    def __init__(self, concurrency: ConcurrencyService, invoker: InvokeService, pool: ProcessPool) -> None:
        self.concurrency = concurrency
        self.invoker = invoker
        self.pool = pool
        self._keys: dict[tuple[str, str], tuple[str, ...]] = {}  # (function, qualifier) -> pool key
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        pool.on_provisioned = self._log_init

    def _log_init(self, spec: EnvironmentSpec, stream: str, init_logs: list[LogLine]) -> None:
        """INIT_START and the init output go to the environment's stream when it is allocated, as
        on Lambda (the line is the one InvokeService writes before a cold start's first START)."""
        now = int(time.time() * 1000)
        version = f"{spec.runtime.replace('python', 'python:')}.lamina"
        arn = f"arn:aws:lambda:{self.invoker.settings.region}::runtime:lamina-{spec.runtime}"
        first = min([now, *(line.timestamp_ms for line in init_logs)])
        lines = [LogLine(first, f"INIT_START Runtime Version: {version}\tRuntime Version ARN: {arn}"), *init_logs]
        group = spec.env_vars.get("AWS_LAMBDA_LOG_GROUP_NAME") or f"/aws/lambda/{spec.function_name}"
        events = [LogEvent(timestamp_ms=line.timestamp_ms, message=line.text, ingestion_ms=now) for line in lines]
        self.invoker.logs.append_logs_nowait(group, stream, events).add_done_callback(_report_failure)

    async def start(self) -> None:
        """Provision every stored configuration again (server start)."""
        configs = await asyncio.to_thread(self.concurrency.store.list_provisioned_configs)
        for name in sorted({c.function for c in configs}):
            try:
                await self.apply(name)
            except Exception as exc:  # one broken function must not stop the others
                log.warning("could not provision %s: %s", name, exc)

    def changed(self, name: str, qualifier: str | None = None) -> None:
        """A function changed (FunctionService.on_change; call on the loop's thread)."""
        if qualifier is None:  # deleted: the store dropped its settings with it
            self.concurrency.function_deleted(name)
        if name not in self._names():
            return  # nothing provisioned: nothing to follow
        task = asyncio.get_running_loop().create_task(self._changed(name, qualifier))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _changed(self, name: str, qualifier: str | None) -> None:
        try:
            await self.apply(name)
        except Exception as exc:
            log.warning("could not provision %s after a change: %s", name, exc)

    async def apply(self, name: str) -> None:
        """Make the pool keep what `name`'s stored configurations ask for."""
        async with self._lock:
            configs = await asyncio.to_thread(self.concurrency.store.list_provisioned_configs, name)
            wanted: dict[tuple[str, ...], tuple[EnvironmentSpec, int]] = {}
            keys: dict[tuple[str, str], tuple[str, ...]] = {}
            for config in configs:
                try:
                    version = await asyncio.to_thread(
                        self.concurrency.functions.resolve, FunctionRef(name, config.qualifier)
                    )
                except ResourceNotFound:
                    await asyncio.to_thread(self.concurrency.drop_provisioned, name, config.qualifier)
                    continue
                spec = await self.invoker.spec_for(version)
                count = wanted[spec.key][1] if spec.key in wanted else 0
                wanted[spec.key] = (spec, count + config.requested)
                keys[(name, config.qualifier)] = spec.key
            for old in {k for (n, _), k in self._keys.items() if n == name} - set(wanted):
                self.pool.unprovision(old)
            for spec, count in wanted.values():
                self.pool.provision(spec, count)
            for pair in [p for p in self._keys if p[0] == name]:
                del self._keys[pair]
            self._keys.update(keys)

    def state(self, config: ProvisionedConfig) -> ProvisionedStatus:
        key = self._keys.get((config.function, config.qualifier))
        state = self.pool.provisioned_state(key) if key is not None else None
        if state is None:
            return ProvisionedStatus(0, 0, "IN_PROGRESS")
        allocated = min(state.allocated, config.requested)
        if state.failure is not None:
            return ProvisionedStatus(allocated, allocated, "FAILED", state.failure)
        status = "READY" if state.allocated >= state.requested else "IN_PROGRESS"
        return ProvisionedStatus(allocated, allocated, status)

    def _names(self) -> set[str]:
        return {name for name, _ in self._keys}


def _report_failure(future: object) -> None:
    exc = future.exception()  # type: ignore[attr-defined]
    if exc is not None:
        log.warning("could not log a provisioned environment's init: %s", exc)
