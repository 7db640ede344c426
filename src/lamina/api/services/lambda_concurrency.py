"""The Lambda API's concurrency room: reserved concurrency (Put/Get/DeleteFunctionConcurrency) and
provisioned concurrency (Put/Get/Delete/ListProvisionedConcurrencyConfig(s)); wire params ↔ core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.errors import InvalidParameterValue
from lamina.functions.concurrency import ConcurrencyService
from lamina.functions.names import parse_function_ref
from lamina.functions.paging import decode_marker, encode_marker
from lamina.invoke.provisioning import Provisioner
from lamina.model.concurrency import ProvisionedConfig

Params = dict[str, Any]
LIST_PAGE = 50  # MaxProvisionedConcurrencyConfigListItems' max


class ConcurrencyApi:
    def __init__(self, concurrency: ConcurrencyService, provisioner: Provisioner) -> None:
        self.concurrency = concurrency
        self.provisioner = provisioner

    def handlers(self) -> dict[str, Callable[[Any, Params], Awaitable[Params]]]:
        return {
            "PutFunctionConcurrency": self.put_function_concurrency,
            "GetFunctionConcurrency": self.get_function_concurrency,
            "DeleteFunctionConcurrency": self.delete_function_concurrency,
            "PutProvisionedConcurrencyConfig": self.put_provisioned,
            "GetProvisionedConcurrencyConfig": self.get_provisioned,
            "DeleteProvisionedConcurrencyConfig": self.delete_provisioned,
            "ListProvisionedConcurrencyConfigs": self.list_provisioned,
        }

    # -- reserved --------------------------------------------------------------------------------

    async def put_function_concurrency(self, ctx: Any, params: Params) -> Params:
        name = parse_function_ref(params["FunctionName"]).name
        reserved = await asyncio.to_thread(self.concurrency.put_reserved, name, params["ReservedConcurrentExecutions"])
        return {"ReservedConcurrentExecutions": reserved}

    async def get_function_concurrency(self, ctx: Any, params: Params) -> Params:
        name = parse_function_ref(params["FunctionName"]).name
        reserved = await asyncio.to_thread(self.concurrency.get_reserved, name)
        return {} if reserved is None else {"ReservedConcurrentExecutions": reserved}

    async def delete_function_concurrency(self, ctx: Any, params: Params) -> Params:
        name = parse_function_ref(params["FunctionName"]).name
        await asyncio.to_thread(self.concurrency.delete_reserved, name)
        return {}

    # -- provisioned -----------------------------------------------------------------------------

    async def put_provisioned(self, ctx: Any, params: Params) -> Params:
        ref = parse_function_ref(params["FunctionName"], params.get("Qualifier"))
        config = await asyncio.to_thread(
            self.concurrency.put_provisioned, ref.name, ref.qualifier, params["ProvisionedConcurrentExecutions"]
        )
        await self.provisioner.apply(ref.name)  # starts the environments in the background
        return self._config(config)

    async def get_provisioned(self, ctx: Any, params: Params) -> Params:
        ref = parse_function_ref(params["FunctionName"], params.get("Qualifier"))
        config = await asyncio.to_thread(self.concurrency.get_provisioned, ref.name, ref.qualifier)
        return self._config(config)

    async def delete_provisioned(self, ctx: Any, params: Params) -> Params:
        ref = parse_function_ref(params["FunctionName"], params.get("Qualifier"))
        await asyncio.to_thread(self.concurrency.delete_provisioned, ref.name, ref.qualifier)
        await self.provisioner.apply(ref.name)
        return {}

    async def list_provisioned(self, ctx: Any, params: Params) -> Params:
        name = parse_function_ref(params["FunctionName"]).name
        limit = params.get("MaxItems") or LIST_PAGE
        offset = decode_marker(params.get("Marker")) or "0"  # the marker is the next page's offset
        if not offset.isdigit():
            raise InvalidParameterValue(f"Invalid marker: {params['Marker']}")
        start = int(offset)
        configs = await asyncio.to_thread(self.concurrency.list_provisioned, name)
        page = configs[start : start + limit]
        out: Params = {
            "ProvisionedConcurrencyConfigs": [
                {"FunctionArn": self.concurrency.functions.arns.function(c.function, c.qualifier), **self._config(c)}
                for c in page
            ]
        }
        if start + limit < len(configs):
            out["NextMarker"] = encode_marker(str(start + limit))
        return out

    def _config(self, config: ProvisionedConfig) -> Params:
        state = self.provisioner.state(config)
        out: Params = {
            "RequestedProvisionedConcurrentExecutions": config.requested,
            "AvailableProvisionedConcurrentExecutions": state.available,
            "AllocatedProvisionedConcurrentExecutions": state.allocated,
            "Status": state.status,
            "LastModified": config.last_modified,
        }
        if state.reason:
            out["StatusReason"] = state.reason
        return out
