"""Provisioned concurrency, the running side: makes the pool keep initialised environments for
every stored configuration, and reports how far it got.

The stored configurations (functions/concurrency.py) are the truth; `apply(name)` brings the pool
in line with them for one function: each configuration's qualifier is resolved to its version (an
alias with `AdditionalVersionWeights` to both of its versions, the N environments split by weight
as AWS spreads them: `split`), that version's EnvironmentSpec is built as invocations build it
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
import math
import time
from dataclasses import dataclass

from lamina.errors import ResourceNotFound
from lamina.functions import aliases as alias_rules
from lamina.functions.concurrency import ConcurrencyService
from lamina.functions.names import FunctionRef
from lamina.invoke.service import InvokeService
from lamina.model.concurrency import ProvisionedConfig
from lamina.model.function import FunctionConfig
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
        # (function, qualifier) -> [(pool key, environments of this configuration there)]
        self._keys: dict[tuple[str, str], list[tuple[tuple[str, ...], int]]] = {}
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
            keys: dict[tuple[str, str], list[tuple[tuple[str, ...], int]]] = {}
            for config in configs:
                try:
                    versions = await asyncio.to_thread(self._versions, name, config)
                except ResourceNotFound:
                    await asyncio.to_thread(self.concurrency.drop_provisioned, name, config.qualifier)
                    continue
                parts = keys[(name, config.qualifier)] = []
                for version, count in versions:
                    spec = await self.invoker.spec_for(version)
                    before = wanted[spec.key][1] if spec.key in wanted else 0
                    wanted[spec.key] = (spec, before + count)
                    parts.append((spec.key, count))
            kept = {key for parts in keys.values() for key, _ in parts}
            for old in {k for (n, _), parts in self._keys.items() if n == name for k, _ in parts} - kept:
                self.pool.unprovision(old)
            for spec, count in wanted.values():
                self.pool.provision(spec, count)
            for pair in [p for p in self._keys if p[0] == name]:
                del self._keys[pair]
            self._keys.update(keys)

    def _versions(self, name: str, config: ProvisionedConfig) -> list[tuple[FunctionConfig, int]]:
        """The versions `config` keeps environments of, with how many each (a thread: store reads)."""
        functions = self.concurrency.functions
        primary = functions.resolve(FunctionRef(name, config.qualifier))
        if not alias_rules.is_alias(config.qualifier):
            return [(primary, config.requested)]
        routing = functions.get_alias(name, config.qualifier).routing
        if not routing:
            return [(primary, config.requested)]
        ((extra, weight),) = routing.items()
        count = split(config.requested, weight)
        other = functions.resolve(FunctionRef(name, extra))
        return [(v, n) for v, n in ((primary, config.requested - count), (other, count)) if n]

    def state(self, config: ProvisionedConfig) -> ProvisionedStatus:
        parts = self._keys.get((config.function, config.qualifier))
        states = [(self.pool.provisioned_state(key), count) for key, count in parts or []]
        if not states or any(state is None for state, _ in states):
            return ProvisionedStatus(0, 0, "IN_PROGRESS")
        allocated = sum(min(state.allocated, count) for state, count in states)  # type: ignore[union-attr]
        failure = next((state.failure for state, _ in states if state.failure is not None), None)  # type: ignore[union-attr]
        if failure is not None:
            return ProvisionedStatus(allocated, allocated, "FAILED", failure)
        ready = all(state.allocated >= state.requested for state, _ in states)  # type: ignore[union-attr]
        return ProvisionedStatus(allocated, allocated, "READY" if ready else "IN_PROGRESS")

    def _names(self) -> set[str]:
        return {name for name, _ in self._keys}


def split(requested: int, weight: float) -> int:
    """How many of an alias's `requested` environments go to its additional version: in proportion
    to its weight, a tie going to the primary version (AWS documents the spread, not its rounding)."""
    return max(0, min(requested, math.ceil(requested * weight - 0.5)))


def _report_failure(future: object) -> None:
    exc = future.exception()  # type: ignore[attr-defined]
    if exc is not None:
        log.warning("could not log a provisioned environment's init: %s", exc)
