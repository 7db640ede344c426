"""The Kinesis Data Streams API (json 1.1, botocore model `kinesis/2013-12-02`): params ↔ StreamService.

`register_kinesis` builds the stream service over the embedded database and serves it;
`install(platform)` is the one line the composition root calls. A StreamARN is accepted wherever a
StreamName is (`arn:aws:kinesis:<region>:<account>:stream/<name>`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from lamina.api.app import EdgeApp
from lamina.api.services.kinesis_wire import PUT_RECORDS
from lamina.config import Settings
from lamina.errors import InvalidArgument
from lamina.sources.streams import (
    Entry,
    IteratorType,
    PutResult,
    Shard,
    SqliteStreamStore,
    Stream,
    StreamMode,
    StreamService,
)
from lamina.sources.streams.model import sequence_number, shard_name
from lamina.store.sqlite.database import Database

Params = dict[str, Any]
log = logging.getLogger(__name__)
TRIM_EVERY_S = 60.0


def register_kinesis(app: EdgeApp, settings: Settings, database: Database, **options: Any) -> StreamService:
    """Serve Kinesis on `app` from streams kept in `database`; `options` go to StreamService
    (clock, iterator_ttl_s, retention_hour_s... for tests). Records past retention are trimmed
    every minute while the app runs."""
    service = StreamService(
        SqliteStreamStore(database, clock=options.get("clock", time.time)),
        region=settings.region,
        account_id=settings.account_id,
        **options,
    )
    app.register_service("kinesis", KinesisApi(service).handlers(), fast_paths={"PutRecords": PUT_RECORDS})
    trimmer: list[asyncio.Task[None]] = []

    async def start() -> None:
        trimmer.append(asyncio.get_running_loop().create_task(_trim_forever(service)))

    async def stop() -> None:
        for task in trimmer:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start)
    app.on_shutdown.insert(0, stop)  # before the store closes
    return service


async def _trim_forever(service: StreamService) -> None:
    while True:
        await asyncio.sleep(TRIM_EVERY_S)
        try:
            await asyncio.to_thread(service.trim_expired)
        except Exception:  # the next round tries again
            log.exception("trimming expired stream records failed")


def stream_name(params: Params) -> str:
    """StreamName, or the name inside StreamARN; both must agree when both are given."""
    name, arn = params.get("StreamName"), params.get("StreamARN")
    if arn is not None:
        _, _, from_arn = arn.partition(":stream/")
        if not from_arn or not arn.startswith("arn:"):
            raise InvalidArgument(f"Invalid StreamARN: {arn}")
        if name is not None and name != from_arn:
            raise InvalidArgument(f"StreamName {name} does not match the stream in StreamARN {arn}.")
        return from_arn
    if name is None:
        raise InvalidArgument("Either StreamName or StreamARN must be provided.")
    return str(name)


class KinesisApi:
    """One method per operation; `handlers()` gives the edge its table."""

    def __init__(self, service: StreamService) -> None:
        self.service = service

    def handlers(self) -> dict[str, Callable[[Any, Params], Awaitable[Params]]]:
        return {
            "CreateStream": self.create_stream,
            "DeleteStream": self.delete_stream,
            "DescribeStream": self.describe_stream,
            "DescribeStreamSummary": self.describe_stream_summary,
            "ListStreams": self.list_streams,
            "ListShards": self.list_shards,
            "PutRecord": self.put_record,
            "PutRecords": self.put_records,
            "GetShardIterator": self.get_shard_iterator,
            "GetRecords": self.get_records,
            "IncreaseStreamRetentionPeriod": self.increase_retention,
            "DecreaseStreamRetentionPeriod": self.decrease_retention,
            "AddTagsToStream": self.add_tags,
            "ListTagsForStream": self.list_tags,
            "UpdateShardCount": self.update_shard_count,
        }

    # --- streams ---------------------------------------------------------------------------------

    async def create_stream(self, ctx: Any, params: Params) -> Params:
        mode = StreamMode((params.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED"))
        await asyncio.to_thread(
            self.service.create_stream,
            params["StreamName"],
            params.get("ShardCount"),
            mode,
            params.get("Tags"),
            params.get("MaxRecordSizeInKiB") or 1024,
        )
        return {}

    async def delete_stream(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.service.delete_stream, stream_name(params))
        return {}

    async def describe_stream(self, ctx: Any, params: Params) -> Params:
        stream = await asyncio.to_thread(self.service.describe, stream_name(params))
        shards, more = await asyncio.to_thread(
            self.service.list_shards, stream.name, params.get("ExclusiveStartShardId"), params.get("Limit") or 100
        )
        return {
            "StreamDescription": {
                **self._summary(stream),
                "Shards": [_shard(s) for s in shards],
                "HasMoreShards": more,
                "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
                "EncryptionType": "NONE",
            }
        }

    async def describe_stream_summary(self, ctx: Any, params: Params) -> Params:
        stream = await asyncio.to_thread(self.service.describe, stream_name(params))
        return {
            "StreamDescriptionSummary": {
                **self._summary(stream),
                "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
                "EncryptionType": "NONE",
                "OpenShardCount": sum(1 for s in stream.shards if s.is_open),
                "ConsumerCount": 0,
                "MaxRecordSizeInKiB": stream.max_record_kib,
            }
        }

    def _summary(self, stream: Stream) -> Params:
        return {
            "StreamName": stream.name,
            "StreamARN": self.service.arn(stream.name),
            "StreamStatus": str(stream.status),
            "StreamModeDetails": {"StreamMode": str(stream.mode)},
            "RetentionPeriodHours": stream.retention_hours,
            "StreamCreationTimestamp": stream.created_ms / 1000,
        }

    async def list_streams(self, ctx: Any, params: Params) -> Params:
        after = params.get("ExclusiveStartStreamName")
        if params.get("NextToken"):
            after = _untoken(params["NextToken"])
        streams, more = await asyncio.to_thread(self.service.list_streams, after, params.get("Limit") or 100)
        out: Params = {
            "StreamNames": [s.name for s in streams],
            "HasMoreStreams": more,
            "StreamSummaries": [
                {k: v for k, v in self._summary(s).items() if k != "RetentionPeriodHours"} for s in streams
            ],
        }
        if more:
            out["NextToken"] = _token(streams[-1].name)
        return out

    async def list_shards(self, ctx: Any, params: Params) -> Params:
        token = params.get("NextToken")
        if token is not None:
            if params.get("StreamName") or params.get("ExclusiveStartShardId"):
                raise InvalidArgument("NextToken and StreamName cannot be provided together.")
            name, _, after = _untoken(token).partition("\n")
        else:
            name, after = stream_name(params), params.get("ExclusiveStartShardId") or ""
        shard_filter = params.get("ShardFilter")
        select, timestamp = None, None
        if shard_filter is not None:
            select = shard_filter["Type"]
            if select == "AFTER_SHARD_ID":
                if not shard_filter.get("ShardId"):
                    raise InvalidArgument("ShardFilter of type AFTER_SHARD_ID requires a ShardId.")
                after = max(after, shard_filter["ShardId"]) if after else shard_filter["ShardId"]
            elif select in ("AT_TIMESTAMP", "FROM_TIMESTAMP") and shard_filter.get("Timestamp") is None:
                raise InvalidArgument(f"ShardFilter of type {select} requires a Timestamp.")
            stamp = shard_filter.get("Timestamp")
            timestamp = stamp.timestamp() if isinstance(stamp, datetime) else stamp
        # See StreamService.list_shards: which shards each filter type selects.
        limit = params.get("MaxResults") or 1000
        shards, more = await asyncio.to_thread(self.service.list_shards, name, after or None, limit, select, timestamp)
        out: Params = {"Shards": [_shard(s) for s in shards]}
        if more:
            out["NextToken"] = _token(f"{name}\n{shards[-1].shard_id}")
        return out

    async def increase_retention(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(
            self.service.set_retention, stream_name(params), params["RetentionPeriodHours"], increase=True
        )
        return {}

    async def decrease_retention(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(
            self.service.set_retention, stream_name(params), params["RetentionPeriodHours"], increase=False
        )
        return {}

    async def add_tags(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.service.add_tags, stream_name(params), params["Tags"])
        return {}

    async def list_tags(self, ctx: Any, params: Params) -> Params:
        tags, more = await asyncio.to_thread(
            self.service.list_tags, stream_name(params), params.get("ExclusiveStartTagKey"), params.get("Limit") or 50
        )
        return {"Tags": [{"Key": k, "Value": v} for k, v in tags], "HasMoreTags": more}

    async def update_shard_count(self, ctx: Any, params: Params) -> Params:
        name = stream_name(params)
        current, target = await asyncio.to_thread(
            self.service.update_shard_count, name, params["TargetShardCount"], params.get("ScalingType", "")
        )
        return {
            "StreamName": name,
            "CurrentShardCount": current,
            "TargetShardCount": target,
            "StreamARN": self.service.arn(name),
        }

    # --- records ---------------------------------------------------------------------------------

    async def put_record(self, ctx: Any, params: Params) -> Params:
        entry = Entry(params["Data"], params.get("PartitionKey") or "", params.get("ExplicitHashKey"))
        result = await asyncio.to_thread(
            self.service.put_record, stream_name(params), entry, params.get("SequenceNumberForOrdering")
        )
        return {"ShardId": result.shard_id, "SequenceNumber": result.sequence_number, "EncryptionType": "NONE"}

    async def put_records(self, ctx: Any, params: Params) -> Params:
        new = tuple.__new__  # Entry's own __new__ is a Python function: this is one C call a record
        entries = [new(Entry, (r["Data"], r.get("PartitionKey") or "", r.get("ExplicitHashKey")))
                   for r in params["Records"]]  # fmt: skip
        results = await self.service.put_records_async(stream_name(params), entries)
        return {
            "FailedRecordCount": sum(1 for r in results if r.error_code is not None),
            "Records": [_put_result(r) for r in results],
            "EncryptionType": "NONE",
        }

    async def get_shard_iterator(self, ctx: Any, params: Params) -> Params:
        try:
            kind = IteratorType(params["ShardIteratorType"])
        except ValueError:
            raise InvalidArgument(f"Invalid ShardIteratorType: {params['ShardIteratorType']}") from None
        timestamp = params.get("Timestamp")
        iterator = await asyncio.to_thread(
            self.service.get_shard_iterator,
            stream_name(params),
            params["ShardId"],
            kind,
            params.get("StartingSequenceNumber"),
            timestamp.timestamp() if isinstance(timestamp, datetime) else timestamp,
        )
        return {"ShardIterator": iterator}

    async def get_records(self, ctx: Any, params: Params) -> Params:
        page = await asyncio.to_thread(self.service.get_records, params["ShardIterator"], params.get("Limit") or 10_000)
        out: Params = {
            "Records": [
                {
                    "SequenceNumber": r.sequence_number,
                    "ApproximateArrivalTimestamp": r.arrival_ms / 1000,
                    "Data": r.data,
                    "PartitionKey": r.partition_key,
                }
                for r in page.records
            ],
            "MillisBehindLatest": page.millis_behind_latest,
        }
        if page.next_iterator is not None:
            out["NextShardIterator"] = page.next_iterator
        else:  # a closed shard read to its end
            out["ChildShards"] = [
                {
                    "ShardId": c.shard_id,
                    "ParentShards": [shard_name(i) for i in (c.parent_index, c.adjacent_parent_index) if i is not None],
                    "HashKeyRange": {"StartingHashKey": str(c.start_hash), "EndingHashKey": str(c.end_hash)},
                }
                for c in page.child_shards
            ]
        return out


def _shard(shard: Shard) -> Params:
    out: Params = {
        "ShardId": shard.shard_id,
        "HashKeyRange": {"StartingHashKey": str(shard.start_hash), "EndingHashKey": str(shard.end_hash)},
        "SequenceNumberRange": {"StartingSequenceNumber": sequence_number(shard.starting_counter)},
    }
    if shard.ending_counter is not None:
        out["SequenceNumberRange"]["EndingSequenceNumber"] = sequence_number(shard.ending_counter)
    if shard.parent_index is not None:
        out["ParentShardId"] = shard_name(shard.parent_index)
    if shard.adjacent_parent_index is not None:
        out["AdjacentParentShardId"] = shard_name(shard.adjacent_parent_index)
    return out


def _put_result(result: PutResult) -> Params:
    if result.error_code is not None:
        return {"ErrorCode": result.error_code, "ErrorMessage": result.error_message}
    return {"SequenceNumber": result.sequence_number, "ShardId": result.shard_id}


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"Invalid NextToken: {token}") from None
