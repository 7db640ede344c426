"""The one door every invocation goes through: sync API calls now; async queues and pollers later.

resolve the function → check the payload → take a concurrency lease → lease an environment →
run → write the log stream (START, output, END, REPORT) and the meter row → answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lamina import ids
from lamina.config import Settings
from lamina.errors import InvalidParameterValue, InvalidRequestContent, RequestTooLarge
from lamina.functions.names import parse_function_ref
from lamina.functions.service import FunctionService
from lamina.invoke import metering
from lamina.invoke.concurrency import ConcurrencyLimiter
from lamina.invoke.sandbox_env import RoleCredentials, function_env
from lamina.model.function import LATEST, FunctionConfig
from lamina.model.invocation import InvocationRecord, InvocationType, InvokeRequest, InvokeResult, Outcome
from lamina.runtime.base import EnvironmentSpec, Invocation, LogLine, Pool, RunResult
from lamina.store.base import InvocationStore, LogEvent, LogStore

CLIENT_CONTEXT_LIMIT = 3583
# Parsing 6 MB of JSON takes tens of milliseconds: above this size it happens in a worker thread.
INLINE_JSON_CHECK_BYTES = 64 * 1024
CREDENTIALS_RENEWAL_S = 3600.0


@dataclass(frozen=True)
class Prepared:
    """A validated invocation, ready to run."""

    config: FunctionConfig
    arn: str
    payload: bytes
    client_context: str | None


class EventSink(Protocol):
    """Where Event invocations go: a durable queue that a consumer drains (invoke/asynchronous)."""

    async def accept(self, request: InvokeRequest, prepared: Prepared, request_id: str) -> None:
        """Return only once the event is committed; raise a LaminaError to refuse it."""


class InvokeService:
    def __init__(
        self,
        settings: Settings,
        functions: FunctionService,
        pool: Pool,
        invocations: InvocationStore,
        logs: LogStore,
    ) -> None:
        self.settings = settings
        self.functions = functions
        self.pool = pool
        self.invocations = invocations
        self.logs = logs
        self.limiter = ConcurrencyLimiter(settings.max_concurrency)
        self._specs: dict[tuple[str, ...], EnvironmentSpec] = {}
        self.events: EventSink | None = None  # set by the composition root
        # The execution role's credentials for a function's environments (IAM/STS; set by the
        # composition root). None from it: the role is unknown, environments get the server's keys.
        self.role_credentials: Callable[[FunctionConfig], RoleCredentials | None] | None = None
        self._spec_renewal: dict[tuple[str, ...], float] = {}

    def function_changed(self, name: str, qualifier: str | None = None) -> None:
        """Retire the environments a change made stale (all of a deleted function's, $LATEST's
        after an update, a deleted version's); an alias change retires nothing. Call on the event
        loop's thread."""
        if qualifier is None:
            prefix: tuple[str, ...] = (name,)
        elif qualifier == LATEST or qualifier.isdigit():
            prefix = (name, qualifier)
        else:
            return
        for key in [k for k in self._specs if k[: len(prefix)] == prefix]:
            del self._specs[key]
            self._spec_renewal.pop(key, None)
        self.pool.retire(prefix)

    # -- validation --------------------------------------------------------------------------

    def prepare(self, request: InvokeRequest) -> Prepared:
        ref = parse_function_ref(request.function, request.qualifier)
        config = self.functions.route(ref)  # an alias with weights picks its version here
        if request.invocation_type == InvocationType.EVENT:
            limit = self.settings.async_payload_limit
            if len(request.payload) > limit:
                raise RequestTooLarge(
                    f"{len(request.payload)} byte payload is too large for the Event invocation type "
                    f"(limit {limit} bytes)"
                )
        else:
            limit = self.settings.sync_payload_limit
            if len(request.payload) > limit:
                raise RequestTooLarge(f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
        payload = request.payload or b"{}"
        if len(payload) <= INLINE_JSON_CHECK_BYTES and not request.trusted_json:  # larger: off the event loop
            check_json(payload)
        client_context = None
        if request.client_context:
            client_context = _decode_client_context(request.client_context)
        arn = self.functions.arns.function(config.name, ref.qualifier)
        return Prepared(config=config, arn=arn, payload=payload, client_context=client_context)

    # -- running -----------------------------------------------------------------------------

    async def invoke(self, request: InvokeRequest) -> InvokeResult:
        prepared = self.prepare(request)
        if len(prepared.payload) > INLINE_JSON_CHECK_BYTES and not request.trusted_json:
            await asyncio.to_thread(check_json, prepared.payload)
        config = prepared.config
        if request.invocation_type == InvocationType.DRY_RUN:
            return InvokeResult(
                request_id=request.request_id or ids.request_id(),
                status=204,
                payload=b"",
                executed_version=config.version,
            )
        if request.invocation_type == InvocationType.EVENT:
            if self.events is None:
                raise InvalidParameterValue("InvocationType Event is not enabled on this server.")
            request_id = request.request_id or ids.request_id()
            # 202 only once the event is durably queued: it survives kill -9 from here on.
            await self.events.accept(request, prepared, request_id)
            return InvokeResult(request_id=request_id, status=202, payload=b"", executed_version=config.version)
        with self.limiter.lease(config.name):
            spec = await self._spec(config)
            request_id = request.request_id or ids.request_id()
            started = time.time()
            invocation = Invocation(
                request_id=request_id,
                payload=prepared.payload,
                deadline_ms=int(started * 1000) + config.timeout * 1000,
                invoked_function_arn=prepared.arn,
                client_context=prepared.client_context,
                trace_id=f"Root=1-{int(started):08x}-{ids.hex_id(24)};Parent={ids.hex_id(16)};Sampled=0",
            )
            async with self.pool.lease(spec) as environment:
                result = await environment.invoke(invocation)
        return await self._finish(config, request_id, started, result, request.tail_log)

    async def spec_for(self, config: FunctionConfig) -> EnvironmentSpec:
        """What environments of `config` start from (provisioned concurrency starts them ahead)."""
        return await self._spec(config)

    async def _spec(self, config: FunctionConfig) -> EnvironmentSpec:
        spec = self._specs.get(config.environment_key)
        if spec is not None and time.time() < self._spec_renewal.get(config.environment_key, float("inf")):
            return spec
        code_dir = await asyncio.to_thread(self.functions.code_dir, config)
        credentials = None
        if self.role_credentials is not None:
            credentials = await asyncio.to_thread(self.role_credentials, config)
        if credentials is not None:
            # New environments get fresh credentials an hour before these expire (the spec changes,
            # so the pool makes a new launch plan); running ones keep theirs.
            self._spec_renewal[config.environment_key] = credentials.expires - CREDENTIALS_RENEWAL_S
        spec = EnvironmentSpec(
            key=config.environment_key,
            function_name=config.name,
            version=config.version,
            handler=config.handler,
            runtime=config.runtime,
            interpreter=self.settings.interpreter_for(config.runtime)[0],
            code_dir=code_dir,
            memory_mb=config.memory_size,
            timeout_s=float(config.timeout),
            env_vars=function_env(config, self.settings, code_dir, credentials),
            preload=self.settings.preload,
            ephemeral_storage_mb=config.ephemeral_storage,
        )
        self._specs[config.environment_key] = spec
        return spec

    async def _finish(
        self, config: FunctionConfig, request_id: str, started: float, result: RunResult, tail: bool
    ) -> InvokeResult:
        error_type = result.error_type if result.outcome != Outcome.SUCCESS else None
        billed = metering.billed_ms(result.duration_ms, result.init_duration_ms)
        record = InvocationRecord(
            request_id=request_id,
            function=config.name,
            version=config.version,
            start=started,
            duration_ms=result.duration_ms,
            billed_ms=billed,
            memory_size=config.memory_size,
            max_memory_used_mb=result.max_memory_used_mb,
            cold=result.init_duration_ms is not None,
            init_duration_ms=result.init_duration_ms,
            outcome=result.outcome,
            error_type=error_type,
            log_stream=result.log_stream,
        )
        events = self._log_events(config, record, result, started)
        # Durable before acknowledged: the meter row and the log lines are committed (group
        # commit shares one transaction among concurrent invocations) before the caller hears back.
        await asyncio.gather(
            asyncio.wrap_future(self.logs.append_logs_nowait(config.log_group, result.log_stream, events)),
            asyncio.wrap_future(self.invocations.record_invocation_nowait(record)),
        )
        log_tail = None
        if tail:
            text = "".join(event.message + "\n" for event in events if not event.message.startswith("INIT_START"))
            log_tail = base64.b64encode(text.encode()[-self.settings.log_tail_bytes :]).decode()
        return InvokeResult(
            request_id=request_id,
            status=200,
            payload=result.payload,
            executed_version=config.version,
            function_error="Unhandled" if result.outcome != Outcome.SUCCESS else None,
            log_tail=log_tail,
        )

    def _log_events(
        self, config: FunctionConfig, record: InvocationRecord, result: RunResult, started: float
    ) -> list[LogEvent]:
        start_ms = int(started * 1000)
        end_ms = int(time.time() * 1000)
        lines: list[LogLine] = []
        if record.cold:
            version = f"{config.runtime.replace('python', 'python:')}.lamina"
            lines.append(
                LogLine(
                    start_ms,
                    f"INIT_START Runtime Version: {version}\tRuntime Version ARN: "
                    f"arn:aws:lambda:{self.settings.region}::runtime:lamina-{config.runtime}",
                )
            )
            lines.extend(result.init_logs)  # begins with the interpreter note when one applies
            # The invocation starts once init is over: keep START after the init output in time order.
            start_ms = max([start_ms, *(line.timestamp_ms for line in result.init_logs)])
        lines.append(LogLine(start_ms, metering.start_line(record.request_id, config.version)))
        lines.extend(result.logs)
        lines.append(LogLine(end_ms, metering.end_line(record.request_id)))
        lines.append(LogLine(end_ms, metering.report_line(record)))
        return [LogEvent(timestamp_ms=line.timestamp_ms, message=line.text, ingestion_ms=end_ms) for line in lines]

    def stats(self) -> dict[str, int]:
        return {"concurrent_invocations": self.limiter.in_use, **self.pool.stats()}


def check_json(payload: bytes) -> None:
    """Lambda refuses an Invoke payload that is not JSON, before running anything."""
    try:
        json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContent(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from None


def _decode_client_context(text: str) -> str:
    if len(text) > CLIENT_CONTEXT_LIMIT:
        raise InvalidParameterValue(f"Client context must be at most {CLIENT_CONTEXT_LIMIT} bytes, base64-encoded.")
    try:
        decoded = base64.b64decode(text, validate=True).decode()
        if not isinstance(json.loads(decoded), dict):
            raise ValueError("not an object")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameterValue("Client context must be a valid Base64-encoded JSON object.") from None
    return decoded
