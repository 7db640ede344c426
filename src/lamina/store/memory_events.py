"""MemoryEventStore: the in-memory twin of SqliteEventStore (same contract, no durability)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

from lamina.errors import ResourceConflict
from lamina.model.events import EventInvokeConfig, EventState, QueuedEvent, QueueStats
from lamina.store.events import Enqueue, EventOp, Remove, Update


class MemoryEventStore:
    """Implements `lamina.store.events.EventStore`; ops are applied before `apply_nowait` returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, QueuedEvent] = {}  # insertion order = enqueue order
        self._configs: dict[tuple[str, str], EventInvokeConfig] = {}

    def apply_nowait(self, ops: Sequence[EventOp]) -> Future[None]:
        future: Future[None] = Future()
        with self._lock:
            events = dict(self._events)  # all or nothing, like a transaction
            try:
                for op in ops:
                    if isinstance(op, Enqueue):
                        if op.event.id in events:
                            raise ResourceConflict(f"an event with this id is already queued ({op.event.id})")
                        events[op.event.id] = op.event
                    elif isinstance(op, Update):
                        old = events.get(op.event.id)
                        if old is not None:
                            events[op.event.id] = op.event.with_changes(payload=old.payload, function=old.function)
                    elif isinstance(op, Remove):
                        events.pop(op.id, None)
            except ResourceConflict as exc:
                future.set_exception(exc)
                return future
            self._events = events
        future.set_result(None)
        return future

    def pending_events(self) -> list[QueuedEvent]:
        with self._lock:
            return [e.with_changes(payload=b"") for e in self._events.values() if e.state == EventState.QUEUED]

    def event_payload(self, event_id: str) -> bytes | None:
        with self._lock:
            event = self._events.get(event_id)
            return event.payload if event else None

    def failed_events(self, function: str, limit: int = 100) -> list[QueuedEvent]:
        with self._lock:
            failed = [e for e in self._events.values() if e.function == function and e.state == EventState.FAILED]
        return failed[: max(0, limit)]

    def queue_stats(self, function: str) -> QueueStats:
        with self._lock:
            mine = [e for e in self._events.values() if e.function == function]
        queued = [e for e in mine if e.state == EventState.QUEUED]
        return QueueStats(
            queued=len(queued),
            in_retry=sum(1 for e in queued if e.attempts > 0 or e.throttles > 0),
            oldest_enqueued=min((e.enqueued for e in queued), default=None),
            failed=sum(1 for e in mine if e.state == EventState.FAILED),
        )

    def put_event_config(self, config: EventInvokeConfig) -> None:
        with self._lock:
            self._configs[(config.function, config.qualifier)] = config

    def get_event_config(self, function: str, qualifier: str) -> EventInvokeConfig | None:
        with self._lock:
            return self._configs.get((function, qualifier))

    def delete_event_config(self, function: str, qualifier: str) -> bool:
        with self._lock:
            return self._configs.pop((function, qualifier), None) is not None

    def list_event_configs(self, function: str) -> list[EventInvokeConfig]:
        with self._lock:
            return sorted((c for (f, _), c in self._configs.items() if f == function), key=lambda c: c.qualifier)

    def delete_event_configs(self, function: str, qualifier: str | None = None) -> int:
        with self._lock:
            keys = [k for k in self._configs if k[0] == function and qualifier in (None, k[1])]
            for key in keys:
                del self._configs[key]
            return len(keys)
