"""Typed records of the stream service, and the arithmetic Kinesis defines: hash-key ranges and
sequence numbers.

- A partition key routes to a shard by its MD5 digest read as a 128-bit unsigned big-endian
  integer (the hash key); each shard owns a contiguous range of the key space [0, 2^128 - 1].
  At creation the space is split evenly as Kinesis does: shard i of N starts at i * (2^128 // N)
  and the last shard ends at 2^128 - 1 (it absorbs the remainder).
  https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecord.html
- A sequence number is a decimal string of 56 digits: SEQUENCE_BASE + the record's counter, which
  the store assigns in commit order across all streams. So within a shard (and a stream) sequence
  numbers strictly increase with commit order, and compare equally as integers or as strings.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import repeat
from typing import NamedTuple

HASH_SPACE = 1 << 128
MAX_HASH_KEY = HASH_SPACE - 1
SEQUENCE_BASE = 49 * 10**54  # 56 digits, like the numbers Kinesis hands out ("4959...")
MAX_COUNTER = 10**54 - 1


class StreamMode(StrEnum):
    PROVISIONED = "PROVISIONED"
    ON_DEMAND = "ON_DEMAND"


class StreamStatus(StrEnum):
    CREATING = "CREATING"
    DELETING = "DELETING"
    ACTIVE = "ACTIVE"
    UPDATING = "UPDATING"


class IteratorType(StrEnum):
    AT_SEQUENCE_NUMBER = "AT_SEQUENCE_NUMBER"
    AFTER_SEQUENCE_NUMBER = "AFTER_SEQUENCE_NUMBER"
    TRIM_HORIZON = "TRIM_HORIZON"
    LATEST = "LATEST"
    AT_TIMESTAMP = "AT_TIMESTAMP"


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard. `id` is the store's key (never reused); `index` names it: shardId-%012d."""

    id: int
    index: int
    start_hash: int
    end_hash: int
    starting_counter: int  # first counter the shard may hold (the store's counter at creation + 1)
    ending_counter: int | None = None  # set once the shard is closed (resharding, later)
    parent_index: int | None = None
    adjacent_parent_index: int | None = None
    opened_ms: int | None = None  # when it opened (None: created before open times were kept)
    closed_ms: int | None = None  # when it closed (None: open, or closed before close times were kept)

    @property
    def shard_id(self) -> str:
        return shard_name(self.index)

    @property
    def is_open(self) -> bool:
        return self.ending_counter is None


@dataclass(frozen=True, slots=True)
class Stream:
    id: int
    name: str
    created_ms: int
    mode: StreamMode
    retention_hours: int
    max_record_kib: int
    shards: tuple[Shard, ...]
    tags: dict[str, str] = field(default_factory=dict, compare=False)
    status: StreamStatus = StreamStatus.ACTIVE


class StreamRecord(NamedTuple):
    """A stored record. (A tuple: reads build thousands of them a batch, and a frozen dataclass's
    `__init__` costs three times as much.)"""

    counter: int
    arrival_ms: int
    partition_key: str
    data: bytes

    @property
    def sequence_number(self) -> str:
        return sequence_number(self.counter)


class PutResult(NamedTuple):
    """One record's outcome in a put: a sequence number and shard, or an error code + message.
    (Tuples, like Entry: a put makes up to 500 of each.)"""

    shard_id: str
    sequence_number: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class Entry(NamedTuple):
    """One record to put, as a producer gives it."""

    data: bytes
    partition_key: str
    explicit_hash_key: str | None = None


def shard_name(index: int) -> str:
    return f"shardId-{index:012d}"


def shard_index(name: str) -> int | None:
    """The index in "shardId-000000000007" (Kinesis also accepts a bare "7" and "shardId-7")."""
    text = name.removeprefix("shardId-")
    return int(text) if text.isdigit() and len(text) <= 12 else None


def even_ranges(count: int) -> list[tuple[int, int]]:
    """The hash-key ranges of `count` new shards, as Kinesis splits them."""
    width = HASH_SPACE // count
    return [(i * width, MAX_HASH_KEY if i == count - 1 else (i + 1) * width - 1) for i in range(count)]


def hash_key(partition_key: str) -> int:
    """The 128-bit hash key Kinesis routes a partition key by: its MD5, big-endian."""
    return hash_key_of(partition_key.encode("utf-8"))


def hash_key_of(encoded_key: bytes) -> int:
    """`hash_key` for a key already UTF-8 encoded (the put loop encodes once for size and hash)."""
    return int.from_bytes(md5(encoded_key).digest(), "big")


try:  # CPython's own MD5: for a short key 2.5x faster than OpenSSL's, which sets up a context per call
    from _md5 import md5  # type: ignore[import-not-found]
except ImportError:  # an interpreter built without it
    md5 = functools.partial(hashlib.md5, usedforsecurity=False)


def sequence_number(counter: int) -> str:
    return SEQUENCE_TEXT % counter


# SEQUENCE_BASE + counter as text, without the 56-digit integer: "49" and the counter in 54
# digits (counters stay below 10**54). Formatting a small int is a fraction of the big one's cost.
SEQUENCE_TEXT = "49%054d"


def put_results(shard_ids: Sequence[str], counters: Sequence[int]) -> list[PutResult]:
    """`[PutResult(shard, sequence_number(counter)), ...]`, made by `map` and `zip` (no Python
    frame per record): a put answers up to 500 of them per call."""
    sequences = map(SEQUENCE_TEXT.__mod__, counters)
    columns = zip(shard_ids, sequences, repeat(None), repeat(None), strict=False)
    if len(shard_ids) != len(counters):
        raise ValueError(f"{len(shard_ids)} shards for {len(counters)} counters")
    return list(map(_tuple_new, repeat(PutResult), columns))


def parse_sequence_number(text: str) -> int | None:
    """The counter in a sequence number this store issued, or None if it cannot be one."""
    if not text.isdigit():
        return None
    value = int(text) - SEQUENCE_BASE
    return value if 0 <= value <= MAX_COUNTER else None


_tuple_new = tuple.__new__
