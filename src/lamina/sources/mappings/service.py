"""The control plane of event source mappings: validation with Lambda's errors, the durable
record, and state transitions handed to the engine. Blocking methods (call from worker threads).

Create writes the mapping in state Creating with a checkpoint for every shard the stream has now
(so StartingPosition LATEST means "after the records present at create time", however soon the
engine starts), then the engine settles it to Enabled (or Disabled). Update writes Updating
(Enabling / Disabling when `Enabled` flips), Delete writes Deleting; while a mapping is in one of
these transitional states, Update and Delete are ResourceInUseException, as on AWS.
"""

from __future__ import annotations

import asyncio
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from lamina.errors import (
    InvalidParameterValue,
    ResourceConflict,
    ResourceInUse,
    ResourceNotFound,
)
from lamina.functions.names import FunctionRef, parse_function_ref
from lamina.functions.service import FunctionService
from lamina.invoke.asynchronous.destinations import ON_FAILURE, Destinations
from lamina.model.mappings import (
    MAX_FILTERS,
    REPORT_BATCH_ITEM_FAILURES,
    Checkpoint,
    FailedBatch,
    MappingConfig,
    MappingState,
    StartingPosition,
)
from lamina.sources.mappings.engine import MappingEngine
from lamina.sources.mappings.filters import parse_filters
from lamina.sources.mappings.source import Source, SourceGone
from lamina.store.mappings import MappingStore

PAGE = 100
UNSET: Any = object()
_RANGES = {  # (min, max) as Lambda enforces them for stream sources
    "batch_size": ("BatchSize", 1, 10_000),
    "window_s": ("MaximumBatchingWindowInSeconds", 0, 300),
    "parallelization": ("ParallelizationFactor", 1, 10),
    "max_retries": ("MaximumRetryAttempts", -1, 10_000),
    "max_record_age_s": ("MaximumRecordAgeInSeconds", -1, 604_800),
    "tumbling_window_s": ("TumblingWindowInSeconds", 0, 900),
}


@dataclass(frozen=True)
class MappingChange:
    """The settings an Update (or a Create, with the required ones) names; UNSET = left as is."""

    function_name: Any = UNSET
    enabled: Any = UNSET
    batch_size: Any = UNSET
    window_s: Any = UNSET
    parallelization: Any = UNSET
    bisect: Any = UNSET
    max_retries: Any = UNSET
    max_record_age_s: Any = UNSET
    tumbling_window_s: Any = UNSET
    response_types: Any = UNSET  # list of FunctionResponseTypes
    filters: Any = UNSET  # list of pattern strings
    on_failure: Any = UNSET  # "" clears
    on_success: Any = UNSET
    tags: dict[str, str] = field(default_factory=dict)


