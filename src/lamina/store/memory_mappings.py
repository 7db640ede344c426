"""MemoryMappingStore: the in-memory twin of SqliteMappingStore (same contract, no durability).
Event-queue ops of a progress save go to the MemoryEventStore given, in the same critical section."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import replace

from lamina.model.mappings import Checkpoint, FailedBatch, MappingConfig
from lamina.store.events import EventOp, EventStore
from lamina.store.mappings import NewFailedBatch


class MemoryMappingStore:
    """Implements `lamina.store.mappings.MappingStore`; writes are applied before they return."""

    def __init__(self, events: EventStore | None = None) -> None:
        self._lock = threading.Lock()
        self._mappings: dict[str, tuple[float, MappingConfig]] = {}
        self._checkpoints: dict[tuple[str, str], Checkpoint] = {}
        self._failed: dict[int, FailedBatch] = {}
        self._ids = itertools.count(1)
        self._events = events
        self._clock = itertools.count()

    def put_mapping(self, config: MappingConfig, checkpoints: Sequence[Checkpoint] = ()) -> None:
        with self._lock:
            created = self._mappings.get(config.uuid, (next(self._clock), config))[0]
            self._mappings[config.uuid] = (created, config)
            self._upsert(checkpoints)

    def _upsert(self, checkpoints: Sequence[Checkpoint]) -> None:
        now = time.time()
        for c in checkpoints:
            if c.uuid in self._mappings:
                self._checkpoints[(c.uuid, c.shard)] = c if c.updated else replace(c, updated=now)

    def get_mapping(self, uuid: str) -> MappingConfig | None:
        with self._lock:
            found = self._mappings.get(uuid)
            return found[1] if found else None

    def list_mappings(self, function: str | None = None, source_arn: str | None = None) -> list[MappingConfig]:
        with self._lock:
            rows = sorted(self._mappings.values(), key=lambda r: (r[0], r[1].uuid))
        return [c for _, c in rows if function in (None, c.function) and source_arn in (None, c.source_arn)]

    def delete_mapping(self, uuid: str) -> bool:
        with self._lock:
            for key in [k for k in self._checkpoints if k[0] == uuid]:
                del self._checkpoints[key]
            for key in [k for k, b in self._failed.items() if b.uuid == uuid]:
                del self._failed[key]
            return self._mappings.pop(uuid, None) is not None

    def checkpoints(self, uuid: str) -> list[Checkpoint]:
        with self._lock:
            return sorted((c for k, c in self._checkpoints.items() if k[0] == uuid), key=lambda c: c.shard)

    def save_progress_nowait(
        self,
        checkpoints: Sequence[Checkpoint],
        failed: NewFailedBatch | None = None,
        event_ops: Sequence[EventOp] = (),
    ) -> Future[None]:
        future: Future[None] = Future()
        with self._lock:
            if event_ops:
                if self._events is None:
                    future.set_exception(RuntimeError("no event store to deliver to"))
                    return future
                self._events.apply_nowait(event_ops).result()
            if failed is not None and failed.uuid in self._mappings:
                batch_id = next(self._ids)
                f = failed
                self._failed[batch_id] = FailedBatch(batch_id, f.uuid, f.shard, f.condition, f.record, f.payload,
                                                     f.failed)  # fmt: skip
            self._upsert(checkpoints)
        future.set_result(None)
        return future

    def failed_batches(self, uuid: str, limit: int = 100) -> list[FailedBatch]:
        with self._lock:
            return [b for _, b in sorted(self._failed.items()) if b.uuid == uuid][: max(0, limit)]

    def get_failed_batch(self, batch_id: int) -> FailedBatch | None:
        with self._lock:
            return self._failed.get(batch_id)

    def mark_replayed(self, batch_id: int, when: float) -> None:
        with self._lock:
            batch = self._failed.get(batch_id)
            if batch is not None:
                self._failed[batch_id] = replace(batch, replayed=when)
