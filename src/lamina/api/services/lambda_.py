"""The Lambda API (rest-json, botocore model `lambda/2015-03-31`): wire params ↔ core calls.

Parsing and serialising are the protocol layer's job, driven by the model; this module only maps
each operation's params onto typed core requests and core records back onto output shapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.config import Settings
from lamina.errors import InvalidParameterValue
from lamina.functions.concurrency import ConcurrencyService
from lamina.functions.names import parse_function_ref
from lamina.functions.service import ConfigChange, FunctionDraft, FunctionService
from lamina.invoke.service import InvokeService
from lamina.model.function import LATEST, FunctionConfig
from lamina.model.invocation import InvocationType, InvokeRequest
from lamina.runtime import runtimes
from lamina.store.code import sha256_hex_from_b64

Params = dict[str, Any]
CODE_URL_TTL = 600  # AWS's presigned Code.Location lasts 10 minutes


class CodeUrls:
    """Signed, expiring download URLs for code packages (GetFunction's Code.Location)."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def _sig(self, sha: str, expires: int) -> str:
        return hmac.new(self.key, f"{sha}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, base_url: str, sha: str, now: float | None = None) -> str:
        expires = int((now or time.time()) + CODE_URL_TTL)
        return f"{base_url.rstrip('/')}/_lamina/code/{sha}.zip?expires={expires}&signature={self._sig(sha, expires)}"

    def verify(self, sha: str, expires: str, signature: str, now: float | None = None) -> bool:
        try:
            deadline = int(expires)
        except ValueError:
            return False
        return deadline >= (now or time.time()) and hmac.compare_digest(self._sig(sha, deadline), signature)


def function_configuration(config: FunctionConfig, functions: FunctionService, qualifier: str | None = None) -> Params:
    """FunctionConfiguration output shape. The ARN carries the qualifier the caller used (an alias
    stays an alias) and a published version's number; unqualified $LATEST stays unqualified."""
    if qualifier is None and config.version != LATEST:
        qualifier = config.version
    out: Params = {
        "FunctionName": config.name,
        "FunctionArn": functions.arns.function(config.name, qualifier),
        "Runtime": config.runtime,
        "Role": config.role,
        "Handler": config.handler,
        "CodeSize": config.code_size,
        "Description": config.description,
        "Timeout": config.timeout,
        "MemorySize": config.memory_size,
        "LastModified": config.last_modified,
        "CodeSha256": config.code_sha256,
        "Version": config.version,
        "TracingConfig": {"Mode": config.tracing_mode},
        "RevisionId": config.revision_id,
        "State": str(config.state),
        "LastUpdateStatus": str(config.last_update_status),
        "PackageType": config.package_type,
        "Architectures": list(config.architectures),
        "EphemeralStorage": {"Size": config.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {
            "LogFormat": config.logging.get("LogFormat", "Text"),
            "LogGroup": config.log_group,
            **{k: v for k, v in config.logging.items() if k in ("ApplicationLogLevel", "SystemLogLevel")},
        },
        "RuntimeVersionConfig": runtime_version(config, functions.settings),
    }
    if config.environment:
        out["Environment"] = {"Variables": dict(config.environment)}
    if config.state_reason:
        out["StateReason"] = config.state_reason
    if config.dead_letter_target:
        out["DeadLetterConfig"] = {"TargetArn": config.dead_letter_target}
    if config.kms_key_arn:
        out["KMSKeyArn"] = config.kms_key_arn
    return out


def runtime_version(config: FunctionConfig, settings: Settings) -> Params:
    """Which interpreter really runs the code: said out loud when it is not the requested one."""
    if runtimes.uses_runtime_api(config.runtime):
        return runtimes.version_config(config.runtime, settings)
    interpreter, exact = settings.interpreter_for(config.runtime)
    arn = f"arn:aws:lambda:{settings.region}::runtime:lamina-{config.runtime}"
    if exact:
        return {"RuntimeVersionArn": arn}
    return {
        "RuntimeVersionArn": arn,
        "Error": {
            "ErrorCode": "RuntimeNotInstalled",
            "Message": f"{config.runtime} is not installed on this machine; the function runs on the host "
            f"interpreter {interpreter}.",
        },
    }


# ListFunctions "returns only a subset of the version-specific configuration": no state fields.
_NOT_LISTED = ("State", "StateReason", "StateReasonCode", "LastUpdateStatus", "LastUpdateStatusReason")


def _listed(config: Params) -> Params:
    return {k: v for k, v in config.items() if k not in _NOT_LISTED}


def _draft(params: Params) -> FunctionDraft:
    code = params.get("Code") or {}
    if code.get("S3Bucket") or code.get("ImageUri"):
        raise InvalidParameterValue("Lamina takes code as Code.ZipFile for now (S3 and images are not supported yet).")
    return FunctionDraft(
        name=parse_function_ref(params["FunctionName"]).name,
        role=params["Role"],
        runtime=params.get("Runtime"),
        handler=params.get("Handler"),
        zip_file=code.get("ZipFile"),
        description=params.get("Description", ""),
        timeout=params.get("Timeout", 3),
        memory_size=params.get("MemorySize", 128),
        environment=(params.get("Environment") or {}).get("Variables") or {},
        architectures=tuple(params.get("Architectures") or ()) or None,
        ephemeral_storage=(params.get("EphemeralStorage") or {}).get("Size", 512),
        package_type=params.get("PackageType"),
        tags=params.get("Tags") or {},
        layers=tuple(params.get("Layers") or ()),
        tracing_mode=(params.get("TracingConfig") or {}).get("Mode"),
        logging=params.get("LoggingConfig") or {},
        dead_letter_target=(params.get("DeadLetterConfig") or {}).get("TargetArn"),
        kms_key_arn=params.get("KMSKeyArn"),
    )


def _change(params: Params) -> ConfigChange:
    env = params.get("Environment")
    return ConfigChange(
        role=params.get("Role"),
        handler=params.get("Handler"),
        runtime=params.get("Runtime"),
        description=params.get("Description"),
        timeout=params.get("Timeout"),
        memory_size=params.get("MemorySize"),
        environment=(env.get("Variables") or {}) if env is not None else None,
        ephemeral_storage=(params.get("EphemeralStorage") or {}).get("Size"),
        layers=tuple(params["Layers"]) if params.get("Layers") else None,
        tracing_mode=(params.get("TracingConfig") or {}).get("Mode"),
        logging=params.get("LoggingConfig"),
        dead_letter_target=(params.get("DeadLetterConfig") or {}).get("TargetArn"),
        kms_key_arn=params.get("KMSKeyArn"),
        revision_id=params.get("RevisionId"),
    )


class LambdaApi:
    """One method per operation; `handlers()` gives the edge its table."""

    def __init__(
        self,
        functions: FunctionService,
        invoker: InvokeService,
        code_urls: CodeUrls,
        concurrency: ConcurrencyService | None = None,
    ) -> None:
        self.functions = functions
        self.invoker = invoker
        self.code_urls = code_urls
        self.concurrency = concurrency

    def handlers(self) -> dict[str, Callable[[Any, Params], Awaitable[Params]]]:
        return {
            "CreateFunction": self.create_function,
            "GetFunction": self.get_function,
            "GetFunctionConfiguration": self.get_function_configuration,
            "ListFunctions": self.list_functions,
            "UpdateFunctionCode": self.update_function_code,
            "UpdateFunctionConfiguration": self.update_function_configuration,
            "DeleteFunction": self.delete_function,
            "Invoke": self.invoke,
            "GetAccountSettings": self.get_account_settings,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTags": self.list_tags,
        }

    def _config(self, config: FunctionConfig, qualifier: str | None = None) -> Params:
        return function_configuration(config, self.functions, qualifier)

    async def create_function(self, ctx: Any, params: Params) -> Params:
        record = await asyncio.to_thread(self.functions.create, _draft(params))
        if params.get("Publish"):  # the answer describes version 1
            return self._config(await asyncio.to_thread(self.functions.publish, record.config.name))
        return self._config(record.config)

    async def get_function(self, ctx: Any, params: Params) -> Params:
        ref = parse_function_ref(params["FunctionName"], params.get("Qualifier"))
        config = await asyncio.to_thread(self.functions.resolve, ref)
        record = await asyncio.to_thread(self.functions.get, config.name)
        out: Params = {
            "Configuration": self._config(config, ref.qualifier),
            "Code": {
                "RepositoryType": "S3",
                "Location": self.code_urls.url(ctx.base_url, sha256_hex_from_b64(config.code_sha256)),
            },
        }
        if record.tags:
            out["Tags"] = dict(record.tags)
        reserved = self.concurrency.reserved_for(config.name) if self.concurrency else None
        if reserved is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        return out

    async def get_function_configuration(self, ctx: Any, params: Params) -> Params:
        ref = parse_function_ref(params["FunctionName"], params.get("Qualifier"))
        return self._config(await asyncio.to_thread(self.functions.resolve, ref), ref.qualifier)

    async def list_functions(self, ctx: Any, params: Params) -> Params:
        every_version = params.get("FunctionVersion")
        if every_version not in (None, "ALL"):
            raise InvalidParameterValue(f"Invalid FunctionVersion: {every_version}; the only value is ALL")
        if every_version == "ALL":
            configs, next_marker = await asyncio.to_thread(
                self.functions.list_all_versions, params.get("Marker"), params.get("MaxItems")
            )
            listed = [_listed(self._config(c, c.version)) for c in configs]
        else:
            records, next_marker = await asyncio.to_thread(
                self.functions.list, params.get("Marker"), params.get("MaxItems")
            )
            listed = [_listed(self._config(r.config)) for r in records]
        out: Params = {"Functions": listed}
        if next_marker:
            out["NextMarker"] = next_marker
        return out

    async def update_function_code(self, ctx: Any, params: Params) -> Params:
        if params.get("S3Bucket") or params.get("ImageUri"):
            raise InvalidParameterValue("Lamina takes code as ZipFile for now (S3 and images are not supported yet).")
        name = parse_function_ref(params["FunctionName"]).name
        config = await asyncio.to_thread(
            self.functions.update_code,
            name,
            params.get("ZipFile"),
            params.get("RevisionId"),
            bool(params.get("DryRun")),
            params.get("Architectures"),
        )
        if params.get("Publish") and not params.get("DryRun"):
            config = await asyncio.to_thread(self.functions.publish, name)
        return self._config(config)

    async def update_function_configuration(self, ctx: Any, params: Params) -> Params:
        name = parse_function_ref(params["FunctionName"]).name
        config = await asyncio.to_thread(self.functions.update_configuration, name, _change(params))
        return self._config(config)

    async def delete_function(self, ctx: Any, params: Params) -> Params:
        ref = parse_function_ref(params["FunctionName"], params.get("Qualifier"))
        await asyncio.to_thread(self.functions.delete, ref.name, ref.qualifier)
        return {"StatusCode": 200}

    async def invoke(self, ctx: Any, params: Params) -> Params:
        log_type = params.get("LogType") or "None"
        if log_type not in ("None", "Tail"):
            raise InvalidParameterValue(f"Invalid LogType: {log_type}")
        try:
            invocation_type = InvocationType(params.get("InvocationType") or "RequestResponse")
        except ValueError:
            raise InvalidParameterValue(f"Invalid InvocationType: {params.get('InvocationType')}") from None
        result = await self.invoker.invoke(
            InvokeRequest(
                function=params["FunctionName"],
                payload=params.get("Payload") or b"",
                qualifier=params.get("Qualifier"),
                invocation_type=invocation_type,
                tail_log=log_type == "Tail",
                client_context=params.get("ClientContext"),
                request_id=ctx.request_id,  # Lambda answers with x-amzn-RequestId = the invocation's id
            )
        )
        ctx.response_headers["Content-Type"] = "application/json"
        out: Params = {"StatusCode": result.status, "ExecutedVersion": result.executed_version}
        if result.status != 204:
            out["Payload"] = result.payload
        if result.function_error:
            out["FunctionError"] = result.function_error
        if result.log_tail is not None:
            out["LogResult"] = result.log_tail
        return out

    async def get_account_settings(self, ctx: Any, params: Params) -> Params:
        settings = self.functions.settings
        count, total = await asyncio.to_thread(self.functions.usage)
        return {
            "AccountLimit": {
                "TotalCodeSize": 80_530_636_800,
                "CodeSizeUnzipped": settings.unzipped_code_limit,
                "CodeSizeZipped": settings.zipped_code_limit,
                "ConcurrentExecutions": settings.max_concurrency,
                "UnreservedConcurrentExecutions": (
                    self.concurrency.unreserved_for_account() if self.concurrency else settings.max_concurrency
                ),
            },
            "AccountUsage": {"TotalCodeSize": total, "FunctionCount": count},
        }

    async def tag_resource(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.functions.tag, params["Resource"], params.get("Tags") or {})
        return {}

    async def untag_resource(self, ctx: Any, params: Params) -> Params:
        await asyncio.to_thread(self.functions.untag, params["Resource"], params.get("TagKeys") or [])
        return {}

    async def list_tags(self, ctx: Any, params: Params) -> Params:
        return {"Tags": await asyncio.to_thread(self.functions.list_tags, params["Resource"])}
