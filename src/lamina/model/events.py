"""Records of asynchronous invocation: queued events and per-qualifier EventInvokeConfigs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_MAX_RETRIES = 2  # AWS: function errors are retried twice
DEFAULT_MAX_AGE = 21_600  # AWS: events are kept for up to 6 hours
MIN_MAX_AGE = 60
MAX_RETRIES_LIMIT = 2


class EventState(enum.StrEnum):
    """Where an event is. IN_FLIGHT lives in memory only: the stored row stays QUEUED while the
    function runs, so a crash re-queues it for free (at-least-once) without a write per claim.
    A DONE event is deleted, not kept."""

    QUEUED = "queued"
    IN_FLIGHT = "in-flight"
    FAILED = "failed"  # kept for `lamina events failed` / redrive
    DONE = "done"


class Condition(enum.StrEnum):
    """requestContext.condition of a destination record."""

    SUCCESS = "Success"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"


@dataclass(frozen=True)
class QueuedEvent:
    """One Event invocation. `id` is the request id; it stays the same across retries (as AWS)."""

    id: str
    function: str
    qualifier: str | None  # as invoked: None (unqualified), "$LATEST", a version or an alias
    payload: bytes
    enqueued: float  # epoch seconds; the event's age counts from here
    attempts: int = 0  # times the function ran it (approximateInvokeCount)
    next_attempt: float = 0.0  # epoch seconds; not before this
    state: EventState = EventState.QUEUED
    last_error: str | None = None
    condition: Condition | None = None  # set when it failed for good
    throttles: int = 0  # consecutive throttles/system errors: the exponent of the backoff

    def with_changes(self, **changes: Any) -> QueuedEvent:
        return replace(self, **changes)


@dataclass(frozen=True)
class EventInvokeConfig:
    """FunctionEventInvokeConfig for one (function, qualifier); None = the AWS default applies."""

    function: str
    qualifier: str  # "$LATEST" for an unqualified Put, as AWS
    last_modified: float  # epoch seconds
    maximum_retry_attempts: int | None = None
    maximum_event_age: int | None = None
    on_success: str | None = None
    on_failure: str | None = None

    @property
    def retries(self) -> int:
        return DEFAULT_MAX_RETRIES if self.maximum_retry_attempts is None else self.maximum_retry_attempts

    @property
    def max_age(self) -> int:
        return DEFAULT_MAX_AGE if self.maximum_event_age is None else self.maximum_event_age

    def with_changes(self, **changes: Any) -> EventInvokeConfig:
        return replace(self, **changes)


@dataclass(frozen=True)
class QueueStats:
    """What `lamina events NAME` shows for one function."""

    queued: int = 0  # waiting (including those waiting for a retry)
    in_retry: int = 0  # queued after at least one attempt or throttle
    oldest_enqueued: float | None = None
    failed: int = 0
