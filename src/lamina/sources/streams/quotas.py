"""Per-shard throughput quotas, as a provisioned Kinesis shard enforces them: off by default
(Lamina is far faster than a shard), switched on per stream with the tag `lamina:quotas=on` (or
for every stream by the service's `quotas` flag), so producers and consumers can test their
back-off code against ProvisionedThroughputExceededException.

A shard takes writes up to 1,000 records/s and 1 MiB/s, and GetRecords calls up to 5/s and
2 MiB/s. https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
Each limit is a token bucket holding one second's worth: bursts up to the per-second amount
pass, then the rate holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from lamina.sources.streams.model import Stream

QUOTA_TAG = "lamina:quotas"
WRITE_RECORDS_PER_S = 1000
WRITE_BYTES_PER_S = 1 << 20
READ_CALLS_PER_S = 5
READ_BYTES_PER_S = 2 << 20


@dataclass(slots=True)
class _Bucket:
    rate: float
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now


class ShardQuotas:
    """Token buckets per shard. Thread-safe."""

    def __init__(self, clock: Callable[[], float], default_on: bool = False) -> None:
        self._clock = clock
        self._default_on = default_on
        self._lock = threading.Lock()
        self._buckets: dict[tuple[int, str], _Bucket] = {}

    def applies(self, stream: Stream) -> bool:
        value = stream.tags.get(QUOTA_TAG)
        return self._default_on if value is None else value.lower() in ("on", "true", "1")

    def _bucket(self, shard_id: int, kind: str, rate: float, now: float) -> _Bucket:
        bucket = self._buckets.get((shard_id, kind))
        if bucket is None:
            bucket = self._buckets[(shard_id, kind)] = _Bucket(rate, rate, now)
        bucket.refill(now)
        return bucket

    def admit_write(self, shard_id: int, size: int) -> bool:
        """Take one record of `size` bytes from the shard's write quota, if it has room."""
        now = self._clock()
        with self._lock:
            records = self._bucket(shard_id, "records", WRITE_RECORDS_PER_S, now)
            data = self._bucket(shard_id, "bytes", WRITE_BYTES_PER_S, now)
            if records.tokens < 1 or data.tokens < size:
                return False
            records.tokens -= 1
            data.tokens -= size
            return True

    def admit_read(self, shard_id: int) -> bool:
        """Take one GetRecords call; refused while the calls or the bytes read are over quota."""
        now = self._clock()
        with self._lock:
            calls = self._bucket(shard_id, "calls", READ_CALLS_PER_S, now)
            data = self._bucket(shard_id, "read", READ_BYTES_PER_S, now)
            if calls.tokens < 1 or data.tokens < 0:
                return False
            calls.tokens -= 1
            return True

    def charge_read(self, shard_id: int, size: int) -> None:
        """Count bytes a call returned: going over throttles the next calls until it refills."""
        with self._lock:
            self._bucket(shard_id, "read", READ_BYTES_PER_S, self._clock()).tokens -= size
