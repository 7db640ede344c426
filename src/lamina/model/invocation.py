"""Invocations: what goes into an environment and what comes out."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class InvocationType(enum.StrEnum):
    REQUEST_RESPONSE = "RequestResponse"
    EVENT = "Event"
    DRY_RUN = "DryRun"


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    ERROR = "error"  # the handler raised or returned an error (function error, 200 + Unhandled)
    TIMEOUT = "timeout"
    CRASH = "crash"  # the process exited or was killed
    OUT_OF_MEMORY = "oom"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class InvokeRequest:
    """One call of a function as the edge hands it to the invoke service."""

    function: str  # name, full or partial ARN, optionally qualified
    payload: bytes = b""
    qualifier: str | None = None
    invocation_type: InvocationType = InvocationType.REQUEST_RESPONSE
    tail_log: bool = False
    client_context: str | None = None  # base64 JSON, as sent in X-Amz-Client-Context
    request_id: str | None = None  # the API request's id, which Lambda reuses as the invocation's
    # The payload is JSON Lamina built itself (an event source mapping's batch): not parsed again
    # to check it (for a 6 MB batch that parse cost as much as building it).
    trusted_json: bool = False


@dataclass(frozen=True)
class InvokeResult:
    """What the caller of Invoke sees."""

    request_id: str
    status: int
    payload: bytes
    executed_version: str
    function_error: str | None = None  # "Unhandled" when the function failed
    log_tail: str | None = None  # base64 of the last 4 KB of the invocation's log


@dataclass(frozen=True)
class InvocationRecord:
    """The durable meter row for one invocation (see invoke/metering.py for the arithmetic)."""

    request_id: str
    function: str
    version: str
    start: float  # epoch seconds
    duration_ms: float
    billed_ms: int
    memory_size: int
    max_memory_used_mb: int
    cold: bool
    init_duration_ms: float | None
    outcome: Outcome
    error_type: str | None = None
    log_stream: str = ""

    @property
    def gb_seconds(self) -> float:
        return self.memory_size / 1024 * self.billed_ms / 1000
