"""What every store promises. A PostgreSQL implementation must satisfy the same contracts.

All methods are thread-safe and synchronous. A write method returns only after its change is
committed: it survives `kill -9` of the server. Writes from many threads are group-committed, so
concurrent writers share one commit instead of queueing for their own. Methods whose name ends in
`_nowait` enqueue the write and return a future resolved once it is committed: called on an event
loop's thread, an `asyncio.Future` of that loop (no thread hand-off per write), elsewhere a
`concurrent.futures.Future`; `await asyncio.wrap_future(f)` serves both. The hot invoke path uses
them so a response is never held up by metering.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from lamina.errors import (
    InvalidParameterValue,
    LogResourceExists,
    LogResourceNotFound,
    PreconditionFailed,
    ResourceConflict,
    ResourceNotFound,
)
from lamina.model.function import LATEST, AliasRecord, FunctionConfig, FunctionRecord
from lamina.model.invocation import InvocationRecord


@dataclass(frozen=True)
class LogEvent:
    timestamp_ms: int
    message: str  # one line, without its trailing newline
    ingestion_ms: int = 0


@dataclass(frozen=True)
class LogStreamInfo:
    group: str
    name: str
    created_ms: int
    first_event_ms: int | None
    last_event_ms: int | None
    stored_bytes: int
    last_ingestion_ms: int | None = None


@dataclass(frozen=True)
class LogGroupInfo:
    name: str
    created_ms: int
    retention_days: int | None  # None: events never expire
    stored_bytes: int


@dataclass(frozen=True)
class CostRow:
    function: str
    requests: int
    billed_ms: int
    gb_seconds: float


# --- errors every implementation raises, worded as AWS words them ----------------------------


def function_exists(name: str) -> ResourceConflict:
    return ResourceConflict(f"Function already exist: {name}")


def function_not_found(name: str) -> ResourceNotFound:
    return ResourceNotFound(f"Function not found: {name}")


def revision_mismatch() -> PreconditionFailed:
    return PreconditionFailed(
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
    )


def log_group_not_found() -> LogResourceNotFound:
    return LogResourceNotFound("The specified log group does not exist.")


def log_stream_not_found() -> LogResourceNotFound:
    return LogResourceNotFound("The specified log stream does not exist.")


def log_group_exists() -> LogResourceExists:
    return LogResourceExists("The specified log group already exists")


def log_stream_exists() -> LogResourceExists:
    return LogResourceExists("The specified log stream already exists")


def check_latest(record: FunctionRecord) -> None:
    """A FunctionRecord holds its function's $LATEST config; published versions come later."""
    if record.config.version != LATEST:
        raise InvalidParameterValue(f"a function record holds the {LATEST} config, not version {record.config.version}")


class FunctionStore(Protocol):
    def create_function(self, record: FunctionRecord) -> None:
        """Insert a new function; raises ResourceConflict if the name is taken."""

    def update_function(self, record: FunctionRecord, expected_revision: str | None = None) -> None:
        """Replace a function's record; raises ResourceNotFound if absent and PreconditionFailed
        if `expected_revision` is given and differs from the stored config's revision_id."""

    def get_function(self, name: str) -> FunctionRecord | None: ...

    def delete_function(self, name: str) -> bool:
        """Delete the function and everything it owns; False if it did not exist."""

    def list_functions(self, after: str | None = None, limit: int = 50) -> list[FunctionRecord]:
        """Functions ordered by name, starting after the name `after`."""


class VersionStore(Protocol):
    """Published versions (immutable configs numbered 1, 2, ...) and aliases of a function."""

    def create_version(self, config: FunctionConfig, latest_revision: str) -> None:
        """Add published version `config.version` (a number above every number the function has
        had, so numbers are never reused). In the same transaction: PreconditionFailed if $LATEST's
        revision is no longer `latest_revision`, ResourceConflict if the number is not the next."""

    def get_version(self, name: str, version: str) -> FunctionConfig | None: ...

    def list_versions(self, name: str) -> list[FunctionConfig]:
        """$LATEST first, then published versions in ascending number."""

    def last_version(self, name: str) -> int:
        """The highest version number ever published (0 if none), deleted ones included."""

    def delete_version(self, name: str, version: str) -> bool: ...

    def put_alias(self, alias: AliasRecord, expected_revision: str | None) -> None:
        """Create (`expected_revision` None: ResourceConflict if it exists) or replace (the stored
        alias must have `expected_revision`: PreconditionFailed otherwise; ResourceNotFound if gone)."""

    def get_alias(self, name: str, alias: str) -> AliasRecord | None: ...

    def list_aliases(self, name: str) -> list[AliasRecord]:
        """Ordered by alias name."""

    def delete_alias(self, name: str, alias: str) -> bool: ...


def alias_exists(arn: str) -> ResourceConflict:
    return ResourceConflict(f"Alias already exists: {arn}")


def alias_not_found(arn: str) -> ResourceNotFound:
    return ResourceNotFound(f"Cannot find alias arn: {arn}")


