"""The contract of the asynchronous-invocation store: the durable event queue and the
EventInvokeConfigs. Implemented by store/sqlite/events.py and its in-memory twin
store/memory_events.py (tests/unit/store/test_event_store.py runs one suite against both).

Queue changes are ops applied with `apply_nowait`: all the ops of one call in one transaction, in
order, the future resolving only once they are committed (durable before acknowledged). Many
concurrent calls share one commit (the SQLite writer's group commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from lamina.model.events import EventInvokeConfig, QueuedEvent, QueueStats


@dataclass(frozen=True)
class Enqueue:
    """Insert a new event (payload included)."""

    event: QueuedEvent


@dataclass(frozen=True)
class Update:
    """Overwrite every field of a stored event but its payload and function."""

    event: QueuedEvent


@dataclass(frozen=True)
class Remove:
    """Delete an event (it is done)."""

    id: str


EventOp = Enqueue | Update | Remove


class EventStore(Protocol):
    def apply_nowait(self, ops: Sequence[EventOp]) -> Future[None]:
        """Apply `ops` atomically; the future resolves once committed (ResourceConflict for an
        Enqueue whose id is taken)."""

    def pending_events(self) -> list[QueuedEvent]:
        """Every QUEUED event in enqueue order, payloads left empty (load with event_payload)."""

    def event_payload(self, event_id: str) -> bytes | None: ...

    def failed_events(self, function: str, limit: int = 100) -> list[QueuedEvent]:
        """The function's FAILED events (payload included), oldest first."""

    def queue_stats(self, function: str) -> QueueStats: ...

    def put_event_config(self, config: EventInvokeConfig) -> None: ...

    def get_event_config(self, function: str, qualifier: str) -> EventInvokeConfig | None: ...

    def delete_event_config(self, function: str, qualifier: str) -> bool: ...

    def list_event_configs(self, function: str) -> list[EventInvokeConfig]:
        """The function's configs ordered by qualifier."""

    def delete_event_configs(self, function: str, qualifier: str | None = None) -> int:
        """Drop the configs of a deleted function (qualifier None) or of one deleted version/alias."""
