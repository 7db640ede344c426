"""MemoryStore: the in-memory twin of SqliteStore, for unit tests of the layers above.

Same contract, same ordering, same errors (tests/unit/store runs one suite against both); no
durability. Records are frozen, so they are kept as given. One lock serialises everything, and
`_nowait` writes are applied before they return, so their futures are already done.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from lamina.errors import ResourceConflict
from lamina.model.function import LATEST, AliasRecord, FunctionConfig, FunctionRecord
from lamina.model.invocation import InvocationRecord
from lamina.store.base import (
    CostRow,
    LogEvent,
    LogGroupInfo,
    LogStreamInfo,
    alias_exists,
    alias_not_found,
    check_latest,
    function_exists,
    function_not_found,
    log_group_exists,
    log_group_not_found,
    log_stream_exists,
    log_stream_not_found,
    revision_mismatch,
)
from lamina.store.memory_concurrency import MemoryConcurrencyStore


@dataclass
class _Group:
    created_ms: int
    streams: dict[str, LogStreamInfo] = field(default_factory=dict)
    events: list[tuple[int, str, LogEvent]] = field(default_factory=list)  # in id order
    retention_days: int | None = None

    def info(self, name: str) -> LogGroupInfo:
        stored = sum(s.stored_bytes for s in self.streams.values())
        return LogGroupInfo(name, self.created_ms, self.retention_days, stored)


class MemoryStore(MemoryConcurrencyStore):
    """Implements `lamina.store.base.Store`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        MemoryConcurrencyStore.__init__(self)
        self._functions: dict[str, FunctionRecord] = {}
        self._versions: dict[str, dict[str, FunctionConfig]] = {}  # published versions by function
        self._last_version: dict[str, int] = {}
        self._aliases: dict[str, dict[str, AliasRecord]] = {}
        self._invocations: list[InvocationRecord] = []  # in insertion order
        self._groups: dict[str, _Group] = {}
        self._event_ids = 0  # like AUTOINCREMENT: never reused

    # --- FunctionStore -----------------------------------------------------------------------

    def create_function(self, record: FunctionRecord) -> None:
        check_latest(record)
        with self._lock:
            if record.config.name in self._functions:
                raise function_exists(record.config.name)
            self._functions[record.config.name] = record

    def update_function(self, record: FunctionRecord, expected_revision: str | None = None) -> None:
        check_latest(record)
        name = record.config.name
        with self._lock:
            current = self._functions.get(name)
            if current is None:
                raise function_not_found(name)
            if expected_revision is not None and current.config.revision_id != expected_revision:
                raise revision_mismatch()
            self._functions[name] = record

    def get_function(self, name: str) -> FunctionRecord | None:
        with self._lock:
            return self._functions.get(name)

    def delete_function(self, name: str) -> bool:
        with self._lock:
            self._versions.pop(name, None)
            self._aliases.pop(name, None)
            self._last_version.pop(name, None)
            self._drop_concurrency(name)
            return self._functions.pop(name, None) is not None

    def list_functions(self, after: str | None = None, limit: int = 50) -> list[FunctionRecord]:
        with self._lock:
            names = sorted(n for n in self._functions if n > (after or ""))[: max(0, limit)]
            return [self._functions[n] for n in names]

    # --- VersionStore ------------------------------------------------------------------------

    def create_version(self, config: FunctionConfig, latest_revision: str) -> None:
        name, number = config.name, int(config.version)
        with self._lock:
            current = self._functions.get(name)
            if current is None:
                raise function_not_found(name)
            if current.config.revision_id != latest_revision:
                raise revision_mismatch()
            last = self._last_version.get(name, 0)
            if number != last + 1:
                raise ResourceConflict(f"Version {number} of {name} cannot be published: next is {last + 1}")
            self._last_version[name] = number
            self._versions.setdefault(name, {})[config.version] = config

    def get_version(self, name: str, version: str) -> FunctionConfig | None:
        with self._lock:
            if version == LATEST:
                record = self._functions.get(name)
                return record.config if record else None
            return self._versions.get(name, {}).get(version)

    def list_versions(self, name: str) -> list[FunctionConfig]:
        with self._lock:
            record = self._functions.get(name)
            if record is None:
                return []
            published = sorted(self._versions.get(name, {}).values(), key=lambda c: int(c.version))
            return [record.config, *published]

    def last_version(self, name: str) -> int:
        with self._lock:
            return self._last_version.get(name, 0)

    def delete_version(self, name: str, version: str) -> bool:
        with self._lock:
            return self._versions.get(name, {}).pop(version, None) is not None

    def put_alias(self, alias: AliasRecord, expected_revision: str | None) -> None:
        key = f"{alias.function}:{alias.name}"
        with self._lock:
            if alias.function not in self._functions:
                raise function_not_found(alias.function)
            aliases = self._aliases.setdefault(alias.function, {})
            current = aliases.get(alias.name)
            if expected_revision is None and current is not None:
                raise alias_exists(key)
            if expected_revision is not None:
                if current is None:
                    raise alias_not_found(key)
                if current.revision_id != expected_revision:
                    raise revision_mismatch()
            aliases[alias.name] = alias

    def get_alias(self, name: str, alias: str) -> AliasRecord | None:
        with self._lock:
            return self._aliases.get(name, {}).get(alias)

    def list_aliases(self, name: str) -> list[AliasRecord]:
        with self._lock:
            return [a for _, a in sorted(self._aliases.get(name, {}).items())]

    def delete_alias(self, name: str, alias: str) -> bool:
        with self._lock:
            return self._aliases.get(name, {}).pop(alias, None) is not None

    # --- InvocationStore ---------------------------------------------------------------------

    def record_invocation_nowait(self, record: InvocationRecord) -> Future[None]:
        with self._lock:
            self._invocations.append(record)
        return _done()

    def list_invocations(
        self, function: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[InvocationRecord]:
        with self._lock:
            rows = list(enumerate(self._filter(function, since)))
        rows.sort(key=lambda pair: (pair[1].start, pair[0]), reverse=True)
        return [record for _, record in rows[: max(0, limit)]]

    def cost_by_function(self, since: float | None = None) -> list[CostRow]:
        totals: dict[str, list[int]] = {}
        with self._lock:
            for r in self._filter(None, since):
                t = totals.setdefault(r.function, [0, 0, 0])
                t[0] += 1
                t[1] += r.billed_ms
                t[2] += r.memory_size * r.billed_ms
        return [CostRow(fn, n, billed, mb_ms / 1_024_000) for fn, (n, billed, mb_ms) in sorted(totals.items())]

    def _filter(self, function: str | None, since: float | None) -> list[InvocationRecord]:
        return [
            r
            for r in self._invocations
            if (function is None or r.function == function) and (since is None or r.start >= since)
        ]

    # --- LogStore ----------------------------------------------------------------------------

    def append_logs_nowait(self, group: str, stream: str, events: Sequence[LogEvent]) -> Future[None]:
        now = int(time.time() * 1000)
        with self._lock:
            g = self._groups.setdefault(group, _Group(created_ms=now))
            info = g.streams.setdefault(stream, LogStreamInfo(group, stream, now, None, None, 0))
            for event in events:
                if not event.ingestion_ms:
                    event = dataclasses.replace(event, ingestion_ms=now)
                self._event_ids += 1
                g.events.append((self._event_ids, stream, event))
            if events:
                stamps = [e.timestamp_ms for e in events]
                if info.first_event_ms is not None:
                    stamps += [info.first_event_ms, info.last_event_ms]  # type: ignore[list-item]
                g.streams[stream] = dataclasses.replace(
                    info,
                    first_event_ms=min(stamps),
                    last_event_ms=max(stamps),
                    stored_bytes=info.stored_bytes + sum(len(e.message.encode()) for e in events),
                    last_ingestion_ms=now,
                )
        return _done()

    def get_log_events(
        self,
        group: str,
        stream: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_id: int = 0,
        limit: int = 10_000,
    ) -> list[tuple[int, str, LogEvent]]:
        with self._lock:
            g = self._groups.get(group)
            rows = [
                row
                for row in (g.events if g else [])
                if row[0] > after_id
                and (stream is None or row[1] == stream)
                and (start_ms is None or row[2].timestamp_ms >= start_ms)
                and (end_ms is None or row[2].timestamp_ms < end_ms)
            ]
        return _by_time(rows[: max(0, limit)])

    def tail_log_events(self, group: str, limit: int = 200) -> list[tuple[int, str, LogEvent]]:
        with self._lock:
            g = self._groups.get(group)
            rows = g.events[len(g.events) - max(0, limit) :] if g else []
        return _by_time(rows)

    def last_log_event_id(self) -> int:
        with self._lock:
            return self._event_ids

    def list_log_streams(self, group: str) -> list[LogStreamInfo]:
        with self._lock:
            g = self._groups.get(group)
            infos = list(g.streams.values()) if g else []
        # Most recent event first; streams without events last; then by name.
        infos.sort(key=lambda i: i.name)
        infos.sort(key=lambda i: (i.last_event_ms is None, -(i.last_event_ms or 0)))
        return infos

    def delete_log_group(self, group: str) -> bool:
        with self._lock:
            g = self._groups.pop(group, None)
            return g is not None

    def create_log_group(self, group: str) -> None:
        with self._lock:
            if group in self._groups:
                raise log_group_exists()
            self._groups[group] = _Group(created_ms=int(time.time() * 1000))

    def create_log_stream(self, group: str, stream: str) -> None:
        with self._lock:
            g = self._group(group)
            if stream in g.streams:
                raise log_stream_exists()
            g.streams[stream] = LogStreamInfo(group, stream, int(time.time() * 1000), None, None, 0)

    def delete_log_stream(self, group: str, stream: str) -> None:
        with self._lock:
            g = self._group(group)
            if g.streams.pop(stream, None) is None:
                raise log_stream_not_found()
            g.events = [row for row in g.events if row[1] != stream]

    def get_log_group(self, group: str) -> LogGroupInfo | None:
        with self._lock:
            g = self._groups.get(group)
            return g.info(group) if g else None

    def get_log_stream(self, group: str, stream: str) -> LogStreamInfo | None:
        with self._lock:
            g = self._groups.get(group)
            return g.streams.get(stream) if g else None

    def describe_log_groups(
        self, prefix: str | None = None, contains: str | None = None, after: str | None = None, limit: int = 50
    ) -> list[LogGroupInfo]:
        with self._lock:
            names = sorted(
                name
                for name in self._groups
                if (not prefix or name.startswith(prefix))
                and (not contains or contains in name)
                and (after is None or name > after)
            )
            return [self._groups[name].info(name) for name in names[: max(0, limit)]]

    def set_log_retention(self, group: str, days: int | None) -> None:
        with self._lock:
            self._group(group).retention_days = days

    def groups_with_retention(self) -> list[LogGroupInfo]:
        with self._lock:
            return [g.info(name) for name, g in self._groups.items() if g.retention_days is not None]

    def log_events_by_time(
        self,
        group: str,
        streams: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after: tuple[int, int] | None = None,
        before: tuple[int, int] | None = None,
        limit: int = 10_000,
        descending: bool = False,
    ) -> list[tuple[int, str, LogEvent]]:
        wanted = None if streams is None else set(streams)
        with self._lock:
            g = self._groups.get(group)
            rows = [
                row
                for row in (g.events if g else [])
                if (wanted is None or row[1] in wanted)
                and (start_ms is None or row[2].timestamp_ms >= start_ms)
                and (end_ms is None or row[2].timestamp_ms < end_ms)
                and (after is None or (row[2].timestamp_ms, row[0]) > after)
                and (before is None or (row[2].timestamp_ms, row[0]) < before)
            ]
        rows.sort(key=lambda row: (row[2].timestamp_ms, row[0]), reverse=descending)
        return rows[: max(0, limit)]

    def delete_log_events_before(self, group: str, cutoff_ms: int, batch: int = 5_000) -> int:
        with self._lock:
            g = self._groups.get(group)
            if g is None:
                return 0
            old = sorted((row for row in g.events if row[2].timestamp_ms < cutoff_ms), key=lambda r: r[2].timestamp_ms)
            doomed = {row[0] for row in old[:batch]}
            freed: dict[str, int] = {}
            for id_, stream, event in g.events:
                if id_ in doomed:
                    freed[stream] = freed.get(stream, 0) + len(event.message.encode())
            g.events = [row for row in g.events if row[0] not in doomed]
            for stream, size in freed.items():
                info = g.streams[stream]
                g.streams[stream] = dataclasses.replace(info, stored_bytes=max(0, info.stored_bytes - size))
            return len(doomed)

    def _group(self, group: str) -> _Group:
        g = self._groups.get(group)
        if g is None:
            raise log_group_not_found()
        return g

    def close(self) -> None:
        pass


def _by_time(rows: list[tuple[int, str, LogEvent]]) -> list[tuple[int, str, LogEvent]]:
    return sorted(rows, key=lambda row: (row[2].timestamp_ms, row[0]))


def _done() -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future
