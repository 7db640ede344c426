"""StreamService: Kinesis Data Streams semantics over a StreamStore, without HTTP (the put path:
streams/puts.py).

The edge (`api/services/kinesis.py`) and, in-process, the event-source-mapping engine call it.
Sync methods may block on disk (call them from worker threads); `put_records_async` waits for the
commit on the caller's event loop without holding a thread.

Limits and messages follow the Kinesis API reference:
https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html and its siblings.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lamina.errors import (
    ExpiredIterator,
    InvalidArgument,
    LimitExceeded,
    StreamNotFound,
    ValidationError,
)
from lamina.sources.streams import resharding
from lamina.sources.streams.base import NewStream, StreamStore
from lamina.sources.streams.iterators import IteratorCodec, Position
from lamina.sources.streams.model import (
    IteratorType,
    Shard,
    Stream,
    StreamMode,
    StreamRecord,
    even_ranges,
    parse_sequence_number,
    shard_index,
)
from lamina.sources.streams.notify import RecordSignal
from lamina.sources.streams.puts import RecordPuts
from lamina.sources.streams.quotas import ShardQuotas

log = logging.getLogger(__name__)

DEFAULT_RETENTION_HOURS = 24
MIN_RETENTION_HOURS = 24
MAX_RETENTION_HOURS = 8760
ON_DEMAND_SHARDS = 4  # an on-demand stream starts with 4 shards' capacity
MAX_GET_RECORDS = 10_000
MAX_GET_BYTES = 10 << 20  # GetRecords returns at most 10 MiB
MAX_TAGS = 50
MAX_RESHARDS_PER_DAY = 10  # UpdateShardCount calls per stream per rolling 24 hours


@dataclass(frozen=True, slots=True)
class RecordsPage:
    """GetRecords' answer. `next_iterator` is None once a closed shard is read to its end."""

    records: list[StreamRecord]
    next_iterator: str | None
    millis_behind_latest: int
    child_shards: tuple[Shard, ...] = ()  # once a closed shard is read to its end


