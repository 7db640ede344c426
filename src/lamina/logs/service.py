"""LogsService: CloudWatch Logs' groups, streams, events and retention, over a `LogStore`.

The core of the Logs API (api/services/logs.py maps its wire shapes onto these calls). Function
invocations write their lines straight into the same store (`/aws/lambda/<name>` groups), so
everything a function logged is readable here. Rules and messages follow the CloudWatch Logs API
reference (PutLogEvents, PutRetentionPolicy, DescribeLogStreams, DescribeLogGroups).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lamina.errors import LogsInvalidParameter
from lamina.logs import reader
from lamina.logs.reader import EventPage, FilteredPage
from lamina.logs.tokens import decode_key, encode_key, invalid_token
from lamina.store.base import (
    LogEvent,
    LogGroupInfo,
    LogStore,
    LogStreamInfo,
    log_group_not_found,
    log_stream_not_found,
)

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
# PutRetentionPolicy's allowed values (the `Days` shape's documentation).
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
# PutLogEvents quotas: 10,000 events and 1,048,576 bytes a batch, counting 26 bytes per event;
# one event at most 256 KB; not older than 14 days (nor than the retention), not more than two
# hours ahead; a batch spans at most 24 hours.
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
MAX_EVENT_BYTES = 262_144
EVENT_OVERHEAD = 26
TOO_OLD_MS = 14 * DAY_MS
TOO_NEW_MS = 2 * 3600 * 1000
MAX_SPAN_MS = DAY_MS
_GROUP_NAME = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")


@dataclass(frozen=True)
class PutResult:
    """PutLogEvents' answer: indexes of rejected events (None when none were) and a token."""

    next_sequence_token: str
    too_new_start: int | None = None
    too_old_end: int | None = None
    expired_end: int | None = None


