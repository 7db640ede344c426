"""The put path of StreamService (a mixin, as the stores are built): route each record to its
open shard by the MD5 of its partition key (or its ExplicitHashKey), check Kinesis's limits, take
per-shard quotas, append through the store (acknowledged once committed), and route again if a
reshard closed a shard under the put.

Limits and messages: https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import operator
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from itertools import repeat

from lamina.errors import InvalidArgument, ProvisionedThroughputExceeded, StreamInUse, StreamNotFound, ValidationError
from lamina.sources.streams.base import Appended, ShardClosed, StreamStore
from lamina.sources.streams.model import (
    MAX_HASH_KEY,
    Entry,
    PutResult,
    Shard,
    Stream,
    hash_key_of,
    md5,
    parse_sequence_number,
    put_results,
    sequence_number,
)
from lamina.sources.streams.notify import RecordSignal
from lamina.sources.streams.quotas import ShardQuotas

log = logging.getLogger("lamina.sources.streams.service")

MAX_PUT_RECORDS = 500
PUT_ATTEMPTS = 8  # routing a put again after a reshard closed its shard under it


@dataclass(frozen=True, slots=True)
class _Routed:
    stream: Stream
    shard_ids: list[int]  # one per entry
    throttled: list[bool] | None  # one per entry: refused by the shard's write quota (None: no quotas)
    records: list[tuple[str, bytes]]  # the admitted entries only


class RecordPuts:
    # Provided by StreamService.
    store: StreamStore
    account_id: str
    max_request_bytes: int
    signal: RecordSignal
    quotas: ShardQuotas
    _stream: Callable[[str], Stream]
    _cached: Callable[[str], tuple[Stream, list[int], list[Shard]] | None]
    _routing: Callable[[Stream], tuple[list[int], list[Shard]]]
    _forget: Callable[[str], None]

    def put_records(self, name: str, entries: Sequence[Entry]) -> list[PutResult]:
        """Store the entries (≤ 500, ≤ 5 MiB); one result per entry, in order. Durable on return."""
        for _ in range(PUT_ATTEMPTS):
            routed = self._route(self._stream(name), entries, many=True)
            future = self._append(routed)
            if not _closed_under(future):
                return self._results(routed, _outcome(future))
            self._forget(name)  # a reshard closed a shard it was routed to: route it again
        raise self._busy(name)

    async def put_records_async(self, name: str, entries: Sequence[Entry]) -> list[PutResult]:
        """`put_records` for an event loop: the commit is awaited, not waited for in a thread."""
        for _ in range(PUT_ATTEMPTS):
            cached = self._cached(name)
            stream = cached[0] if cached is not None else await asyncio.to_thread(self._stream, name)
            routed = self._route(stream, entries, many=True)
            future = self._append(routed)
            await asyncio.wait([asyncio.wrap_future(future)])
            if not _closed_under(future):
                return self._results(routed, _outcome(future))
            self._forget(name)
        raise self._busy(name)

    def put_record(self, name: str, entry: Entry, sequence_number_for_ordering: str | None = None) -> PutResult:
        if sequence_number_for_ordering is not None and parse_sequence_number(sequence_number_for_ordering) is None:
            # Counters only grow, so a later put is always ordered after any earlier one: a valid
            # SequenceNumberForOrdering holds by construction and only needs to be well formed.
            raise InvalidArgument(
                f"ExclusiveMinimumSequenceNumber {sequence_number_for_ordering} used in PutRecord on stream"
                f" {name} under account {self.account_id} is invalid."
            )
        for _ in range(PUT_ATTEMPTS):
            routed = self._route(self._stream(name), [entry], many=False)
            future = self._append(routed)
            if not _closed_under(future):
                return self._results(routed, future.result())[0]  # a failure raises: no partial
            self._forget(name)
        raise self._busy(name)

    def _busy(self, name: str) -> StreamInUse:
        return StreamInUse(f"Stream {name} under account {self.account_id} is being resharded; try again.")

    def _route(self, stream: Stream, entries: Sequence[Entry], many: bool) -> _Routed:
        if many and not 1 <= len(entries) <= MAX_PUT_RECORDS:
            raise ValidationError(
                f"1 validation error detected: Value at 'records' failed to satisfy constraint: Member must"
                f" have length {'less than or equal to 500' if entries else 'greater than or equal to 1'}"
            )
        max_data = stream.max_record_kib * 1024
        starts, open_shards = self._routing(stream)
        ids = [s.id for s in open_shards]
        shard_ids, sizes = _route_plain(entries, starts, ids, max_data) or _route_checked(
            entries, starts, ids, max_data, many
        )
        if sum(sizes) > self.max_request_bytes:
            raise InvalidArgument(f"Records size exceeds {self.max_request_bytes >> 20} MB limit")
        # Quotas are taken only once the whole call is known to be valid.
        if not self.quotas.applies(stream):
            return _Routed(stream, shard_ids, None, [(e.partition_key, e.data) for e in entries])
        throttled: list[bool] = []
        records: list[tuple[str, bytes]] = []
        for shard_id, size, entry in zip(shard_ids, sizes, entries, strict=True):
            throttled.append(not self.quotas.admit_write(shard_id, size))
            if not throttled[-1]:
                records.append((entry.partition_key, entry.data))
        if not many and throttled[0]:
            raise self._throttled(stream, shard_ids[0])
        return _Routed(stream, shard_ids, throttled, records)

    def _append(self, routed: _Routed) -> Future[Appended]:
        if routed.throttled is None:
            admitted = routed.shard_ids
        else:
            admitted = [i for i, no in zip(routed.shard_ids, routed.throttled, strict=True) if not no]
        if not admitted:
            future: Future[Appended] = Future()
            future.set_result(Appended([]))
            return future
        future = self.store.append_nowait(admitted, routed.records)
        shard_ids = set(admitted)
        future.add_done_callback(lambda f: f.exception() is None and self.signal.notify(shard_ids))
        return future

    def _results(self, routed: _Routed, appended: Appended | None) -> list[PutResult]:
        """One result per record; each record the store failed to keep is an InternalFailure,
        the per-record error PutRecords reports (with ProvisionedThroughputExceededException)."""
        names = {s.id: s.shard_id for s in routed.stream.shards}
        if routed.throttled is None and appended is not None:  # the usual case: every record stored
            return put_results([names[i] for i in routed.shard_ids], appended.counters)
        throttled_flags = routed.throttled if routed.throttled is not None else [False] * len(routed.shard_ids)
        counters = iter(appended.counters if appended is not None else ())
        out = []
        for shard_id, throttled in zip(routed.shard_ids, throttled_flags, strict=True):
            if throttled:
                message = self._throttled(routed.stream, shard_id).message
                out.append(PutResult(names[shard_id], None, "ProvisionedThroughputExceededException", message))
            elif appended is None:
                out.append(PutResult(names[shard_id], None, "InternalFailure", "Internal service failure."))
            else:
                out.append(PutResult(names[shard_id], sequence_number(next(counters))))
        return out

    def _throttled(self, stream: Stream, shard_id: int) -> ProvisionedThroughputExceeded:
        shard = next(s.shard_id for s in stream.shards if s.id == shard_id)
        return ProvisionedThroughputExceeded(
            f"Rate exceeded for shard {shard} in stream {stream.name} under account {self.account_id}."
        )


def _route_plain(
    entries: Sequence[Entry], starts: list[int], ids: list[int], max_data: int
) -> tuple[list[int], list[int]] | None:
    """(shard id, size) per entry for the usual batch, with no explicit hash keys, no empty key and
    no record over the limit, computed by `map` at C speed: the MD5 and the bisect of up to 500
    keys a call. None for any other batch, which `_route_checked` words errors for."""
    keys = [e.partition_key for e in entries]
    data = [e.data for e in entries]
    if "" in keys or any(e.explicit_hash_key is not None for e in entries) or max(map(len, data)) > max_data:
        return None
    encoded = list(map(str.encode, keys))
    digests = map(_digest, map(md5, encoded))
    # 16 big-endian bytes compare as the 128-bit numbers they spell: bisect the digests as they are.
    bounds = [start.to_bytes(16, "big") for start in starts]
    positions = map(bisect.bisect_right, repeat(bounds), digests)
    shard_ids = list(map(ids.__getitem__, map(_MINUS_ONE.__add__, positions)))
    return shard_ids, list(map(operator.add, map(len, data), map(len, encoded)))


def _route_checked(
    entries: Sequence[Entry], starts: list[int], ids: list[int], max_data: int, many: bool
) -> tuple[list[int], list[int]]:
    """(shard id, size) per entry, record by record: the first bad one raises the error AWS words
    for it; explicit hash keys are honoured."""
    bisect_right = bisect.bisect_right
    shard_ids: list[int] = []
    sizes: list[int] = []
    for n, entry in enumerate(entries, 1):
        key = entry.partition_key
        data = entry.data
        if not key:
            raise ValidationError(
                f"1 validation error detected: Value null at '{_where(n, many)}partitionKey' failed to"
                " satisfy constraint: Member must not be null"
            )
        if len(data) > max_data:
            raise ValidationError(
                f"1 validation error detected: Value at '{_where(n, many)}data' failed to satisfy"
                f" constraint: Member must have length less than or equal to {max_data}"
            )
        encoded = key.encode()
        explicit = entry.explicit_hash_key
        point = hash_key_of(encoded) if explicit is None else _explicit(explicit)
        shard_ids.append(ids[bisect_right(starts, point) - 1])
        sizes.append(len(data) + len(encoded))
    return shard_ids, sizes


_MINUS_ONE = -1
_digest = operator.methodcaller("digest")


def _closed_under(future: Future[Appended]) -> bool:
    """Whether the append failed because a reshard closed a shard it was routed to (waits)."""
    try:
        future.result()
    except ShardClosed:
        return True
    except Exception:
        return False
    return False


def _where(n: int, many: bool) -> str:
    """Where a bad record sits, as validation messages name it."""
    return f"records.{n}.member." if many else ""


def _explicit(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= MAX_HASH_KEY:
        raise InvalidArgument(
            f"Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {text}"
        )
    return value


def _outcome(future: Future[Appended]) -> Appended | None:
    """The append's result; None if the store failed (nothing of it was stored). A stream deleted
    under the put is the caller's error, raised as such."""
    try:
        return future.result()
    except StreamNotFound:
        raise
    except Exception:
        log.exception("appending records failed")
        return None
