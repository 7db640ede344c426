"""The asynchronous-invocation room of the Lambda API: EventInvokeConfigs and legacy InvokeAsync.

Invoke with InvocationType=Event is served by lambda_.py through InvokeService (which hands the
event to the queue); this module adds the operations that only exist for async invocation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.errors import RequestTooLarge
from lamina.functions.names import parse_function_ref
from lamina.invoke.asynchronous.configs import UNSET, ConfigChange, EventInvokeConfigs
from lamina.invoke.service import InvokeService
from lamina.model.events import EventInvokeConfig
from lamina.model.invocation import InvocationType, InvokeRequest

Params = dict[str, Any]
INVOKE_ASYNC_LIMIT = 262_144  # the deprecated InvokeAsync keeps the old 256 KB limit


def event_invoke_config(config: EventInvokeConfig, configs: EventInvokeConfigs) -> Params:
    """FunctionEventInvokeConfig output shape."""
    out: Params = {"LastModified": config.last_modified, "FunctionArn": configs.arn(config)}
    if config.maximum_retry_attempts is not None:
        out["MaximumRetryAttempts"] = config.maximum_retry_attempts
    if config.maximum_event_age is not None:
        out["MaximumEventAgeInSeconds"] = config.maximum_event_age
    destinations: Params = {"OnSuccess": {}, "OnFailure": {}}
    if config.on_success:
        destinations["OnSuccess"] = {"Destination": config.on_success}
    if config.on_failure:
        destinations["OnFailure"] = {"Destination": config.on_failure}
    out["DestinationConfig"] = destinations
    return out


def _change(params: Params) -> ConfigChange:
    destinations = params.get("DestinationConfig")
    on_success: object = UNSET
    on_failure: object = UNSET
    if destinations is not None:
        if "OnSuccess" in destinations:
            on_success = (destinations["OnSuccess"] or {}).get("Destination") or ""
        if "OnFailure" in destinations:
            on_failure = (destinations["OnFailure"] or {}).get("Destination") or ""
    return ConfigChange(
        maximum_retry_attempts=params.get("MaximumRetryAttempts", UNSET),
        maximum_event_age=params.get("MaximumEventAgeInSeconds", UNSET),
        on_success=on_success,
        on_failure=on_failure,
    )


class AsyncInvokeApi:
    """One method per operation; `handlers()` is merged into the Lambda service's table."""

    def __init__(self, configs: EventInvokeConfigs, invoker: InvokeService) -> None:
        self.configs = configs
        self.invoker = invoker

    def handlers(self) -> dict[str, Callable[[Any, Params], Awaitable[Params]]]:
        return {
            "PutFunctionEventInvokeConfig": self.put,
            "UpdateFunctionEventInvokeConfig": self.update,
            "GetFunctionEventInvokeConfig": self.get,
            "DeleteFunctionEventInvokeConfig": self.delete,
            "ListFunctionEventInvokeConfigs": self.list,
            "InvokeAsync": self.invoke_async,
        }

    async def put(self, ctx: Any, params: Params) -> Params:
        ref = parse_function_ref(params["FunctionName"], params.get("Qualifier"))
        config = await asyncio.to_thread(self.configs.put, ref.name, ref.qualifier, _change(params))
        return event_invoke_config(config, self.configs)

    async def update(self, ctx: Any, params: Params) -> Params:
        ref = parse_function_ref(params["FunctionName"], params.get("Qualifier"))
        config = await asyncio.to_thread(self.configs.update, ref.name, ref.qualifier, _change(params))
        return event_invoke_config(config, self.configs)

    async def get(self, ctx: Any, params: Params) -> Params:
        ref = parse_function_ref(params["FunctionName"], params.get("Qualifier"))
        config = await asyncio.to_thread(self.configs.get, ref.name, ref.qualifier)
        return event_invoke_config(config, self.configs)

    async def delete(self, ctx: Any, params: Params) -> Params:
        ref = parse_function_ref(params["FunctionName"], params.get("Qualifier"))
        await asyncio.to_thread(self.configs.delete, ref.name, ref.qualifier)
        return {}

    async def list(self, ctx: Any, params: Params) -> Params:
        name = parse_function_ref(params["FunctionName"]).name
        page, marker = await asyncio.to_thread(self.configs.list, name, params.get("Marker"), params.get("MaxItems"))
        out: Params = {"FunctionEventInvokeConfigs": [event_invoke_config(c, self.configs) for c in page]}
        if marker:
            out["NextMarker"] = marker
        return out

    async def invoke_async(self, ctx: Any, params: Params) -> Params:
        payload = params.get("InvokeArgs") or b""
        if not isinstance(payload, bytes | bytearray):
            payload = payload.read() if hasattr(payload, "read") else str(payload).encode()
        if len(payload) > INVOKE_ASYNC_LIMIT:
            raise RequestTooLarge(
                f"{len(payload)} byte payload is too large for the InvokeAsync operation"
                f" (limit {INVOKE_ASYNC_LIMIT} bytes)"
            )
        await self.invoker.invoke(
            InvokeRequest(
                function=params["FunctionName"],
                payload=bytes(payload),
                invocation_type=InvocationType.EVENT,
                request_id=ctx.request_id,
            )
        )
        return {"Status": 202}
