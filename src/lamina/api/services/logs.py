"""The CloudWatch Logs API (json 1.1, botocore model `logs/2014-03-28`): params ↔ LogsService.

`register_logs` builds the service over the platform's store (the one invocations log into) and
serves it; events past their group's retention are deleted every
`settings.log_retention_sweep_seconds` while the app runs. A log group ARN is accepted wherever a
`logGroupIdentifier` is (`arn:aws:logs:<region>:<account>:log-group:<name>`, `:*` optional).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.api.app import EdgeApp
from lamina.config import Settings
from lamina.errors import LogsInvalidParameter
from lamina.logs.reader import Row
from lamina.logs.service import LogsService
from lamina.store.base import LogGroupInfo, LogStore, LogStreamInfo

Params = dict[str, Any]


def register_logs(app: EdgeApp, settings: Settings, store: LogStore, **options: Any) -> LogsService:
    """Serve CloudWatch Logs on `app` from `store`; `options` go to LogsService (clock...)."""
    service = LogsService(store, settings.region, settings.account_id, **options)
    app.register_service("logs", LogsApi(service).handlers())
    sweeper: list[asyncio.Task[None]] = []

    async def start() -> None:
        task = asyncio.get_running_loop().create_task(service.sweep_forever(settings.log_retention_sweep_seconds))
        sweeper.append(task)

    async def stop() -> None:
        for task in sweeper:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start)
    app.on_shutdown.insert(0, stop)  # before the store closes
    return service


def group_name(params: Params) -> str:
    """logGroupName, or the name inside logGroupIdentifier (a name or a log group ARN)."""
    name, identifier = params.get("logGroupName"), params.get("logGroupIdentifier")
    if identifier is not None:
        if name is not None:
            raise LogsInvalidParameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        return identifier_name(identifier)
    if name is None:
        raise LogsInvalidParameter("Should provide either name or ARN of the log group.")
    return str(name)


def identifier_name(identifier: str) -> str:
    if identifier.startswith("arn:"):
        _, found, rest = identifier.partition(":log-group:")
        if not found or not rest:
            raise LogsInvalidParameter(f"Invalid log group ARN: {identifier}")
        return rest.removesuffix(":*")
    return identifier


class LogsApi:
    """One method per operation; `handlers()` gives the edge its table."""

    def __init__(self, service: LogsService) -> None:
        self.service = service

    def handlers(self) -> dict[str, Callable[[Any, Params], Awaitable[Params]]]:
        return {
            "CreateLogGroup": self.create_log_group,
            "DeleteLogGroup": self.delete_log_group,
            "DescribeLogGroups": self.describe_log_groups,
            "PutRetentionPolicy": self.put_retention_policy,
            "DeleteRetentionPolicy": self.delete_retention_policy,
            "CreateLogStream": self.create_log_stream,
            "DeleteLogStream": self.delete_log_stream,
            "DescribeLogStreams": self.describe_log_streams,
            "PutLogEvents": self.put_log_events,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
        }

    # --- groups ----------------------------------------------------------------------------------

    async def create_log_group(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.service.create_log_group, params["logGroupName"])
        return {}

    async def delete_log_group(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.service.delete_log_group, params["logGroupName"])
        return {}

    async def describe_log_groups(self, ctx: Any, params: Params) -> Params:
        identifiers = params.get("logGroupIdentifiers")
        groups, token = await asyncio.to_thread(
            self.service.describe_log_groups,
            params.get("logGroupNamePrefix"),
            params.get("logGroupNamePattern"),
            None if identifiers is None else [identifier_name(i) for i in identifiers],
            params.get("nextToken"),
            params.get("limit") or 50,
        )
        shapes = [self._group(g) for g in groups]
        if params.get("logGroupNamePattern"):  # "then only arn, creationTime, and logGroupName are included"
            shapes = [{k: s[k] for k in ("arn", "creationTime", "logGroupName")} for s in shapes]
        return _with_token({"logGroups": shapes}, token)

    async def put_retention_policy(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.service.put_retention_policy, params["logGroupName"], params["retentionInDays"])
        return {}

    async def delete_retention_policy(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.service.delete_retention_policy, params["logGroupName"])
        return {}

    # --- streams ---------------------------------------------------------------------------------

    async def create_log_stream(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.service.create_log_stream, params["logGroupName"], params["logStreamName"])
        return {}

    async def delete_log_stream(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.service.delete_log_stream, params["logGroupName"], params["logStreamName"])
        return {}

    async def describe_log_streams(self, ctx: Any, params: Params) -> Params:
        group = group_name(params)
        streams, token = await asyncio.to_thread(
            self.service.describe_log_streams,
            group,
            params.get("logStreamNamePrefix"),
            params.get("orderBy") or "LogStreamName",
            bool(params.get("descending")),
            params.get("nextToken"),
            params.get("limit") or 50,
        )
        return _with_token({"logStreams": [self._stream(group, s) for s in streams]}, token)

    # --- events ----------------------------------------------------------------------------------

    async def put_log_events(self, ctx: Any, params: Params) -> Params:
        events = [(e["timestamp"], e["message"]) for e in params["logEvents"]]
        result = await asyncio.to_thread(
            self.service.put_log_events, params["logGroupName"], params["logStreamName"], events
        )
        out: Params = {"nextSequenceToken": result.next_sequence_token}
        rejected = {
            "tooNewLogEventStartIndex": result.too_new_start,
            "tooOldLogEventEndIndex": result.too_old_end,
            "expiredLogEventEndIndex": result.expired_end,
        }
        rejected = {k: v for k, v in rejected.items() if v is not None}
        if rejected:
            out["rejectedLogEventsInfo"] = rejected
        return out

    async def get_log_events(self, ctx: Any, params: Params) -> Params:
        page = await asyncio.to_thread(
            self.service.get_log_events,
            group_name(params),
            params["logStreamName"],
            params.get("startTime"),
            params.get("endTime"),
            params.get("nextToken"),
            params.get("limit") or 10_000,
            bool(params.get("startFromHead")),
        )
        return {
            "events": [
                {"timestamp": e.timestamp_ms, "message": e.message, "ingestionTime": e.ingestion_ms}
                for _, _, e in page.events
            ],
            "nextForwardToken": page.forward_token,
            "nextBackwardToken": page.backward_token,
        }

    async def filter_log_events(self, ctx: Any, params: Params) -> Params:
        page = await asyncio.to_thread(
            self.service.filter_log_events,
            group_name(params),
            params.get("logStreamNames"),
            params.get("logStreamNamePrefix"),
            params.get("startTime"),
            params.get("endTime"),
            params.get("filterPattern"),
            params.get("nextToken"),
            params.get("limit") or 10_000,
            params.get("startFromHead") is False,  # newest first only when asked explicitly
        )
        events = [_filtered(row) for row in page.events]
        return _with_token({"events": events, "searchedLogStreams": []}, page.next_token)

    # --- shapes ----------------------------------------------------------------------------------

    def _group(self, g: LogGroupInfo) -> Params:
        arn = self.service.group_arn(g.name)
        out: Params = {
            "logGroupName": g.name,
            "creationTime": g.created_ms,
            "metricFilterCount": 0,
            "arn": f"{arn}:*",
            "logGroupArn": arn,
            "storedBytes": g.stored_bytes,
            "logGroupClass": "STANDARD",
        }
        if g.retention_days is not None:
            out["retentionInDays"] = g.retention_days
        return out

    def _stream(self, group: str, s: LogStreamInfo) -> Params:
        out: Params = {
            "logStreamName": s.name,
            "creationTime": s.created_ms,
            "arn": self.service.stream_arn(group, s.name),
            "storedBytes": s.stored_bytes,
        }
        times = {
            "firstEventTimestamp": s.first_event_ms,
            "lastEventTimestamp": s.last_event_ms,
            "lastIngestionTime": s.last_ingestion_ms,
        }
        out.update({k: v for k, v in times.items() if v is not None})
        return out


def _filtered(row: Row) -> Params:
    id_, stream, e = row
    return {
        "logStreamName": stream,
        "timestamp": e.timestamp_ms,
        "message": e.message,
        "ingestionTime": e.ingestion_ms,
        "eventId": str(id_),
    }


def _with_token(out: Params, token: str | None) -> Params:
    if token is not None:
        out["nextToken"] = token
    return out
