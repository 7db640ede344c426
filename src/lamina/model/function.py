"""A function's configuration: the record every layer passes around."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

LATEST = "$LATEST"


class FunctionState(enum.StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    FAILED = "Failed"


class UpdateStatus(enum.StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    IN_PROGRESS = "InProgress"


def frozen_map(values: dict[str, str] | None = None) -> MappingProxyType[str, str]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class FunctionConfig:
    """One version of a function ($LATEST or a published number): code + configuration.

    Which interpreter runs it is not stored: it depends on the machine, so it is resolved from the
    Settings at each use (Settings.interpreter_for) and reported in RuntimeVersionConfig and logs.
    """

    name: str
    runtime: str
    role: str
    handler: str
    code_sha256: str  # base64 of the zip's SHA-256, as AWS reports CodeSha256
    code_size: int
    version: str = LATEST
    description: str = ""
    timeout: int = 3
    memory_size: int = 128
    environment: MappingProxyType[str, str] = field(default_factory=frozen_map)
    architectures: tuple[str, ...] = ("x86_64",)
    ephemeral_storage: int = 512
    package_type: str = "Zip"
    last_modified: str = ""  # "2020-04-10T19:06:32.563+0000", a string as Lambda sends it
    revision_id: str = ""
    state: FunctionState = FunctionState.ACTIVE
    state_reason: str = ""
    last_update_status: UpdateStatus = UpdateStatus.SUCCESSFUL
    tracing_mode: str = "PassThrough"
    logging: MappingProxyType[str, str] = field(default_factory=frozen_map)  # LoggingConfig
    dead_letter_target: str | None = None
    kms_key_arn: str | None = None

    def with_changes(self, **changes: Any) -> FunctionConfig:
        return replace(self, **changes)

    @property
    def log_group(self) -> str:
        return self.logging.get("LogGroup") or f"/aws/lambda/{self.name}"

    @property
    def environment_key(self) -> tuple[str, str, str]:
        """Identity of the warm environments this configuration may reuse.

        Any change to code or configuration produces a new revision id, so environments keyed by
        the old one are retired (Lambda cold-starts after every update).
        """
        return (self.name, self.version, self.revision_id)


@dataclass(frozen=True)
class FunctionRecord:
    """What the store keeps per function: its $LATEST config, tags and identity."""

    config: FunctionConfig
    tags: MappingProxyType[str, str] = field(default_factory=frozen_map)
    created: float = 0.0


@dataclass(frozen=True)
class AliasRecord:
    """A named pointer at a version, optionally splitting traffic with a second version."""

    function: str
    name: str
    function_version: str
    description: str = ""
    routing: MappingProxyType[str, float] = field(default_factory=lambda: MappingProxyType({}))
    revision_id: str = ""