class InvocationStore(Protocol):
    def record_invocation_nowait(self, record: InvocationRecord) -> Future[None]: ...

    def list_invocations(
        self, function: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[InvocationRecord]:
        """Newest first."""

    def cost_by_function(self, since: float | None = None) -> list[CostRow]: ...


class LogStore(Protocol):
    def append_logs_nowait(self, group: str, stream: str, events: Sequence[LogEvent]) -> Future[None]:
        """Append events to a stream, creating the group and stream as needed."""

    def get_log_events(
        self,
        group: str,
        stream: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_id: int = 0,
        limit: int = 10_000,
    ) -> list[tuple[int, str, LogEvent]]:
        """(event id, stream name, event) in (timestamp, id) order; `after_id` pages forward.

        All streams of the group when `stream` is None; `start_ms` is inclusive, `end_ms`
        exclusive (GetLogEvents' rule). Paging is by id, which is commit order: a page holds the
        `limit` first-committed matching events with an id above `after_id`, sorted by
        (timestamp, id); continue from the page's highest id. So every event comes exactly once
        over the pages, and a follower polling from the highest id it has seen misses nothing
        committed later. Across pages, timestamp order holds as far as events were committed in
        timestamp order (always, within a stream that one environment writes). Ids are never
        reused. An event gets its ingestion time when committed unless it carries one."""

    def tail_log_events(self, group: str, limit: int = 200) -> list[tuple[int, str, LogEvent]]:
        """The group's `limit` last-committed events, in (timestamp, id) order."""

    def last_log_event_id(self) -> int:
        """The highest event id assigned so far in any group (0 if none): a cursor for "from now on"."""

    def list_log_streams(self, group: str) -> list[LogStreamInfo]:
        """Streams of a group, most recent event first; streams without events last, ties by name."""

    def delete_log_group(self, group: str) -> bool: ...

    # The CloudWatch Logs API's explicit operations (lamina.logs): groups and streams made and
    # removed by name, retention, and reads in (timestamp, id) order for time windows.

    def create_log_group(self, group: str) -> None:
        """Create an empty group; raises `log_group_exists()` if it is there."""

    def create_log_stream(self, group: str, stream: str) -> None:
        """Create an empty stream; raises `log_group_not_found()` / `log_stream_exists()`."""

    def delete_log_stream(self, group: str, stream: str) -> None:
        """Delete a stream and its events (the group's stored bytes drop by the stream's);
        raises `log_group_not_found()` / `log_stream_not_found()`."""

    def get_log_group(self, group: str) -> LogGroupInfo | None: ...

    def get_log_stream(self, group: str, stream: str) -> LogStreamInfo | None: ...

    def describe_log_groups(
        self, prefix: str | None = None, contains: str | None = None, after: str | None = None, limit: int = 50
    ) -> list[LogGroupInfo]:
        """Groups by name: those starting with `prefix`, or containing `contains` (case-sensitive,
        as logGroupNamePattern), named after `after` (a page's last name continues the listing),
        at most `limit`."""

    def set_log_retention(self, group: str, days: int | None) -> None:
        """Set (None: remove) a group's retention; raises `log_group_not_found()`."""

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
        """(event id, stream name, event) in (timestamp, id) order, or the reverse when
        `descending`; paged by the key: `after` / `before` are exclusive (timestamp, id) bounds.

        All the group's streams when `streams` is None (unknown names select nothing); `start_ms`
        inclusive, `end_ms` exclusive. Unlike `get_log_events`' id paging, an event committed
        later with a timestamp before the key is not on later pages: this is the order the Logs
        API's readers (GetLogEvents, FilterLogEvents) page in."""

    def delete_log_events_before(self, group: str, cutoff_ms: int, batch: int = 5_000) -> int:
        """Delete up to `batch` of the group's oldest events stamped before `cutoff_ms`, in one
        commit, keeping streams' and the group's stored bytes right; returns how many. Callers
        loop until it returns less than `batch`, so the writer is never held for long."""

    def groups_with_retention(self) -> list[LogGroupInfo]:
        """Groups that have a retention policy."""


class CodeStore(Protocol):
    """Code packages, content-addressed by the hex SHA-256 of the zip."""

    def validate_zip(self, data: bytes, operation: str = "CreateFunction"):  # -> store.code.CodeDigest
        """Read every entry and check the limits; raises with Lambda's messages. Stores nothing."""

    def put_zip(self, data: bytes) -> str:
        """Store a zip durably; returns its hex SHA-256. Idempotent."""

    def zip_path(self, sha256_hex: str): ...  # -> pathlib.Path of the stored zip

    def unpacked(self, sha256_hex: str): ...  # -> pathlib.Path of the unpacked, read-only tree

    def delete_unreferenced(self, referenced: set[str]) -> int:
        """Remove packages whose hex SHA-256 is not in `referenced`; returns how many. An
        implementation may keep packages put recently (an upload whose function record is not
        written yet must not be collected)."""


class Store(FunctionStore, VersionStore, InvocationStore, LogStore, Protocol):
    """The embedded store implements all of them in one SQLite database."""

    def close(self) -> None: ...
