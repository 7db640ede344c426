"""What a stream store promises. The SQLite store (`sqlite.py`) is the embedded one; a PostgreSQL
(or Kafka, Redis Streams) implementation must keep the same promises.

All methods are thread-safe and synchronous, except `append_nowait`, which returns a future (on
an event loop's thread an `asyncio.Future` of that loop, elsewhere a `concurrent.futures.Future`).
The store knows nothing of Kinesis's wire or limits: the service validates, routes records to
shards and builds sequence numbers; the store keeps streams, shards and records durably.

Promises:
- **Durable before acknowledged.** A write method returns, and `append_nowait`'s future resolves,
  only once the change is committed: it survives `kill -9` (and, with `synchronous=FULL`, power
  loss). A future that fails means the records were not stored, none of them.
- **Counters.** Each appended record gets an integer counter, unique across the whole store and
  never reused (not after trimming, not after deleting a stream), assigned in commit order: a
  record committed later has a larger counter. Sequence numbers are built from it, so they
  strictly increase per shard. The records of one `append_nowait` call are stored in the order
  given, with increasing counters.
- **Arrival time.** A record's `arrival_ms` is taken when it is committed, from the store's clock,
  and never decreases with the counter (so the first record at or after a time is found by
  counter order).
- **Reads never block writes**, and see every record committed before they started.
- **Deleting** a stream deletes its shards and records; an append to a shard of a deleted stream
  fails with StreamNotFound, even if it was routed before the delete.
- **Closed shards take no records.** `reshard` closes shards in the same commit order as appends:
  an append routed to a shard that is closed by the time it is written fails with ShardClosed,
  storing none of its records (the caller routes it again); so every record of a closed shard has
  a counter at most its ending counter, and every record of its children a larger one.
- Errors: StreamInUse when creating a name that exists; StreamNotFound when changing a stream that
  does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from lamina.sources.streams.model import Stream, StreamMode, StreamRecord
from lamina.sources.streams.resharding import NewShard


class ShardClosed(Exception):
    """An append was routed to a shard a reshard has closed: route it again (nothing was stored)."""


@dataclass(frozen=True, slots=True)
class NewStream:
    name: str
    mode: StreamMode
    retention_hours: int
    max_record_kib: int
    ranges: Sequence[tuple[int, int]]  # one (start_hash, end_hash) per shard, in shard order
    tags: Mapping[str, str]
    created_ms: int


@dataclass(slots=True)
class Appended:
    """What `append_nowait` resolves to: one counter per record, in the order given."""

    counters: list[int]


class StreamStore(Protocol):
    def create_stream(self, new: NewStream) -> Stream:
        """Create a stream and its shards (indexes 0..N-1, open, `opened_ms` = `created_ms`);
        raises StreamInUse if taken."""

    def delete_stream(self, name: str) -> bool:
        """Delete a stream with its shards and records; False if it did not exist."""

    def get_stream(self, name: str) -> Stream | None: ...

    def list_streams(self, after: str | None = None, limit: int = 100) -> list[Stream]:
        """Streams ordered by name, starting after the name `after`."""

    def set_retention(self, name: str, hours: int) -> None: ...

    def add_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags (StreamNotFound if the stream is gone)."""

    def reshard(
        self, name: str, closing: Sequence[int], shards: Sequence[NewShard], now_ms: int | None = None
    ) -> Stream:
        """In one commit: close the shards with indexes `closing` (which must be exactly the
        stream's open shards, else StreamInUse), setting their ending counter to the store's
        last counter, and open `shards` (starting at the next counter; `closed` ones end there).
        `now_ms` (default: the store's clock) is the closed shards' `closed_ms` and the new
        shards' `opened_ms` (and `closed_ms`, for `closed` ones)."""

    def append_nowait(self, shard_ids: Sequence[int], records: Sequence[tuple[str, bytes]]) -> Future[Appended]:
        """Append `records[i]` (partition key, data) to the shard with store id `shard_ids[i]`."""

    def read(
        self, shard_id: int, after: int, limit: int, min_arrival_ms: int = 0, max_bytes: int = 10 << 20
    ) -> list[StreamRecord]:
        """Up to `limit` records of a shard with a counter above `after`, in counter order,
        skipping records that arrived before `min_arrival_ms` (expired by retention), stopping
        once `max_bytes` of data is gathered (at least one record is returned if any)."""

    def last_counter(self) -> int:
        """The highest counter ever committed (0 if none): an iterator at LATEST starts there."""

    def first_counter_at(self, shard_id: int, arrival_ms: int) -> int | None:
        """The counter of the shard's first record that arrived at or after `arrival_ms`."""

    def trim(self, shard_ids: Sequence[int], before_ms: int) -> int:
        """Delete the shards' records that arrived before `before_ms`; returns how many."""
