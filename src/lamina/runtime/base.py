"""Contracts of the runtime layer, as the invoke service uses them.

An *environment* is one sandboxed process that serves one invocation at a time and is reused while
warm. The *pool* owns environments per function version and hands them out as leases.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lamina.model.invocation import Outcome


class EnvironmentState(enum.StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


@dataclass(frozen=True)
class EnvironmentSpec:
    """Everything needed to start environments for one function version.

    `key` identifies interchangeable environments: a lease for a spec reuses an idle environment
    with the same key. The invoke layer computes `env_vars` (reserved AWS variables + the user's),
    so the runtime never needs to know about regions or credentials.
    """

    key: tuple[str, ...]
    function_name: str
    version: str
    handler: str
    runtime: str
    interpreter: str  # path of the Python that runs the code
    code_dir: Path  # unpacked package: becomes LAMBDA_TASK_ROOT, first on sys.path
    memory_mb: int
    timeout_s: float
    env_vars: Mapping[str, str]
    preload: tuple[str, ...] = ()
    layer_paths: tuple[Path, ...] = ()  # on sys.path after code_dir, before the runtime's own
    ephemeral_storage_mb: int = 512


@dataclass(frozen=True)
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int  # epoch ms, as Lambda-Runtime-Deadline-Ms
    invoked_function_arn: str
    client_context: str | None = None  # JSON text (decoded from X-Amz-Client-Context)
    cognito_identity: str | None = None  # JSON text
    trace_id: str | None = None


@dataclass(frozen=True)
class LogLine:
    timestamp_ms: int
    text: str  # without trailing newline


@dataclass
class RunResult:
    """What one invocation in one environment produced.

    For SUCCESS `payload` is the handler's JSON-encoded return value. For every other outcome
    `payload` is the AWS error document (`{"errorMessage","errorType",...}`) and `error_type` its
    type, e.g. Runtime.ImportModuleError, Sandbox.Timedout, Runtime.ExitError, Runtime.OutOfMemory,
    Function.ResponseSizeTooLarge, Runtime.MarshalError.
    """

    outcome: Outcome
    payload: bytes
    duration_ms: float
    max_memory_used_mb: int
    error_type: str | None = None
    init_duration_ms: float | None = None  # set on the first invocation of a cold environment
    logs: list[LogLine] = field(default_factory=list)  # this invocation's output
    init_logs: list[LogLine] = field(default_factory=list)  # the init phase's output (cold starts only)
    environment_id: str = ""
    log_stream: str = ""
    interpreter_note: str | None = None


class Environment(Protocol):
    id: str
    log_stream: str  # "YYYY/MM/DD/[$LATEST]<32 hex>"
    state: EnvironmentState

    async def invoke(self, invocation: Invocation) -> RunResult:
        """Run one invocation. Never raises for function failures: they come back as a RunResult.
        After TIMEOUT, CRASH or OUT_OF_MEMORY the environment is DEAD (killed with its children)."""


class Pool(Protocol):
    def lease(self, spec: EnvironmentSpec) -> AbstractAsyncContextManager[Environment]:
        """A warm idle environment for `spec.key`, or a new one forked from the zygote. On exit the
        environment returns to the idle set (or is discarded if DEAD or retired meanwhile)."""

    def retire(self, key_prefix: tuple[str, ...]) -> None:
        """Retire every environment whose key starts with `key_prefix`: idle ones are stopped now,
        busy ones when their lease ends."""

    def stats(self) -> dict[str, int]: ...

    async def close(self) -> None: ...
