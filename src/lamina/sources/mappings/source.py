"""What the mapping engine needs from an event source: the one small interface a stream (Lamina's
Kinesis-compatible streams now; table change streams later) implements. Everything else — batching,
the batching window, the 6 MB cut, filters, retries, bisect, partial failures, checkpoints,
on-failure records — is generic and lives in the engine.

Positions are opaque strings the source hands out and takes back: `read(shard, after)` returns the
records after a position, each carrying its own position, and a checkpoint is simply the position
of the last decided record. A shard may be *closed* (resharding): once read to its end it is
`finished`, and shards naming it as a parent start only after that (parents first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from lamina.model.mappings import StartingPosition


@dataclass(frozen=True, slots=True)
class ShardInfo:
    id: str
    parents: tuple[str, ...] = ()
    closed: bool = False


class SourceRecord(NamedTuple):
    """One record as the engine sees it: where it is, when it arrived, its ordering key (records of
    one key keep their order under ParallelizationFactor), and the source's own record. (A tuple:
    built once per record read, it costs a third of a frozen dataclass.)"""

    position: str
    arrival_ms: int
    key: str
    raw: Any


@dataclass(frozen=True, slots=True)
class ReadResult:
    records: list[SourceRecord]
    finished: bool = False  # a closed shard read to its end (no records follow `after`)


class SourceGone(Exception):
    """The source (or the shard) no longer exists."""


class Source(Protocol):
    arn: str
    batch_info_key: str  # "KinesisBatchInfo" / "DDBStreamBatchInfo" in on-failure records

    def shards(self) -> list[ShardInfo]:
        """Every shard, closed ones included, parents before children; SourceGone if deleted."""

    def start_position(self, shard: str, starting: StartingPosition, timestamp: float | None) -> str:
        """The position before the first record a new mapping processes in `shard`."""

    def horizon(self, shard: str) -> str:
        """The position before the shard's oldest record (where a child shard starts)."""

    def read(self, shard: str, after: str, limit: int, max_bytes: int) -> ReadResult:
        """Up to `limit` records after `after` (≤ `max_bytes` of data, at least one). Blocking."""

    def expired_before_ms(self, shard: str) -> int:
        """Records that arrived before this (epoch ms) are gone from the source (retention)."""

    def version(self, shard: str) -> int:
        """A wake-up counter: take it before `read`, pass it to `wait`."""

    async def wait(self, shard: str, version: int, timeout: float | None) -> bool:
        """Until records may have arrived since `version` was taken (True), or the timeout (False)."""

    def event_records(self, shard: str, records: Sequence[SourceRecord], role: str) -> list[bytes]:
        """Each record's JSON in the function's event (`{"Records": [...]}` members), as AWS sends
        it. (A batch at a time: per-record calls were a fifth of a mapping's time.)"""

    def filter_view(self, record: SourceRecord) -> dict[str, Any]:
        """What FilterCriteria patterns are matched against (data decoded where it is JSON)."""

    def batch_info(self, shard: str, records: Sequence[SourceRecord]) -> dict[str, Any]:
        """The `<batch_info_key>` member of an on-failure record."""

    def lag(self, shard: str, after: str) -> tuple[int, int]:
        """(records after `after`, capped at 10,000; age in ms of the oldest of them, 0 if none)."""
