"""The event-source-mapping room of the Lambda API: Create/Get/Update/Delete/ListEventSourceMappings
(params ↔ lamina.sources.mappings.MappingService). Create, Update and Delete answer 202 (the
model's responseCode) with the mapping in its transitional state (Creating, Updating / Enabling /
Disabling, Deleting); the engine settles it a moment later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from lamina.model.mappings import MappingConfig, StartingPosition
from lamina.sources.mappings.service import UNSET, MappingChange, MappingService

Params = dict[str, Any]

_SETTINGS = {  # request member → MappingChange field
    "FunctionName": "function_name",
    "Enabled": "enabled",
    "BatchSize": "batch_size",
    "MaximumBatchingWindowInSeconds": "window_s",
    "ParallelizationFactor": "parallelization",
    "BisectBatchOnFunctionError": "bisect",
    "MaximumRetryAttempts": "max_retries",
    "MaximumRecordAgeInSeconds": "max_record_age_s",
    "TumblingWindowInSeconds": "tumbling_window_s",
    "FunctionResponseTypes": "response_types",
}


def _change(params: Params) -> MappingChange:
    values: dict[str, Any] = {field: params[member] for member, field in _SETTINGS.items() if member in params}
    if "FilterCriteria" in params:
        filters = (params["FilterCriteria"] or {}).get("Filters") or []
        values["filters"] = [f.get("Pattern", "") for f in filters]
    destinations = params.get("DestinationConfig")
    if destinations is not None:
        if "OnFailure" in destinations:
            values["on_failure"] = (destinations["OnFailure"] or {}).get("Destination") or ""
        if "OnSuccess" in destinations:
            values["on_success"] = (destinations["OnSuccess"] or {}).get("Destination") or ""
    if params.get("Tags"):
        values["tags"] = dict(params["Tags"])
    return MappingChange(**values)


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def mapping_view(config: MappingConfig, service: MappingService) -> Params:
    """EventSourceMappingConfiguration, as AWS answers it for a stream source."""
    out: Params = {
        "UUID": config.uuid,
        "StartingPosition": str(config.starting_position),
        "BatchSize": config.batch_size,
        "MaximumBatchingWindowInSeconds": config.window_s,
        "ParallelizationFactor": config.parallelization,
        "EventSourceArn": config.source_arn,
        "FunctionArn": service.function_arn(config),
        "LastModified": config.last_modified,
        "LastProcessingResult": service.last_result(config),
        "State": str(config.state),
        "StateTransitionReason": config.state_reason,
        "DestinationConfig": {"OnFailure": {"Destination": config.on_failure} if config.on_failure else {}},
        "MaximumRecordAgeInSeconds": config.max_record_age_s,
        "BisectBatchOnFunctionError": config.bisect,
        "MaximumRetryAttempts": config.max_retries,
        "TumblingWindowInSeconds": config.tumbling_window_s,
        "FunctionResponseTypes": ["ReportBatchItemFailures"] if config.report_item_failures else [],
        "EventSourceMappingArn": service.arn(config.uuid),
    }
    if config.starting_position is StartingPosition.AT_TIMESTAMP and config.starting_timestamp is not None:
        out["StartingPositionTimestamp"] = config.starting_timestamp
    if config.filters:
        out["FilterCriteria"] = {"Filters": [{"Pattern": p} for p in config.filters]}
    return out


class MappingsApi:
    """One method per operation; `handlers()` is merged into the Lambda service's table."""

    def __init__(self, service: MappingService) -> None:
        self.service = service

    def handlers(self) -> dict[str, Callable[[Any, Params], Awaitable[Params]]]:
        return {
            "CreateEventSourceMapping": self.create,
            "GetEventSourceMapping": self.get,
            "UpdateEventSourceMapping": self.update,
            "DeleteEventSourceMapping": self.delete,
            "ListEventSourceMappings": self.list,
        }

    async def create(self, ctx: Any, params: Params) -> Params:
        change = _change(params)
        if change.function_name is UNSET:
            change = MappingChange(**{**change.__dict__, "function_name": ""})
        config = await asyncio.to_thread(
            self.service.create,
            params.get("EventSourceArn"),
            params.get("StartingPosition"),
            _epoch(params.get("StartingPositionTimestamp")),
            change,
        )
        return mapping_view(config, self.service)

    async def get(self, ctx: Any, params: Params) -> Params:
        config = await asyncio.to_thread(self.service.get, params["UUID"])
        return mapping_view(config, self.service)

    async def update(self, ctx: Any, params: Params) -> Params:
        config = await asyncio.to_thread(self.service.update, params["UUID"], _change(params))
        return mapping_view(config, self.service)

    async def delete(self, ctx: Any, params: Params) -> Params:
        config = await asyncio.to_thread(self.service.delete, params["UUID"])
        return mapping_view(config, self.service)

    async def list(self, ctx: Any, params: Params) -> Params:
        page, marker = await asyncio.to_thread(
            self.service.list,
            params.get("FunctionName"),
            params.get("EventSourceArn"),
            params.get("Marker"),
            params.get("MaxItems"),
        )
        out: Params = {"EventSourceMappings": [mapping_view(c, self.service) for c in page]}
        if marker:
            out["NextMarker"] = marker
        return out
