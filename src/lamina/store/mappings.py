"""The contract of the event-source-mapping store: mappings, per-shard checkpoints and the batches
kept after going to OnFailure. Implemented by store/sqlite/mappings.py and its in-memory twin
store/memory_mappings.py (tests/unit/store/test_mapping_store.py runs one suite against both).

Promises:
- **Durable before acknowledged**: a write method returns (a `_nowait` future resolves) only once
  committed, so a checkpoint the engine has seen saved survives kill -9.
- **One outcome, one commit**: `save_progress_nowait` moves checkpoints, keeps a failed batch and
  applies the async-queue ops that deliver its on-failure record (an Event for a function target)
  in ONE transaction: no record for a batch that will be retried after a crash, none lost for a
  batch that will not.
- **No resurrection**: progress saved for a mapping that no longer exists is dropped silently
  (a poller may finish a batch while its mapping is being deleted).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from lamina.model.mappings import Checkpoint, FailedBatch, MappingConfig
from lamina.store.events import EventOp


@dataclass(frozen=True)
class NewFailedBatch:
    uuid: str
    shard: str
    condition: str
    record: str
    payload: bytes
    failed: float


class MappingStore(Protocol):
    def put_mapping(self, config: MappingConfig, checkpoints: Sequence[Checkpoint] = ()) -> None:
        """Insert or replace a mapping; `checkpoints` are written with it (replacing any)."""

    def get_mapping(self, uuid: str) -> MappingConfig | None: ...

    def list_mappings(self, function: str | None = None, source_arn: str | None = None) -> list[MappingConfig]:
        """Mappings in creation order, optionally only one function's and/or one source's."""

    def delete_mapping(self, uuid: str) -> bool:
        """Delete a mapping with its checkpoints and kept batches; False if it did not exist."""

    def checkpoints(self, uuid: str) -> list[Checkpoint]:
        """The mapping's checkpoints ordered by shard."""

    def save_progress_nowait(
        self,
        checkpoints: Sequence[Checkpoint],
        failed: NewFailedBatch | None = None,
        event_ops: Sequence[EventOp] = (),
    ) -> Future[None]:
        """Upsert checkpoints, keep `failed`, apply `event_ops` to the event queue: one commit."""

    def failed_batches(self, uuid: str, limit: int = 100) -> list[FailedBatch]:
        """The mapping's kept batches, oldest first."""

    def get_failed_batch(self, batch_id: int) -> FailedBatch | None: ...

    def mark_replayed(self, batch_id: int, when: float) -> None: ...
