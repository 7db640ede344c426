"""What every store promises. A PostgreSQL implementation must satisfy the same contracts.

All methods are thread-safe and synchronous. A write method returns only after its change is
committed: it survives `kill -9` of the server. Writes from many threads are group-committed, so
concurrent writers share one commit instead of queueing for their own. Methods whose name ends in
`_nowait` enqueue the write and return a `concurrent.futures.Future` resolved once it is committed;
the hot invoke path uses them so a response is never held up by metering.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from lamina.model.function import FunctionRecord
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


@dataclass(frozen=True)
class CostRow:
    function: str
    requests: int
    billed_ms: int
    gb_seconds: float


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
        """(event id, stream name, event) in (timestamp, id) order; `after_id` pages forward."""

    def list_log_streams(self, group: str) -> list[LogStreamInfo]:
        """Streams of a group, most recent event first."""

    def delete_log_group(self, group: str) -> bool: ...


class CodeStore(Protocol):
    """Code packages, content-addressed by the hex SHA-256 of the zip."""

    def put_zip(self, data: bytes) -> str:
        """Store a zip durably; returns its hex SHA-256. Idempotent."""

    def zip_path(self, sha256_hex: str): ...  # -> pathlib.Path of the stored zip

    def unpacked(self, sha256_hex: str): ...  # -> pathlib.Path of the unpacked, read-only tree

    def delete_unreferenced(self, referenced: set[str]) -> int: ...


class Store(FunctionStore, InvocationStore, LogStore, Protocol):
    """The embedded store implements all of them in one SQLite database."""

    def close(self) -> None: ...
