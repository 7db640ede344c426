"""The newest records of each shard, kept in memory by the store that committed them.

A mapping or a GetRecords reader that keeps up with its stream asks for records committed moments
ago. Reading them back from SQLite (a query, then a row tuple and a StreamRecord per record, on a
reader thread that holds the GIL while it builds them) was the largest cost of a live mapping: about
40% of the server's samples at 60,000 records/s, more than the event loop's own work.

The writer thread adds each committed append here right after its COMMIT, in commit order. So for
every shard the tail holds *every* committed record whose counter is above the shard's
`covered_after`, and a read that starts at or above it is answered from memory with exactly what
the database would return; a read from further back goes to SQLite. Counters are global (one
AUTOINCREMENT for all shards), so the first commit the tail sees sets a floor: nothing of any shard
above it can have been committed without passing through here.

Memory is bounded by `budget_bytes` of estimated footprint (data, key and ~150 bytes of Python
objects per record): past it, the oldest records of the shard just appended to go first, then those
of the others, and each shard's `covered_after` moves up past what it lost.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable, Sequence

from lamina.sources.streams.model import StreamRecord

RECORD_OVERHEAD = 150  # bytes of Python objects per record besides its data and key (measured ~140)


class _Shard:
    __slots__ = ("counters", "covered_after", "records", "size", "start")

    def __init__(self, covered_after: int) -> None:
        self.counters: list[int] = []
        self.records: list[StreamRecord] = []
        self.start = 0  # records before it were evicted (compacted now and then)
        self.covered_after = covered_after
        self.size = 0

    def evict(self, count: int) -> int:
        """Drop the `count` oldest records; returns the bytes freed."""
        end = self.start + count
        freed = sum(_footprint(r) for r in self.records[self.start : end])
        self.covered_after = self.counters[end - 1]
        self.start = end
        if self.start > 1024 and self.start * 2 > len(self.records):
            del self.counters[: self.start], self.records[: self.start]
            self.start = 0
        self.size -= freed
        return freed


class RecordTail:
    """Thread-safe: the writer thread adds and trims, reader threads read."""

    def __init__(self, budget_bytes: int = 64 << 20) -> None:
        self.budget_bytes = budget_bytes
        self._shards: dict[int, _Shard] = {}
        self._floor: int | None = None  # below it nothing is known; above it every commit was seen
        self._size = 0
        self._lock = threading.Lock()

    def add(self, shard_ids: Sequence[int], records: Sequence[tuple[str, bytes]], counters: Sequence[int],
            arrival_ms: int) -> None:  # fmt: skip
        """One committed append (the writer thread, in commit order)."""
        if self.budget_bytes <= 0 or not counters:
            return
        with self._lock:
            if self._floor is None:
                self._floor = counters[0] - 1
            touched: set[int] = set()
            for shard_id, (key, data), counter in zip(shard_ids, records, counters, strict=True):
                shard = self._shards.get(shard_id)
                if shard is None:
                    shard = self._shards[shard_id] = _Shard(self._floor)
                record = StreamRecord(counter, arrival_ms, key, data)
                shard.counters.append(counter)
                shard.records.append(record)
                size = _footprint(record)
                shard.size += size
                self._size += size
                touched.add(shard_id)
            if self._size > self.budget_bytes:
                self._shrink(touched)

    def _shrink(self, touched: Iterable[int]) -> None:
        order = [*touched, *(s for s in self._shards if s not in touched)]
        for shard_id in order:
            shard = self._shards[shard_id]
            while self._size > self.budget_bytes * 3 // 4 and len(shard.records) > shard.start:
                self._size -= shard.evict(max(1, (len(shard.records) - shard.start) // 4))
            if self._size <= self.budget_bytes * 3 // 4:
                return

    def read(
        self, shard_id: int, after: int, limit: int, min_arrival_ms: int, max_bytes: int
    ) -> list[StreamRecord] | None:
        """What the database would return for this read, or None if the tail cannot tell."""
        with self._lock:
            if self._floor is None:
                return None
            shard = self._shards.get(shard_id)
            if after < (shard.covered_after if shard is not None else self._floor):
                return None
            if shard is None or limit <= 0:
                return []
            records = shard.records
            i, end = bisect_right(shard.counters, after, shard.start), len(records)
            while i < end and records[i].arrival_ms < min_arrival_ms:  # arrival never decreases
                i += 1
            candidates = records[i : i + limit]
        out: list[StreamRecord] = []
        size = 0
        for record in candidates:
            size += len(record.data)
            if out and size > max_bytes:
                break
            out.append(record)
        return out

    def trim(self, shard_ids: Iterable[int], before_ms: int) -> None:
        """Records older than `before_ms` were deleted (retention)."""
        with self._lock:
            for shard_id in shard_ids:
                shard = self._shards.get(shard_id)
                if shard is None:
                    continue
                live = shard.records[shard.start :]
                gone = next((n for n, r in enumerate(live) if r.arrival_ms >= before_ms), len(live))
                if gone:
                    self._size -= shard.evict(gone)

    def forget(self, shard_ids: Iterable[int]) -> None:
        """The shards' records were deleted with their stream (an empty answer is then right)."""
        with self._lock:
            for shard_id in shard_ids:
                shard = self._shards.pop(shard_id, None)
                if shard is not None:
                    self._size -= shard.size

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"tail_bytes": self._size, "tail_shards": len(self._shards)}


def _footprint(record: StreamRecord) -> int:
    return len(record.data) + len(record.partition_key) + RECORD_OVERHEAD