class StreamService(RecordPuts):
    """Streams, shards, records and iterators. Thread-safe."""

    def __init__(
        self,
        store: StreamStore,
        *,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        clock: Callable[[], float] = time.time,
        iterator_ttl_s: float = 300.0,
        retention_hour_s: float = 3600.0,
        iterator_key: bytes = b"lamina-stream-iterators",
        max_shards: int = 1000,
        max_request_bytes: int = 5 << 20,
        signal: RecordSignal | None = None,
        quotas: bool = False,
    ) -> None:
        """`retention_hour_s` is how long a retention hour lasts (tests shorten it); iterators
        older than `iterator_ttl_s` expire; `quotas` turns per-shard quotas on for every stream
        (otherwise only for streams tagged `lamina:quotas=on`)."""
        self.store = store
        self.region = region
        self.account_id = account_id
        self.clock = clock
        self.iterator_ttl_ms = int(iterator_ttl_s * 1000)
        self.retention_hour_ms = retention_hour_s * 1000
        self.max_shards = max_shards
        self.max_request_bytes = max_request_bytes
        self.signal = signal or RecordSignal()
        self.quotas = ShardQuotas(clock, default_on=quotas)
        self._iterators = IteratorCodec(iterator_key)
        # Streams change rarely and records are routed on every put: keep them, dropping one
        # whenever this service changes it. (A store shared by several servers needs a version
        # check here; the embedded store has one writer process.)
        self._cache: dict[str, tuple[Stream, list[int], list[Shard]]] = {}  # stream, open starts, open
        self._cache_lock = threading.Lock()
        self._reshard_lock = threading.Lock()
        self._reshards: dict[str, collections.deque[int]] = {}  # stream -> recent reshard times (ms)

    def arn(self, name: str) -> str:
        return f"arn:aws:kinesis:{self.region}:{self.account_id}:stream/{name}"

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- streams ---------------------------------------------------------------------------------

    def create_stream(
        self,
        name: str,
        shard_count: int | None = None,
        mode: StreamMode = StreamMode.PROVISIONED,
        tags: Mapping[str, str] | None = None,
        max_record_kib: int = 1024,
    ) -> Stream:
        if mode is StreamMode.PROVISIONED and shard_count is None:
            raise InvalidArgument("ShardCount is required for a PROVISIONED stream.")
        count = shard_count if shard_count is not None else ON_DEMAND_SHARDS
        if count < 1:
            raise InvalidArgument(f"ShardCount must be at least 1, got {count}.")
        if count > self.max_shards:
            raise LimitExceeded(
                f"This request would exceed the shard limit for the account {self.account_id} in {self.region}."
                f" Current shard count for the account: 0. Limit: {self.max_shards}."
                f" Number of additional shards that would have resulted from this request: {count}."
            )
        if tags and len(tags) > MAX_TAGS:
            raise InvalidArgument(f"A stream cannot have more than {MAX_TAGS} tags.")
        ranges = even_ranges(count)
        new = NewStream(name, mode, DEFAULT_RETENTION_HOURS, max_record_kib, ranges, dict(tags or {}), self._now_ms())
        stream = self.store.create_stream(new)
        self._forget(name)
        return stream

    def delete_stream(self, name: str) -> None:
        stream = self.describe(name)
        if not self.store.delete_stream(name):
            raise self._not_found(name)
        self._forget(name)
        self.signal.notify(s.id for s in stream.shards)  # waiters re-read and learn it is gone

    def describe(self, name: str) -> Stream:
        stream = self.store.get_stream(name)
        if stream is None:
            raise self._not_found(name)
        return stream

    def list_streams(self, after: str | None = None, limit: int = 100) -> tuple[list[Stream], bool]:
        """Streams after the name `after`, and whether there are more."""
        page = self.store.list_streams(after, limit + 1)
        return page[:limit], len(page) > limit

    def list_shards(
        self,
        name: str,
        after_shard: str | None = None,
        limit: int = 1000,
        select: str | None = None,
        timestamp: float | None = None,
    ) -> tuple[list[Shard], bool]:
        """The stream's shards after the shard id `after_shard` (AFTER_SHARD_ID / ExclusiveStartShardId).

        A closed shard whose whole range has aged out of retention (closed before the trim
        horizon, now - retention) is not listed, as on Kinesis. `select` is a ShardFilter type:
        AT_LATEST keeps the open shards; AT_TRIM_HORIZON the shards open at the trim horizon (those
        opened at or before it, and the oldest listed generation, shards with no listed parent, for
        a stream younger than its retention); FROM_TRIM_HORIZON every listed shard; AT_TIMESTAMP
        the shards open at `timestamp` (epoch seconds: opened at or before it and not closed
        before it); FROM_TIMESTAMP the shards not closed before it (those open at it and every
        later one). A shard from before open and close times were kept (migration 3) counts as
        opened before any time and, once closed, as closed before none."""
        stream = self.describe(name)
        horizon = self._now_ms() - int(stream.retention_hours * self.retention_hour_ms)
        shards = tuple(s for s in stream.shards if not _closed_before(s, horizon))
        if select == "AT_LATEST":
            shards = tuple(s for s in shards if s.is_open)
        elif select == "AT_TRIM_HORIZON":
            indexes = {s.index for s in shards}
            shards = tuple(
                s for s in shards
                if s.parent_index not in indexes or (s.opened_ms is not None and s.opened_ms <= horizon)
            )  # fmt: skip
        elif select in ("AT_TIMESTAMP", "FROM_TIMESTAMP"):
            if timestamp is None:
                raise InvalidArgument(f"ShardFilter of type {select} requires a Timestamp.")
            at = int(timestamp * 1000)
            shards = tuple(s for s in shards if not _closed_before(s, at))
            if select == "AT_TIMESTAMP":
                shards = tuple(s for s in shards if s.opened_ms is None or s.opened_ms <= at)
        if after_shard is not None:
            index = shard_index(after_shard)
            if index is None:
                raise InvalidArgument(f"Invalid ShardId: {after_shard}")
            shards = tuple(s for s in shards if s.index > index)
        return list(shards[:limit]), len(shards) > limit

    def set_retention(self, name: str, hours: int, *, increase: bool) -> None:
        stream = self.describe(name)
        if hours < MIN_RETENTION_HOURS:
            raise InvalidArgument(
                f"Minimum allowed retention period is {MIN_RETENTION_HOURS} hours."
                f" Requested retention period ({hours} hours) is too short."
            )
        if hours > MAX_RETENTION_HOURS:
            raise InvalidArgument(
                f"Maximum allowed retention period is {MAX_RETENTION_HOURS} hours."
                f" Requested retention period ({hours} hours) is too long."
            )
        if increase and hours < stream.retention_hours:
            raise InvalidArgument(
                f"Requested retention period ({hours} hours) for stream {name} can not be shorter than existing"
                f" retention period ({stream.retention_hours} hours). Use DecreaseRetentionPeriod API."
            )
        if not increase and hours > stream.retention_hours:
            raise InvalidArgument(
                f"Requested retention period ({hours} hours) for stream {name} can not be longer than existing"
                f" retention period ({stream.retention_hours} hours). Use IncreaseRetentionPeriod API."
            )
        self.store.set_retention(name, hours)
        self._forget(name)

    def add_tags(self, name: str, tags: Mapping[str, str]) -> None:
        stream = self.describe(name)
        if len({**stream.tags, **tags}) > MAX_TAGS:
            raise LimitExceeded(f"Stream {name} cannot have more than {MAX_TAGS} tags.")
        self.store.add_tags(name, tags)
        self._forget(name)  # the quota tag may have changed

    def list_tags(self, name: str, after: str | None = None, limit: int = 50) -> tuple[list[tuple[str, str]], bool]:
        tags = sorted(self.describe(name).tags.items())
        if after is not None:
            tags = [t for t in tags if t[0] > after]
        return tags[:limit], len(tags) > limit

    def update_shard_count(self, name: str, target: int, scaling_type: str = "UNIFORM_SCALING") -> tuple[int, int]:
        """UpdateShardCount: close every open shard and open `target` shards evenly splitting the
        key space, children of the closed ones (see `resharding`). Returns (current, target)."""
        if scaling_type != "UNIFORM_SCALING":
            raise ValidationError(
                f"1 validation error detected: Value '{scaling_type}' at 'scalingType' failed to satisfy"
                " constraint: Member must satisfy enum value set: [UNIFORM_SCALING]"
            )
        if target < 1:
            raise ValidationError(
                f"1 validation error detected: Value '{target}' at 'targetShardCount' failed to satisfy"
                " constraint: Member must have value greater than or equal to 1"
            )
        with self._reshard_lock:
            stream = self.describe(name)
            if stream.mode is StreamMode.ON_DEMAND:
                raise ValidationError(f"UpdateShardCount is not supported for stream {name} in ON_DEMAND mode.")
            open_shards = [s for s in stream.shards if s.is_open]
            current = len(open_shards)
            prefix = f"UpdateShardCount failed for stream {name} under account {self.account_id}."
            if target > 2 * current:
                raise LimitExceeded(f"{prefix} Cannot scale up to more than double the current shard count {current}.")
            if 2 * target < current:
                raise LimitExceeded(f"{prefix} Cannot scale down below half the current shard count {current}.")
            if target > self.max_shards:
                raise LimitExceeded(f"{prefix} Target shard count {target} exceeds the shard limit {self.max_shards}.")
            if target == current:
                return current, target  # already there: nothing to split or merge
            now = self._now_ms()
            recent = self._reshards.setdefault(stream.name, collections.deque())
            while recent and recent[0] <= now - 86_400_000:
                recent.popleft()
            if len(recent) >= MAX_RESHARDS_PER_DAY:
                raise LimitExceeded(
                    f"{prefix} The stream was scaled {MAX_RESHARDS_PER_DAY} times in the last 24 hours."
                )
            new = resharding.plan(
                [(s.index, s.start_hash, s.end_hash) for s in open_shards],
                target,
                max(s.index for s in stream.shards) + 1,
            )
            try:
                self.store.reshard(stream.name, [s.index for s in open_shards], new, now)
            finally:
                self._forget(stream.name)
            recent.append(now)
        # Waiters on the closed shards re-read and find their end (and the children).
        self.signal.notify(s.id for s in open_shards)
        return current, target

    def trim_expired(self) -> int:
        """Delete records older than their stream's retention; returns how many went."""
        deleted, after = 0, None
        while True:
            page = self.store.list_streams(after, 100)
            for stream in page:
                cutoff = self._now_ms() - int(stream.retention_hours * self.retention_hour_ms)
                deleted += self.store.trim([s.id for s in stream.shards], cutoff)
            if len(page) < 100:
                return deleted
            after = page[-1].name

    # --- reading records -------------------------------------------------------------------------

    def get_shard_iterator(
        self,
        name: str,
        shard: str,
        kind: IteratorType,
        starting_sequence_number: str | None = None,
        timestamp: float | None = None,
    ) -> str:
        stream = self.describe(name)
        found = self._shard(stream, shard)
        if kind in (IteratorType.AT_SEQUENCE_NUMBER, IteratorType.AFTER_SEQUENCE_NUMBER):
            if starting_sequence_number is None:
                raise InvalidArgument(f"StartingSequenceNumber is required for ShardIteratorType {kind}.")
            counter = parse_sequence_number(starting_sequence_number)
            if counter is None or counter > self.store.last_counter():
                raise InvalidArgument(
                    f"StartingSequenceNumber {starting_sequence_number} used in GetShardIterator on shard"
                    f" {found.shard_id} in stream {name} under account {self.account_id} is invalid."
                )
            after = counter - 1 if kind is IteratorType.AT_SEQUENCE_NUMBER else counter
        elif kind is IteratorType.TRIM_HORIZON:
            after = found.starting_counter - 1
        elif kind is IteratorType.LATEST:
            after = self.store.last_counter()
        else:
            if timestamp is None:
                raise InvalidArgument("Timestamp is required for ShardIteratorType AT_TIMESTAMP.")
            first = self.store.first_counter_at(found.id, int(timestamp * 1000))
            after = first - 1 if first is not None else self.store.last_counter()
        return self._iterator(stream, found, after)

    def get_records(self, iterator: str, limit: int = MAX_GET_RECORDS) -> RecordsPage:
        position = self._iterators.decode(iterator)
        now = self._now_ms()
        if now - position.issued_ms > self.iterator_ttl_ms:
            raise _expired(position.issued_ms, now, self.iterator_ttl_ms)
        stream = self.store.get_stream(position.stream)
        if stream is None or stream.id != position.stream_id:
            raise self._not_found(position.stream)
        shard = next((s for s in stream.shards if s.id == position.shard_id), None)
        if shard is None:
            raise self._not_found(position.stream)
        if not 1 <= limit <= MAX_GET_RECORDS:
            raise InvalidArgument(f"Limit must be between 1 and {MAX_GET_RECORDS}, got {limit}.")
        quotas = self.quotas.applies(stream)
        if quotas and not self.quotas.admit_read(shard.id):
            raise self._throttled(stream, shard.id)
        oldest = now - int(stream.retention_hours * self.retention_hour_ms)
        records = self.store.read(shard.id, position.after, limit, oldest, MAX_GET_BYTES)
        if quotas:
            self.quotas.charge_read(shard.id, sum(len(r.data) for r in records))
        after = records[-1].counter if records else position.after
        more = (len(records) == limit and shard.is_open) or bool(self.store.read(shard.id, after, 1, oldest))
        behind = max(0, now - records[-1].arrival_ms) if records and more else 0
        if not shard.is_open and not more:
            # A closed shard takes no more records (they were committed before it closed, so this
            # read saw them all): its end. No iterator, but its children, as GetRecords does.
            children = tuple(s for s in stream.shards if shard.index in (s.parent_index, s.adjacent_parent_index))
            return RecordsPage(records, None, 0, children)
        return RecordsPage(records, self._iterator(stream, shard, after), behind)

    def _iterator(self, stream: Stream, shard: Shard, after: int) -> str:
        return self._iterators.encode(Position(stream.name, stream.id, shard.id, shard.index, after, self._now_ms()))

    # --- helpers ---------------------------------------------------------------------------------

    def _stream(self, name: str) -> Stream:
        cached = self._cached(name)
        if cached is not None:
            return cached[0]
        stream = self.describe(name)
        with self._cache_lock:
            open_shards = _open_by_hash(stream)
            self._cache[name] = (stream, [s.start_hash for s in open_shards], open_shards)
        return stream

    def _cached(self, name: str) -> tuple[Stream, list[int], list[Shard]] | None:
        return self._cache.get(name)

    def _routing(self, stream: Stream) -> tuple[list[int], list[Shard]]:
        """The open shards in hash-key order, and their starting hash keys."""
        cached = self._cache.get(stream.name)
        if cached is not None and cached[0] is stream:
            return cached[1], cached[2]
        open_shards = _open_by_hash(stream)
        return [s.start_hash for s in open_shards], open_shards

    def _forget(self, name: str) -> None:
        with self._cache_lock:
            self._cache.pop(name, None)

    def _shard(self, stream: Stream, shard: str) -> Shard:
        index = shard_index(shard)
        found = next((s for s in stream.shards if s.index == index), None)
        if found is None:
            raise StreamNotFound(
                f"Shard {shard} in stream {stream.name} under account {self.account_id} does not exist"
            )
        return found

    def _not_found(self, name: str) -> StreamNotFound:
        return StreamNotFound(f"Stream {name} under account {self.account_id} not found.")


def _closed_before(shard: Shard, ms: int) -> bool:
    """Whether the shard closed before `ms` (a shard closed at an unknown time never counts)."""
    return shard.closed_ms is not None and shard.closed_ms < ms


def _open_by_hash(stream: Stream) -> list[Shard]:
    return sorted((s for s in stream.shards if s.is_open), key=lambda s: s.start_hash)


def _expired(issued_ms: int, now_ms: int, ttl_ms: int) -> ExpiredIterator:
    return ExpiredIterator(
        f"Iterator expired. The iterator was created at time {_http_date(issued_ms)} while right now it is"
        f" {_http_date(now_ms)} which is further in the future than the tolerated delay of {ttl_ms} milliseconds."
    )


def _http_date(ms: int) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(ms / 1000))