class MappingService:
    def __init__(
        self,
        store: MappingStore,
        functions: FunctionService,
        engine: MappingEngine,
        sources: Callable[[str], Source],
        destinations: Destinations,
        min_record_age_s: int = 60,
    ) -> None:
        self.store = store
        self.functions = functions
        self.engine = engine
        self.sources = sources
        self.destinations = destinations
        self.min_record_age_s = min_record_age_s

    def arn(self, uuid: str) -> str:
        arns = self.functions.arns
        return f"arn:aws:lambda:{arns.region}:{arns.account_id}:event-source-mapping:{uuid}"

    def function_arn(self, config: MappingConfig) -> str:
        return self.functions.arns.function(config.function, config.qualifier)

    # -- operations -------------------------------------------------------------------------

    def create(
        self,
        source_arn: str | None,
        starting: str | None,
        timestamp: float | None,
        change: MappingChange,
    ) -> MappingConfig:
        if not source_arn:
            raise InvalidParameterValue("Unrecognized event source, must be kinesis, dynamodb stream or sqs.")
        ref = self._function(change.function_name)
        source = self._source(source_arn)
        if starting is None:
            raise InvalidParameterValue("StartingPosition is required for the event source " + source_arn)
        try:
            position = StartingPosition(starting)
        except ValueError:
            raise InvalidParameterValue(f"Unsupported starting position: {starting}") from None
        if position is StartingPosition.AT_TIMESTAMP:
            if timestamp is None:
                raise InvalidParameterValue("StartingPositionTimestamp must be set for AT_TIMESTAMP.")
            if timestamp > time.time() + 1:
                raise InvalidParameterValue("StartingPositionTimestamp cannot be in the future.")
        elif timestamp is not None:
            raise InvalidParameterValue("StartingPositionTimestamp is only allowed with AT_TIMESTAMP.")
        draft = MappingConfig(
            uuid=str(uuidlib.uuid4()),
            function=ref.name,
            qualifier=ref.qualifier,
            source_arn=source_arn,
            starting_position=position,
            starting_timestamp=timestamp if position is StartingPosition.AT_TIMESTAMP else None,
            state=MappingState.CREATING,
            state_reason="USER_INITIATED",
            last_modified=time.time(),
        )
        config = self._apply(draft, replace(change, function_name=UNSET))
        with self.engine.lock:
            for other in self.store.list_mappings(ref.name, source_arn):
                if other.qualifier == ref.qualifier:
                    raise ResourceConflict(
                        f"The event source arn ({source_arn}) and function ({self._function_text(other)}) provided"
                        f" mapping already exists. Please update or delete the existing mapping with UUID {other.uuid}"
                    )
            try:
                shards = source.shards()
                checkpoints = [
                    Checkpoint(config.uuid, s.id, source.start_position(s.id, position, timestamp)) for s in shards
                ]
            except SourceGone:
                raise InvalidParameterValue(f"Stream not found: {source_arn}") from None
            self.store.put_mapping(config, checkpoints)
        self.engine.changed(config.uuid)
        return config

    def get(self, uuid: str) -> MappingConfig:
        config = self.store.get_mapping(uuid)
        if config is None:
            raise ResourceNotFound("The resource you requested does not exist.")
        return config

    def list(
        self, function_name: str | None, source_arn: str | None, marker: str | None, max_items: int | None
    ) -> tuple[list[MappingConfig], str | None]:
        function = parse_function_ref(function_name).name if function_name else None
        qualifier = parse_function_ref(function_name).qualifier if function_name else None
        found = self.store.list_mappings(function, source_arn or None)
        if qualifier is not None:
            found = [c for c in found if c.qualifier == qualifier]
        start = 0
        if marker:
            start = next((i + 1 for i, c in enumerate(found) if c.uuid == marker), len(found))
        size = max_items or PAGE
        page = found[start : start + size]
        more = start + size < len(found)
        return page, page[-1].uuid if more and page else None

    def update(self, uuid: str, change: MappingChange) -> MappingConfig:
        with self.engine.lock:
            current = self.get(uuid)
            if current.state.transitional:
                raise ResourceInUse(
                    f"Cannot update the event source mapping because it is in use (state {current.state})."
                )
            config = current
            if change.function_name is not UNSET:
                ref = self._function(change.function_name)
                config = config.with_changes(function=ref.name, qualifier=ref.qualifier)
            config = self._apply(config, change)
            if config.enabled != current.enabled:
                state = MappingState.ENABLING if config.enabled else MappingState.DISABLING
            else:
                state = MappingState.UPDATING
            config = config.with_changes(state=state, state_reason="USER_INITIATED", last_modified=time.time())
            self.store.put_mapping(config)
        self.engine.changed(uuid)
        return config

    def delete(self, uuid: str) -> MappingConfig:
        with self.engine.lock:
            current = self.get(uuid)
            if current.state.transitional and current.state is not MappingState.DELETING:
                raise ResourceInUse(
                    f"Cannot delete the event source mapping because it is in use (state {current.state})."
                )
            config = current.with_changes(state=MappingState.DELETING, state_reason="USER_INITIATED",
                                          last_modified=time.time())  # fmt: skip
            self.store.put_mapping(config)
        self.engine.changed(uuid)
        return config

    def function_deleted(self, name: str) -> None:
        """A deleted function takes its mappings with it (worker thread)."""
        for config in self.store.list_mappings(name):
            with self.engine.lock:
                current = self.store.get_mapping(config.uuid)
                if current is None:
                    continue
                self.store.put_mapping(current.with_changes(state=MappingState.DELETING,
                                                            state_reason="USER_INITIATED"))  # fmt: skip
            self.engine.changed(config.uuid)

    # -- visibility and replay (beyond AWS) -------------------------------------------------

    def last_result(self, config: MappingConfig) -> str:
        return self.engine.last_result(config.uuid) or "No records processed"

    def checkpoints(self, uuid: str) -> list[Checkpoint]:
        return self.store.checkpoints(uuid)

    def failed_batches(self, uuid: str, limit: int = 100) -> list[FailedBatch]:
        return self.store.failed_batches(uuid, limit)

    def failed_batch(self, uuid: str, batch_id: int) -> FailedBatch:
        batch = self.store.get_failed_batch(batch_id)
        if batch is None or batch.uuid != uuid:
            raise ResourceNotFound(f"No kept batch {batch_id} for mapping {uuid}.")
        return batch

    # -- helpers ----------------------------------------------------------------------------

    def _function(self, name: Any) -> FunctionRef:
        if name is UNSET or not name:
            raise InvalidParameterValue("FunctionName is required.")
        ref = parse_function_ref(name)
        self.functions.resolve(ref)  # ResourceNotFoundException "Function not found: <arn>"
        return FunctionRef(ref.name, ref.qualifier)

    def _function_text(self, config: MappingConfig) -> str:
        return self.function_arn(config)

    def _source(self, arn: str) -> Source:
        try:
            source = self.sources(arn)
        except ValueError:
            raise InvalidParameterValue(
                f"Unsupported event source {arn}: Lamina maps Kinesis streams"
                " (arn:aws:kinesis:<region>:<account>:stream/<name>) for now."
            ) from None
        try:
            source.shards()
        except SourceGone:
            raise InvalidParameterValue(f"Stream not found: {arn}") from None
        return source

    def _apply(self, config: MappingConfig, change: MappingChange) -> MappingConfig:
        values: dict[str, Any] = {}
        for attr, (param, low, high) in _RANGES.items():
            value = getattr(change, attr)
            if value is UNSET or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidParameterValue(f"{param} must be between {low} and {high}, got {value}.")
            values[attr] = value
        age = values.get("max_record_age_s")
        if age is not None and age != -1 and age < self.min_record_age_s:
            raise InvalidParameterValue(
                f"MaximumRecordAgeInSeconds must be -1 or between {self.min_record_age_s} and 604800, got {age}."
            )
        for attr in ("enabled", "bisect"):
            value = getattr(change, attr)
            if value is not UNSET and value is not None:
                values[attr] = bool(value)
        if change.response_types is not UNSET and change.response_types is not None:
            types = list(change.response_types)
            if any(t != REPORT_BATCH_ITEM_FAILURES for t in types):
                raise InvalidParameterValue(
                    f"Unsupported FunctionResponseTypes {types}: only {REPORT_BATCH_ITEM_FAILURES} is supported."
                )
            values["report_item_failures"] = bool(types)
        if change.filters is not UNSET and change.filters is not None:
            patterns = tuple(change.filters)
            parse_filters(patterns, MAX_FILTERS)
            values["filters"] = patterns
        if change.on_success is not UNSET and change.on_success:
            raise InvalidParameterValue("Unsupported DestinationConfig parameter for given event source mapping type.")
        if change.on_failure is not UNSET and change.on_failure is not None:
            target = change.on_failure or None
            if target is not None:
                self.destinations.validate_target(target, ON_FAILURE, config.function)
            values["on_failure"] = target
        if change.tags:
            values["tags"] = dict(change.tags)
        return config.with_changes(**values)


@dataclass(frozen=True)
class Replayed:
    batch_id: int
    ok: bool
    function_error: str | None
    response: bytes


async def replay(service: MappingService, uuid: str, batch_ids: list[int] | None) -> list[Replayed]:
    """Invoke the mapping's function (as it is now) with kept batches: those named, or every one
    not replayed yet. A replay does not move checkpoints; a batch that succeeds is marked replayed."""
    config = await asyncio.to_thread(service.get, uuid)
    if batch_ids:
        batches = [await asyncio.to_thread(service.failed_batch, uuid, i) for i in batch_ids]
    else:
        batches = [b for b in await asyncio.to_thread(service.failed_batches, uuid, 1000) if b.replayed is None]
    out = []
    for batch in batches:
        result = await service.engine.replay(config, batch.payload)
        ok = not result.function_error
        if ok:
            await asyncio.to_thread(service.store.mark_replayed, batch.id, time.time())
        out.append(Replayed(batch.id, ok, result.function_error, result.payload))
    return out