class LogsService:
    """Every Logs operation, synchronous (the edge runs them in worker threads); `clock` is
    injectable so retention and PutLogEvents' time rules are testable on a fake clock."""

    def __init__(self, store: LogStore, region: str, account_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.region = region
        self.account_id = account_id
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def group_arn(self, group: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{group}"

    def stream_arn(self, group: str, stream: str) -> str:
        return f"{self.group_arn(group)}:log-stream:{stream}"

    # --- groups ----------------------------------------------------------------------------------

    def create_log_group(self, group: str) -> None:
        if not _GROUP_NAME.fullmatch(group):
            raise LogsInvalidParameter(f"Log group name {group!r} is invalid: it may hold only a-z A-Z 0-9 _ - / . #")
        self.store.create_log_group(group)

    def delete_log_group(self, group: str) -> None:
        if not self.store.delete_log_group(group):
            raise log_group_not_found()

    def group(self, group: str) -> LogGroupInfo:
        info = self.store.get_log_group(group)
        if info is None:
            raise log_group_not_found()
        return info

    def describe_log_groups(
        self,
        prefix: str | None = None,
        pattern: str | None = None,
        names: Sequence[str] | None = None,
        token: str | None = None,
        limit: int = 50,
    ) -> tuple[list[LogGroupInfo], str | None]:
        """Groups by name, a page at a time; the token is the page's last name."""
        if prefix and pattern:
            raise LogsInvalidParameter("LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive.")
        after = _string_key(token) if token else None
        if names is not None:  # logGroupIdentifiers: those that exist, by name
            infos = [i for i in (self.store.get_log_group(n) for n in sorted(set(names))) if i is not None]
            infos = [i for i in infos if after is None or i.name > after][:limit]
        else:
            infos = self.store.describe_log_groups(prefix, pattern, after, limit + 1)
        more = len(infos) > limit
        infos = infos[:limit]
        return infos, (encode_key(infos[-1].name) if more else None)

    def put_retention_policy(self, group: str, days: int) -> None:
        if days not in RETENTION_DAYS:
            allowed = ", ".join(str(d) for d in RETENTION_DAYS)
            raise LogsInvalidParameter(
                f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{allowed}]"
            )
        self.store.set_log_retention(group, days)

    def delete_retention_policy(self, group: str) -> None:
        self.store.set_log_retention(group, None)

    # --- streams ---------------------------------------------------------------------------------

    def create_log_stream(self, group: str, stream: str) -> None:
        _check_stream_name(stream)
        self.store.create_log_stream(group, stream)

    def delete_log_stream(self, group: str, stream: str) -> None:
        self.store.delete_log_stream(group, stream)

    def describe_log_streams(
        self,
        group: str,
        prefix: str | None = None,
        order_by: str = "LogStreamName",
        descending: bool = False,
        token: str | None = None,
        limit: int = 50,
    ) -> tuple[list[LogStreamInfo], str | None]:
        """Streams ordered by name or by last event time (streams with no events count as
        oldest), a page at a time; the token is the page's last sort key."""
        by_time = order_by == "LastEventTime"
        if by_time and prefix:
            raise LogsInvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
        self.group(group)
        streams = [s for s in self.store.list_log_streams(group) if not prefix or s.name.startswith(prefix)]

        def sort_key(s: LogStreamInfo) -> list[int | str]:
            return [s.last_event_ms if s.last_event_ms is not None else -1, s.name] if by_time else [s.name]

        streams.sort(key=sort_key, reverse=descending)
        if token:
            after = decode_key(token)
            shape = [int, str] if by_time else [str]
            if not isinstance(after, list) or [type(k) for k in after] != shape:
                raise invalid_token()
            streams = [s for s in streams if (sort_key(s) < after if descending else sort_key(s) > after)]
        page = streams[:limit]
        return page, (encode_key(sort_key(page[-1])) if len(streams) > limit else None)

    # --- events ----------------------------------------------------------------------------------

    def put_log_events(self, group: str, stream: str, events: Sequence[tuple[int, str]]) -> PutResult:
        """Check the batch as PutLogEvents does, then append the acceptable events; returns once
        they are committed."""
        info = self._require_stream(group, stream)
        _check_batch(events)
        now = self.now_ms()
        too_old = now - TOO_OLD_MS
        expired = now - info.retention_days * DAY_MS if info.retention_days else None
        too_new_start = next((i for i, (ts, _) in enumerate(events) if ts > now + TOO_NEW_MS), None)
        old = [i for i, (ts, _) in enumerate(events) if ts < too_old]
        gone = [i for i, (ts, _) in enumerate(events) if expired is not None and ts < expired and ts >= too_old]
        first_new = len(events) if too_new_start is None else too_new_start
        rejected = set(old) | set(gone)
        accepted = [LogEvent(ts, message) for i, (ts, message) in enumerate(events[:first_new]) if i not in rejected]
        # A DeleteLogStream racing this call loses: appending re-creates the stream, as if the
        # delete had come first and a CreateLogStream after it.
        if accepted:
            self.store.append_logs_nowait(group, stream, accepted).result()
        return PutResult(
            next_sequence_token=f"{time.time_ns():056d}",
            too_new_start=too_new_start,
            too_old_end=old[-1] if old else None,
            expired_end=gone[-1] if gone else None,
        )

    def get_log_events(
        self,
        group: str,
        stream: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        token: str | None = None,
        limit: int = 10_000,
        start_from_head: bool = False,
    ) -> EventPage:
        self._require_stream(group, stream)
        return reader.get_log_events(self.store, group, stream, start_ms, end_ms, token, limit, start_from_head)

    def filter_log_events(
        self,
        group: str,
        stream_names: Sequence[str] | None = None,
        stream_prefix: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        pattern: str | None = None,
        token: str | None = None,
        limit: int = 10_000,
        descending: bool = False,
    ) -> FilteredPage:
        if stream_names and stream_prefix:
            raise LogsInvalidParameter("logStreamNames and logStreamNamePrefix are mutually exclusive.")
        self.group(group)
        streams: Sequence[str] | None = stream_names or None
        if stream_prefix:
            streams = [s.name for s in self.store.list_log_streams(group) if s.name.startswith(stream_prefix)]
            if not streams:
                return FilteredPage([], None)
        return reader.filter_log_events(
            self.store, group, streams, start_ms, end_ms, pattern, token, limit, descending=descending
        )

    # --- retention -------------------------------------------------------------------------------

    def sweep_expired(self, batch: int = 5_000) -> int:
        """Delete every event older than its group's retention; returns how many. Deletes go in
        batches of `batch`, one commit each, so appends are never held up for long."""
        now = self.now_ms()
        deleted = 0
        for info in self.store.groups_with_retention():
            cutoff = now - info.retention_days * DAY_MS  # type: ignore[operator]
            while True:
                count = self.store.delete_log_events_before(info.name, cutoff, batch)
                deleted += count
                if count < batch:
                    break
        return deleted

    async def sweep_forever(self, interval_s: float) -> None:
        """Run `sweep_expired` every `interval_s` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                deleted = await asyncio.to_thread(self.sweep_expired)
            except Exception:  # the next round tries again
                log.exception("deleting log events past retention failed")
            else:
                if deleted:
                    log.info("deleted %d log events past their retention", deleted)

    def _require_stream(self, group: str, stream: str) -> LogGroupInfo:
        info = self.group(group)
        if self.store.get_log_stream(group, stream) is None:
            raise log_stream_not_found()
        return info


def _check_stream_name(stream: str) -> None:
    if ":" in stream or "*" in stream:
        raise LogsInvalidParameter(f"Log stream name {stream!r} is invalid: it may not hold ':' or '*'")


def _check_batch(events: Sequence[tuple[int, str]]) -> None:
    if len(events) > MAX_BATCH_EVENTS:
        raise LogsInvalidParameter(f"A batch holds at most {MAX_BATCH_EVENTS} log events; got {len(events)}.")
    size = 0
    for i, (ts, message) in enumerate(events):
        if i and ts < events[i - 1][0]:
            raise LogsInvalidParameter("Log events in a single PutLogEvents request must be in chronological order.")
        event_size = len(message.encode()) + EVENT_OVERHEAD
        if event_size > MAX_EVENT_BYTES:
            raise LogsInvalidParameter(f"Log event too large: {event_size} bytes exceeds limit of {MAX_EVENT_BYTES}")
        size += event_size
    if size > MAX_BATCH_BYTES:
        raise LogsInvalidParameter(f"Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}")
    if events and events[-1][0] - events[0][0] > MAX_SPAN_MS:
        raise LogsInvalidParameter(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
        )


def _string_key(token: str) -> str:
    key = decode_key(token)
    if not isinstance(key, str):
        raise invalid_token()
    return key
