"""Lamina's streams (the Kinesis API) as a mapping source: shards, positions (sequence numbers),
the Kinesis event record JSON and KinesisBatchInfo (../shared/reference/aws-lambda.md §4, §5).

Reads go to the stream store directly (no iterators, so nothing expires while a batch is retried
for hours); wake-ups come from the service's RecordSignal, bumped at every committed put and at
every reshard.
"""

from __future__ import annotations

import binascii
import functools
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import repeat
from operator import itemgetter
from typing import Any

from lamina.errors import StreamNotFound
from lamina.model.mappings import StartingPosition
from lamina.sources.mappings.source import ReadResult, ShardInfo, SourceGone, SourceRecord
from lamina.sources.streams import Shard, Stream, StreamRecord, StreamService
from lamina.sources.streams.model import SEQUENCE_TEXT, parse_sequence_number, sequence_number, shard_name

LAG_CAP = 10_000
_tuple_new = tuple.__new__
_counter_of, _arrival_of, _key_of, _data_of = (itemgetter(i) for i in range(4))  # StreamRecord's fields
_b64 = functools.partial(binascii.b2a_base64, newline=False)


def stream_name_of(arn: str) -> str | None:
    """The stream name in `arn:aws:kinesis:<region>:<account>:stream/<name>`, else None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kinesis" or not parts[5].startswith("stream/"):
        return None
    name = parts[5][len("stream/") :]
    return name if name and "/" not in name else None


class KinesisSource:
    """Implements `lamina.sources.mappings.source.Source` for one stream."""

    batch_info_key = "KinesisBatchInfo"

    def __init__(self, streams: StreamService, arn: str) -> None:
        name = stream_name_of(arn)
        if name is None:
            raise ValueError(f"not a stream ARN: {arn}")
        self.streams = streams
        self.arn = arn
        self.name = name
        self._stream: Stream | None = None
        self._templates: dict[tuple[str, str], bytes] = {}

    # -- shards -----------------------------------------------------------------------------

    def _load(self) -> Stream:
        if self.streams.arn(self.name) != self.arn:  # another region or account: not ours
            raise SourceGone(f"stream {self.arn} does not exist")
        try:
            stream = self.streams.describe(self.name)
        except StreamNotFound:
            raise SourceGone(f"stream {self.name} does not exist") from None
        if self._stream is not None and self._stream.id != stream.id:
            raise SourceGone(f"stream {self.name} was deleted (and created again)")
        self._stream = stream
        return stream

    def _shard(self, shard: str, fresh: bool = False) -> tuple[Stream, Shard]:
        stream = self._stream if self._stream is not None and not fresh else self._load()
        for s in stream.shards:
            if s.shard_id == shard:
                return stream, s
        if not fresh:
            return self._shard(shard, fresh=True)
        raise SourceGone(f"shard {shard} of stream {self.name} does not exist")

    def shards(self) -> list[ShardInfo]:
        stream = self._load()
        names = {s.index: s.shard_id for s in stream.shards}
        out = []
        for s in sorted(stream.shards, key=lambda s: s.index):
            parents = tuple(names[i] for i in (s.parent_index, s.adjacent_parent_index) if i is not None and i in names)
            out.append(ShardInfo(s.shard_id, parents, not s.is_open))
        return out

    def start_position(self, shard: str, starting: StartingPosition, timestamp: float | None) -> str:
        _, s = self._shard(shard, fresh=True)
        store = self.streams.store
        if starting is StartingPosition.TRIM_HORIZON:
            after = s.starting_counter - 1
        elif starting is StartingPosition.LATEST:
            after = store.last_counter() if s.is_open else max(s.ending_counter or 0, s.starting_counter - 1)
        else:
            first = store.first_counter_at(s.id, int((timestamp or 0) * 1000))
            after = first - 1 if first is not None else store.last_counter()
        return sequence_number(after)

    def horizon(self, shard: str) -> str:
        _, s = self._shard(shard)
        return sequence_number(s.starting_counter - 1)

    # -- records ----------------------------------------------------------------------------

    def read(self, shard: str, after: str, limit: int, max_bytes: int) -> ReadResult:
        stream, s = self._shard(shard)
        counter = _counter(after)
        records = self._read(stream, s, counter, limit, max_bytes)
        if not records and s.is_open:
            # Empty: look again with a fresh view, closed first, then read (a shard closes in commit
            # order, so once it is seen closed, a read finds every record it will ever hold).
            stream, s = self._shard(shard, fresh=True)
            if not s.is_open:
                records = self._read(stream, s, counter, limit, max_bytes)
        finished = not records and not s.is_open
        # The hot loop, run by `map` and `zip`: no Python frame per record.
        positions = map(SEQUENCE_TEXT.__mod__, map(_counter_of, records))
        columns = zip(positions, map(_arrival_of, records), map(_key_of, records), records, strict=True)
        return ReadResult(list(map(_tuple_new, repeat(SourceRecord), columns)), finished)

    def _read(self, stream: Stream, s: Shard, after: int, limit: int, max_bytes: int) -> list[StreamRecord]:
        oldest = int(time.time() * 1000 - stream.retention_hours * self.streams.retention_hour_ms)
        return self.streams.store.read(s.id, after, limit, oldest, max_bytes)

    def expired_before_ms(self, shard: str) -> int:
        stream, _ = self._shard(shard)
        return int(time.time() * 1000 - stream.retention_hours * self.streams.retention_hour_ms)

    def version(self, shard: str) -> int:
        _, s = self._shard(shard)
        return self.streams.signal.version(s.id)

    async def wait(self, shard: str, version: int, timeout: float | None) -> bool:
        _, s = self._shard(shard)
        return await self.streams.signal.wait(s.id, version, timeout)

    # -- JSON -------------------------------------------------------------------------------

    def event_records(self, shard: str, records: Sequence[SourceRecord], role: str) -> list[bytes]:
        """Each record's Kinesis JSON, from a per-(shard, role) template filled by `bytes %` over
        columns built with `map`: ~0.6 µs a record, where a json.dumps of AWS's nested dict per
        record cost ~5 µs. The key order and values are those of `json.dumps` of AWS's record
        (asserted in tests); arrival times go through `%r`, json.dumps's float repr."""
        template = self._template(shard, role)
        raws = [r.raw for r in records]
        keys: list[str] = list(map(_key_of, raws))
        if _verbatim("".join(keys)):  # checked once for the whole batch
            quoted: Any = map(b'"%s"'.__mod__, map(str.encode, keys))  # nothing to escape
        else:
            quoted = map(_json_string, keys)
        sequences = [r.position.encode() for r in records]
        data = map(_b64, map(_data_of, raws))
        arrivals = list(map(_arrival_of, raws))
        stamps = {ms: b"%r" % (ms / 1000) for ms in set(arrivals)}  # a put's records share one
        return list(map(template.__mod__, zip(quoted, sequences, data, map(stamps.__getitem__, arrivals), sequences,
                                              strict=True)))  # fmt: skip

    def _template(self, shard: str, role: str) -> bytes:
        """The record JSON with a %s for the key, sequence number, data, arrival and sequence number."""
        cached = self._templates.get((shard, role))
        if cached is None:
            text = (
                '{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":%s,"sequenceNumber":"%s","data":"%s",'
                '"approximateArrivalTimestamp":%s},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"'
                + _percent(shard) + ':%s","eventName":"aws:kinesis:record","invokeIdentityArn":'
                + _percent(json.dumps(role)) + ',"awsRegion":' + _percent(json.dumps(self.streams.region))
                + ',"eventSourceARN":' + _percent(json.dumps(self.arn)) + "}"
            )  # fmt: skip
            cached = self._templates[(shard, role)] = text.encode()
        return cached

    def filter_view(self, record: SourceRecord) -> dict[str, Any]:
        r: StreamRecord = record.raw
        try:
            data: Any = json.loads(r.data)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            data = None  # not JSON: a pattern on `data` cannot match it (AWS drops such records)
        return {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": r.partition_key,
            "sequenceNumber": record.position,
            "approximateArrivalTimestamp": r.arrival_ms / 1000,
            "data": data,
        }

    def batch_info(self, shard: str, records: Sequence[SourceRecord]) -> dict[str, Any]:
        first, last = records[0], records[-1]
        return {
            "shardId": shard,
            "startSequenceNumber": first.position,
            "endSequenceNumber": last.position,
            "approximateArrivalOfFirstRecord": _iso(first.arrival_ms),
            "approximateArrivalOfLastRecord": _iso(last.arrival_ms),
            "batchSize": len(records),
            "streamArn": self.arn,
        }

    def lag(self, shard: str, after: str) -> tuple[int, int]:
        stream, s = self._shard(shard)
        records = self._read(stream, s, _counter(after), LAG_CAP, 64 << 20)
        age = max(0, int(time.time() * 1000) - records[0].arrival_ms) if records else 0
        return len(records), age


def _percent(text: str) -> str:
    """`text` for a `%` template: its own percent signs doubled."""
    return text.replace("%", "%%")


def _verbatim(text: str) -> bool:
    """Whether `json.dumps(text)` is `text` in quotes: printable ASCII without quote or backslash."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _json_string(text: str) -> bytes:
    """`json.dumps(text)` as bytes, without the call for the usual plain-ASCII partition key."""
    if _verbatim(text):
        return b'"' + text.encode() + b'"'
    return json.dumps(text).encode()


def _counter(position: str) -> int:
    counter = parse_sequence_number(position)
    if counter is None:
        raise ValueError(f"not a stream position: {position!r}")
    return counter


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


__all__ = ["KinesisSource", "shard_name", "stream_name_of"]
