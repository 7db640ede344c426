"""MemoryStreamStore: the in-memory twin of the SQLite stream store, for tests that need no disk.

Same contract (`base.StreamStore`), nothing durable: an append is "committed" when the call
returns, so its future is already resolved.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future

from lamina.errors import StreamInUse, StreamNotFound
from lamina.sources.streams.base import Appended, NewStream, ShardClosed
from lamina.sources.streams.model import Shard, Stream, StreamRecord
from lamina.sources.streams.resharding import NewShard


class MemoryStreamStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._streams: dict[str, Stream] = {}
        self._records: dict[int, list[StreamRecord]] = {}  # shard id -> records in counter order
        self._counter = 0
        self._last_arrival = 0
        self._ids = itertools.count(1)
        self._closed: set[int] = set()  # ids of closed shards

    def create_stream(self, new: NewStream) -> Stream:
        with self._lock:
            if new.name in self._streams:
                raise StreamInUse(f"Stream {new.name} under account 000000000000 already exists.")
            shards = tuple(
                Shard(next(self._ids), i, lo, hi, self._counter + 1, opened_ms=new.created_ms)
                for i, (lo, hi) in enumerate(new.ranges)
            )
            stream = Stream(
                next(self._ids), new.name, new.created_ms, new.mode, new.retention_hours, new.max_record_kib, shards,
                dict(new.tags),
            )  # fmt: skip
            self._streams[new.name] = stream
            for shard in shards:
                self._records[shard.id] = []
            return stream

    def delete_stream(self, name: str) -> bool:
        with self._lock:
            stream = self._streams.pop(name, None)
            if stream is None:
                return False
            for shard in stream.shards:
                del self._records[shard.id]
            return True

    def get_stream(self, name: str) -> Stream | None:
        return self._streams.get(name)

    def list_streams(self, after: str | None = None, limit: int = 100) -> list[Stream]:
        with self._lock:
            names = sorted(n for n in self._streams if after is None or n > after)[: max(0, limit)]
            return [self._streams[n] for n in names]

    def set_retention(self, name: str, hours: int) -> None:
        self._update(name, retention_hours=hours)

    def add_tags(self, name: str, tags: Mapping[str, str]) -> None:
        with self._lock:
            stream = self._get(name)
            self._streams[name] = dataclasses.replace(stream, tags={**stream.tags, **tags})

    def reshard(
        self, name: str, closing: Sequence[int], shards: Sequence[NewShard], now_ms: int | None = None
    ) -> Stream:
        now = int(self._clock() * 1000) if now_ms is None else now_ms
        with self._lock:
            stream = self._get(name)
            if sorted(s.index for s in stream.shards if s.is_open) != sorted(closing):
                raise StreamInUse(f"Stream {name} under account 000000000000 is being resharded.")
            last = self._counter
            kept = tuple(
                s
                if s.index not in closing
                else dataclasses.replace(s, ending_counter=max(last, s.starting_counter), closed_ms=now)
                for s in stream.shards
            )
            opened = tuple(
                Shard(next(self._ids), n.index, n.start_hash, n.end_hash, last + 1, last + 1 if n.closed else None,
                      n.parent_index, n.adjacent_parent_index, now, now if n.closed else None)
                for n in shards
            )  # fmt: skip
            self._closed.update(s.id for s in kept if not s.is_open)
            for shard in opened:
                self._records[shard.id] = []
                if not shard.is_open:
                    self._closed.add(shard.id)
            stream = self._streams[name] = dataclasses.replace(stream, shards=kept + opened)
            return stream

    def _update(self, name: str, **changes: object) -> None:
        with self._lock:
            self._streams[name] = dataclasses.replace(self._get(name), **changes)  # type: ignore[arg-type]

    def _get(self, name: str) -> Stream:
        stream = self._streams.get(name)
        if stream is None:
            raise StreamNotFound(f"Stream {name} under account 000000000000 not found.")
        return stream

    def append_nowait(self, shard_ids: Sequence[int], records: Sequence[tuple[str, bytes]]) -> Future[Appended]:
        future: Future[Appended] = Future()
        with self._lock:
            if any(shard_id not in self._records for shard_id in shard_ids):
                future.set_exception(StreamNotFound("The stream was deleted before its records could be stored."))
                return future
            if any(shard_id in self._closed for shard_id in shard_ids):
                future.set_exception(ShardClosed())
                return future
            arrival = self._last_arrival = max(self._last_arrival, int(self._clock() * 1000))
            counters = []
            for shard_id, (key, data) in zip(shard_ids, records, strict=True):
                self._counter += 1
                counters.append(self._counter)
                self._records[shard_id].append(StreamRecord(self._counter, arrival, key, data))
        future.set_result(Appended(counters))
        return future

    def read(
        self, shard_id: int, after: int, limit: int, min_arrival_ms: int = 0, max_bytes: int = 10 << 20
    ) -> list[StreamRecord]:
        with self._lock:
            records = self._records.get(shard_id, [])
            start = bisect.bisect_right(records, after, key=lambda r: r.counter)
            out: list[StreamRecord] = []
            size = 0
            for record in records[start:]:
                if record.arrival_ms < min_arrival_ms:
                    continue
                size += len(record.data)
                if len(out) >= limit or (out and size > max_bytes):
                    break
                out.append(record)
            return out

    def last_counter(self) -> int:
        return self._counter

    def first_counter_at(self, shard_id: int, arrival_ms: int) -> int | None:
        with self._lock:
            return next((r.counter for r in self._records.get(shard_id, []) if r.arrival_ms >= arrival_ms), None)

    def trim(self, shard_ids: Sequence[int], before_ms: int) -> int:
        deleted = 0
        with self._lock:
            for shard_id in shard_ids:
                records = self._records.get(shard_id)
                if records is None:
                    continue
                keep = bisect.bisect_left(records, before_ms, key=lambda r: r.arrival_ms)
                deleted += keep
                del records[:keep]
        return deleted
