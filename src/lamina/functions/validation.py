"""The service-level limits the model does not express (or expresses wider than Lambda enforces).

Model constraints (patterns, enum membership, min/max) are checked at the edge from botocore's
model; here live Lambda's own rules: 900 s and 10,240 MB for standard functions, 4 KB of
environment, reserved variable names, supported runtimes. Messages are Lambda's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from lamina.config import PYTHON_RUNTIMES, Settings
from lamina.errors import InvalidParameterValue
from lamina.runtime import runtimes

# AWS sets these itself; CreateFunction/UpdateFunctionConfiguration reject them.
RESERVED_ENV = frozenset(
    {
        "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    }
)  # fmt: skip
ENV_LIMIT_BYTES = 4096
_ENV_KEY = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")
DEPRECATED_PYTHON = ("python2.7", "python3.6", "python3.7", "python3.8")


def check_runtime(runtime: str | None, settings: Settings | None = None) -> str:
    """A runtime Lamina knows and can run here (a missing toolchain is named, never a hang at invoke)."""
    if runtime is not None and runtimes.uses_runtime_api(runtime):
        problem = runtimes.missing(runtime, settings) if settings is not None else None
        if problem is not None:
            raise InvalidParameterValue(problem)
        return runtime
    if not runtime:
        raise InvalidParameterValue(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages."
        )
    if runtime in DEPRECATED_PYTHON:
        raise InvalidParameterValue(
            f"The runtime parameter of {runtime} is no longer supported for creating or updating AWS Lambda "
            "functions. We recommend you use a supported runtime while creating or updating functions."
        )
    if runtime not in PYTHON_RUNTIMES:
        raise InvalidParameterValue(
            f"Runtime {runtime} is not supported by Lamina yet: supported runtimes are {', '.join(runtimes.CATALOGUE)}."
        )
    return runtime


def check_handler(handler: str | None) -> str:
    if not handler:
        raise InvalidParameterValue(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages."
        )
    return handler


def check_timeout(timeout: int, settings: Settings) -> int:
    if not 1 <= timeout <= settings.max_timeout:
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{timeout}' at 'timeout' failed to satisfy constraint: "
            f"Member must have value less than or equal to {settings.max_timeout}"
            if timeout > 0
            else f"1 validation error detected: Value '{timeout}' at 'timeout' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1"
        )
    return timeout


def check_memory(memory: int, settings: Settings) -> int:
    if memory < 128:
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{memory}' at 'memorySize' failed to satisfy constraint: "
            "Member must have value greater than or equal to 128"
        )
    if memory > settings.max_memory:
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{memory}' at 'memorySize' failed to satisfy constraint: "
            f"Member must have value less than or equal to {settings.max_memory}"
        )
    return memory


def check_environment(variables: Mapping[str, str]) -> dict[str, str]:
    reserved = sorted(k for k in variables if k in RESERVED_ENV)
    if reserved:
        raise InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the environment variables you "
            "have provided contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {', '.join(reserved)}"
        )
    for key, value in variables.items():
        if not _ENV_KEY.fullmatch(key):
            raise InvalidParameterValue(
                f"1 validation error detected: Value '{key}' at 'environment.variables' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+"
            )
        if not isinstance(value, str):
            raise InvalidParameterValue(f"Environment variable {key} must be a string")
    measured = json.dumps(dict(variables), separators=(",", ":"))
    if len(measured.encode()) > ENV_LIMIT_BYTES:
        raise InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the environment variables you "
            "have provided exceeded the 4KB limit. String measured: " + measured
        )
    return dict(variables)


def check_architectures(architectures: list[str] | None) -> tuple[str, ...]:
    if not architectures:
        return ("x86_64",)
    if len(architectures) != 1 or architectures[0] not in ("x86_64", "arm64"):
        raise InvalidParameterValue(
            "1 validation error detected: Value '"
            + json.dumps(architectures)
            + "' at 'architectures' failed to satisfy constraint: Member must have length less than or "
            "equal to 1, Member must satisfy constraint: "
            "[Member must satisfy enum value set: [x86_64, arm64]]"
        )
    return (architectures[0],)


def check_ephemeral_storage(size: int) -> int:
    if not 512 <= size <= 10240:
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{size}' at 'ephemeralStorage.size' failed to satisfy "
            "constraint: Member must have value between 512 and 10240"
        )
    return size


def check_package_type(package_type: str | None) -> str:
    if package_type not in (None, "Zip"):
        raise InvalidParameterValue(
            "Lamina runs Zip packages; container images (PackageType Image) are not supported yet."
        )
    return "Zip"
