"""Lambda API, versions and aliases: PublishVersion, ListVersionsByFunction and the alias operations."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.api.services.lambda_ import function_configuration
from lamina.functions.names import parse_function_ref
from lamina.functions.service import FunctionService
from lamina.model.function import AliasRecord

Params = dict[str, Any]


def alias_configuration(alias: AliasRecord, functions: FunctionService) -> Params:
    """AliasConfiguration output shape (RoutingConfig only when weights are set, as Lambda)."""
    out: Params = {
        "AliasArn": functions.arns.function(alias.function, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.routing:
        out["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.routing)}
    return out


def _weights(params: Params) -> dict[str, float] | None:
    routing = params.get("RoutingConfig")
    if routing is None:
        return None
    return dict(routing.get("AdditionalVersionWeights") or {})


class VersionsApi:
    def __init__(self, functions: FunctionService) -> None:
        self.functions = functions

    def handlers(self) -> dict[str, Callable[[Any, Params], Awaitable[Params]]]:
        return {
            "PublishVersion": self.publish_version,
            "ListVersionsByFunction": self.list_versions_by_function,
            "CreateAlias": self.create_alias,
            "GetAlias": self.get_alias,
            "UpdateAlias": self.update_alias,
            "DeleteAlias": self.delete_alias,
            "ListAliases": self.list_aliases,
        }

    def _name(self, params: Params) -> str:
        return parse_function_ref(params["FunctionName"]).name

    def _alias(self, alias: AliasRecord) -> Params:
        return alias_configuration(alias, self.functions)

    async def publish_version(self, ctx: Any, params: Params) -> Params:
        config = await asyncio.to_thread(
            self.functions.publish,
            self._name(params),
            params.get("CodeSha256"),
            params.get("Description"),
            params.get("RevisionId"),
        )
        return function_configuration(config, self.functions)

    async def list_versions_by_function(self, ctx: Any, params: Params) -> Params:
        configs, next_marker = await asyncio.to_thread(
            self.functions.list_versions, self._name(params), params.get("Marker"), params.get("MaxItems")
        )
        out: Params = {"Versions": [function_configuration(c, self.functions, c.version) for c in configs]}
        if next_marker:
            out["NextMarker"] = next_marker
        return out

    async def create_alias(self, ctx: Any, params: Params) -> Params:
        alias = await asyncio.to_thread(
            self.functions.create_alias,
            self._name(params),
            params["Name"],
            params["FunctionVersion"],
            params.get("Description") or "",
            _weights(params),
        )
        return self._alias(alias)

    async def get_alias(self, ctx: Any, params: Params) -> Params:
        return self._alias(await asyncio.to_thread(self.functions.get_alias, self._name(params), params["Name"]))

    async def update_alias(self, ctx: Any, params: Params) -> Params:
        alias = await asyncio.to_thread(
            self.functions.update_alias,
            self._name(params),
            params["Name"],
            params.get("FunctionVersion"),
            params.get("Description"),
            _weights(params),
            params.get("RevisionId"),
        )
        return self._alias(alias)

    async def delete_alias(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.functions.delete_alias, self._name(params), params["Name"])
        return {}

    async def list_aliases(self, ctx: Any, params: Params) -> Params:
        aliases, next_marker = await asyncio.to_thread(
            self.functions.list_aliases,
            self._name(params),
            params.get("FunctionVersion"),
            params.get("Marker"),
            params.get("MaxItems"),
        )
        out: Params = {"Aliases": [self._alias(a) for a in aliases]}
        if next_marker:
            out["NextMarker"] = next_marker
        return out
