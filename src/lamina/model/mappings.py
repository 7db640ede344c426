"""Typed records of event source mappings: the mapping's settings, its lifecycle, checkpoints and
the batches kept after going to OnFailure. Ranges and defaults: ../shared/reference/aws-lambda.md §4."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 10_000
MAX_WINDOW_S = 300
MAX_PARALLELIZATION = 10
MAX_RETRY_ATTEMPTS = 10_000
MAX_RECORD_AGE_S = 604_800
MIN_RECORD_AGE_S = 60  # AWS's minimum besides -1 (Settings can lower it for tests)
MAX_TUMBLING_S = 900
MAX_FILTERS = 5
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


class MappingState(enum.StrEnum):
    """`State` of an EventSourceMappingConfiguration. The transitional ones last until the engine
    has applied the change (milliseconds here); Update/Delete meanwhile is ResourceInUseException."""

    CREATING = "Creating"
    ENABLING = "Enabling"
    ENABLED = "Enabled"
    DISABLING = "Disabling"
    DISABLED = "Disabled"
    UPDATING = "Updating"
    DELETING = "Deleting"

    @property
    def transitional(self) -> bool:
        return self not in (MappingState.ENABLED, MappingState.DISABLED)


class StartingPosition(enum.StrEnum):
    TRIM_HORIZON = "TRIM_HORIZON"
    LATEST = "LATEST"
    AT_TIMESTAMP = "AT_TIMESTAMP"


class FailureCondition(enum.StrEnum):
    """`requestContext.condition` of an on-failure record for a stream batch."""

    RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
    RECORD_AGE_EXCEEDED = "RecordAgeExceeded"  # LocalStack's name; unconfirmed in AWS docs (§7)


@dataclass(frozen=True)
class MappingConfig:
    """One event source mapping. `function` is the bare name; `qualifier` what FunctionName named
    (None: unqualified, i.e. $LATEST). Settings not given take AWS's defaults."""

    uuid: str
    function: str
    qualifier: str | None
    source_arn: str
    starting_position: StartingPosition
    starting_timestamp: float | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    window_s: int = 0  # MaximumBatchingWindowInSeconds
    parallelization: int = 1
    bisect: bool = False
    max_retries: int = -1  # -1: until the record expires
    max_record_age_s: int = -1  # -1: no limit but retention
    tumbling_window_s: int = 0
    report_item_failures: bool = False
    filters: tuple[str, ...] = ()  # FilterCriteria.Filters[].Pattern, verbatim
    on_failure: str | None = None  # DestinationConfig.OnFailure.Destination
    enabled: bool = True
    state: MappingState = MappingState.CREATING
    state_reason: str = "USER_INITIATED"
    last_modified: float = 0.0  # epoch seconds
    tags: dict[str, str] = field(default_factory=dict, compare=False)

    def with_changes(self, **changes: Any) -> MappingConfig:
        return replace(self, **changes)

    def to_json(self) -> str:
        data = asdict(self)
        data["filters"] = list(self.filters)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> MappingConfig:
        data = json.loads(text)
        data["starting_position"] = StartingPosition(data["starting_position"])
        data["state"] = MappingState(data["state"])
        data["filters"] = tuple(data.get("filters") or ())
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Checkpoint:
    """How far a mapping has processed one shard: every record up to `position` is decided
    (processed, filtered out, or delivered to OnFailure). `finished`: a closed shard done."""

    uuid: str
    shard: str
    position: str
    finished: bool = False
    updated: float = 0.0
    # What lies beyond `position`, as JSON: with ParallelizationFactor 1, the open tumbling window
    # [start_ms, end_ms, state]; above 1, the lanes' state (sources/mappings/parallel.py LaneState).
    window: str | None = None


@dataclass(frozen=True)
class FailedBatch:
    """A batch that went to OnFailure, kept with its event for replay (beyond AWS)."""

    id: int
    uuid: str
    shard: str
    condition: str
    record: str  # the on-failure record as delivered (JSON)
    payload: bytes  # the event the function was invoked with
    failed: float
    replayed: float | None = None
