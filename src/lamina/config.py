"""Settings: every knob Lamina has, read once from `LAMINA_*` env vars and CLI flags.

Nothing below this module reads the environment: services get a `Settings` in their constructor.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lamina.errors import ConfigError

# AWS quotas (../shared/reference/aws-lambda.md §6), each overridable.
SYNC_PAYLOAD_LIMIT = 6_291_456
RESPONSE_PAYLOAD_LIMIT = 6_291_556
ZIPPED_CODE_LIMIT = 52_428_800
UNZIPPED_CODE_LIMIT = 262_144_000
CREATE_REQUEST_LIMIT = 69_905_067

PYTHON_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14")


def _default_concurrency() -> int:
    """One environment per 128 MB of RAM, capped at AWS's default account quota of 1,000."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 100
    return max(4, min(1000, pages // (128 * 1024 * 1024)))


def _reachable_by_anyone(path: Path) -> bool:
    """Whether an unprivileged user can run `path`: functions run under their own uid when the
    server is root, so an interpreter inside a private home (pyenv under /root) would force them
    to keep the server's uid."""
    try:
        real = path.resolve()
        if not real.stat().st_mode & 0o001:
            return False
        return all(parent.stat().st_mode & 0o001 for parent in real.parents)
    except OSError:
        return False


def discover_interpreters(search_path: str | None = None) -> dict[str, str]:
    """Map each Python runtime to an interpreter of that exact version.

    Candidates come from PATH (pyenv shims excluded: they re-dispatch on every start), then pyenv's
    versions, then the server's own interpreter for its own version. The first one any user can
    run wins; failing that, the first one found.
    """
    found: dict[str, str] = {}
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    host = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for runtime in PYTHON_RUNTIMES:
        candidates: list[Path] = []
        for directory in (search_path if search_path is not None else os.environ.get("PATH", "")).split(os.pathsep):
            if directory and "/shims" not in directory:
                candidates.append(Path(directory) / runtime)
        if pyenv.is_dir():
            candidates += sorted(pyenv.glob(f"{runtime[6:]}.*/bin/{runtime}"), reverse=True)
        if runtime == host:
            candidates.append(Path(sys.executable))
        usable = [c for c in candidates if c.is_file() and os.access(c, os.X_OK)]
        if usable:
            best = next((c for c in usable if _reachable_by_anyone(c)), usable[0])
            found[runtime] = str(best)
    return found


def _parse_map(text: str, what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ConfigError(f"{what}: expected KEY=VALUE[,KEY=VALUE...], got {item!r}")
        result[key.strip()] = value.strip()
    return result


@dataclass(frozen=True)
class Settings:
    """Every setting, with its env var in the comment. Build with `Settings.load()`."""

    host: str = "127.0.0.1"  # LAMINA_HOST
    port: int = 4566  # LAMINA_PORT (4566: where AWS emulators listen, so AWS_ENDPOINT_URL setups work)
    data_dir: Path = Path(".lamina")  # LAMINA_DATA_DIR
    region: str = "us-east-1"  # LAMINA_REGION
    account_id: str = "000000000000"  # LAMINA_ACCOUNT_ID
    # CreateFunction and UpdateFunctionConfiguration refuse a role that does not exist in IAM or
    # that Lambda may not assume (docs/iam.md); off, any role ARN is accepted.
    strict_roles: bool = False  # LAMINA_STRICT_ROLES=1
    access_key_id: str | None = None  # LAMINA_ACCESS_KEY_ID
    secret_access_key: str | None = None  # LAMINA_SECRET_ACCESS_KEY
    keep_alive_seconds: float = 600.0  # LAMINA_KEEP_ALIVE_SECONDS: idle environments are reaped after this
    max_concurrency: int = field(default_factory=_default_concurrency)  # LAMINA_MAX_CONCURRENCY
    # LAMINA_INTERPRETERS="python3.12=/usr/bin/python3.12,..." overrides the discovered map.
    interpreters: Mapping[str, str] = field(default_factory=discover_interpreters)
    # LAMINA_TOOLCHAINS="node=/opt/node/bin/node,ruby=...,java=..." overrides where the toolchains
    # of non-Python runtimes are (runtime/runtimes.py); default: found on PATH.
    toolchains: str = ""
    preload: tuple[str, ...] = ("boto3",)  # LAMINA_PRELOAD (comma-separated; empty for none)
    # LAMINA_PRELOAD_SERVICES: botocore models a zygote that preloads boto3 loads ahead, so a
    # handler's first boto3.client(<one of these>) is cheap (comma-separated; `none` for none).
    preload_services: tuple[str, ...] = (
        "s3", "dynamodb", "sqs", "sns", "lambda", "kinesis", "logs", "events", "sts", "secretsmanager", "ssm",
    )  # fmt: skip
    # LAMINA_MEMORY_ENFORCEMENT: auto (cgroup v2, else v1, else RSS watchdog) | cgroup | watchdog | off
    memory_enforcement: str = "auto"
    sync_payload_limit: int = SYNC_PAYLOAD_LIMIT  # LAMINA_SYNC_PAYLOAD_LIMIT
    async_payload_limit: int = 1_048_576  # LAMINA_ASYNC_PAYLOAD_LIMIT (Event invokes; 1 MB as AWS since 2025-10)
    # Asynchronous invocation: function errors are retried after base, then 2 * base (AWS: ~1 min,
    # ~2 min); throttles and system errors back off exponentially from 1 s up to the cap.
    async_retry_base_seconds: float = 60.0  # LAMINA_ASYNC_RETRY_BASE_SECONDS
    async_backoff_max_seconds: float = 300.0  # LAMINA_ASYNC_BACKOFF_MAX_SECONDS
    # How long an event may wait when its EventInvokeConfig sets no MaximumEventAgeInSeconds (AWS: 6 h).
    async_max_event_age_seconds: float = 21600.0  # LAMINA_ASYNC_MAX_EVENT_AGE_SECONDS
    # Event source mappings: a failing batch is retried after base, 2 x base, ... up to max; the
    # smallest MaximumRecordAgeInSeconds besides -1 (AWS: 60; tests lower it to run in seconds).
    mapping_retry_base_seconds: float = 1.0  # LAMINA_MAPPING_RETRY_BASE_SECONDS
    mapping_retry_max_seconds: float = 30.0  # LAMINA_MAPPING_RETRY_MAX_SECONDS
    mapping_min_record_age_seconds: int = 60  # LAMINA_MAPPING_MIN_RECORD_AGE_SECONDS
    # Processes that own the port and take stream ingest (PutRecords, PutRecord) off the server
    # process, forwarding everything else to it (api/edge_worker.py, decision 0110); 0: none, the
    # server listens itself. Costs a local hop (~0.1 ms) on every other call.
    edge_workers: int = 0  # LAMINA_EDGE_WORKERS
    # Concurrency: reservations must leave this many executions unreserved (AWS: 100); None = the
    # smaller of 100 and a tenth of max_concurrency, so small machines can still reserve.
    min_unreserved_concurrency: int | None = None  # LAMINA_MIN_UNRESERVED_CONCURRENCY
    # New execution environments a function may start per 10 s, refilled continuously (AWS: 1,000).
    scaling_rate_per_10s: int = 1000  # LAMINA_SCALING_RATE_PER_10S
    response_payload_limit: int = RESPONSE_PAYLOAD_LIMIT  # LAMINA_RESPONSE_PAYLOAD_LIMIT
    zipped_code_limit: int = ZIPPED_CODE_LIMIT  # LAMINA_ZIPPED_CODE_LIMIT
    unzipped_code_limit: int = UNZIPPED_CODE_LIMIT  # LAMINA_UNZIPPED_CODE_LIMIT
    max_timeout: int = 900  # LAMINA_MAX_TIMEOUT (seconds)
    max_memory: int = 10240  # LAMINA_MAX_MEMORY (MB)
    log_tail_bytes: int = 4096
    # How often events past their log group's retention (PutRetentionPolicy) are deleted.
    log_retention_sweep_seconds: float = 300.0  # LAMINA_LOG_RETENTION_SWEEP_SECONDS
    # Most log bytes kept per invocation; the rest is dropped with a marker line, so a
    # flood of output cannot fill the disk.
    max_log_bytes_per_invoke: int = 1_048_576  # LAMINA_MAX_LOG_BYTES_PER_INVOKE
    # Prices (us-east-1, x86) for `lamina cost`.
    price_per_request: float = 0.20 / 1_000_000  # LAMINA_PRICE_PER_REQUEST
    price_per_gb_second: float = 0.0000166667  # LAMINA_PRICE_PER_GB_SECOND
    free_requests: int = 1_000_000
    free_gb_seconds: float = 400_000.0

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def auth_required(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check_bind(self) -> None:
        """Refuse to expose an unauthenticated API beyond this machine."""
        if not self.is_loopback and not self.auth_required:
            raise ConfigError(
                f"refusing to listen on {self.host} without credentials: set LAMINA_ACCESS_KEY_ID "
                "and LAMINA_SECRET_ACCESS_KEY, or listen on 127.0.0.1"
            )

    def interpreter_for(self, runtime: str) -> tuple[str, bool]:
        """The interpreter for a Python runtime and whether it matches the runtime's version."""
        exact = self.interpreters.get(runtime)
        if exact:
            return exact, True
        if not runtime.startswith("python"):
            # Runtime API runtimes (runtime/runtimes.py) fork from the host Python's zygote, then
            # exec their bootstrap: they share its zygote and spares with the host's functions.
            host = f"python{sys.version_info[0]}.{sys.version_info[1]}"
            return self.interpreters.get(host) or sys.executable, False
        return sys.executable, False

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then `LAMINA_*` variables, then explicit overrides (CLI flags; None = unset)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        types = {f.name: f for f in dataclasses.fields(cls)}
        for name, f in types.items():
            raw = env.get(f"LAMINA_{name.upper()}")
            if raw is None or raw == "":
                continue
            values[name] = _convert(name, raw, f)
        for name, value in overrides.items():
            if value is not None:
                if name not in types:
                    raise ConfigError(f"unknown setting {name!r}")
                values[name] = Path(value) if name == "data_dir" else value
        # Absolute from here on: environments chdir into their code, so a relative data dir
        # would point somewhere else inside them.
        values["data_dir"] = Path(values.get("data_dir", cls.data_dir)).expanduser().resolve()  # type: ignore[arg-type]
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0-65535, got {self.port}")
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ConfigError("set both LAMINA_ACCESS_KEY_ID and LAMINA_SECRET_ACCESS_KEY, or neither")
        if not re.fullmatch(r"\d{12}", self.account_id):
            raise ConfigError(f"account id must be 12 digits, got {self.account_id!r}")
        if self.memory_enforcement not in ("auto", "cgroup", "watchdog", "off"):
            raise ConfigError("memory enforcement must be auto, cgroup, watchdog or off")
        if self.max_concurrency < 1:
            raise ConfigError("max concurrency must be at least 1")


def _parse_bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _convert(name: str, raw: str, f: dataclasses.Field) -> object:  # type: ignore[type-arg]
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    try:
        if name == "data_dir":
            return Path(raw)
        if name == "interpreters":
            merged = discover_interpreters()
            merged.update(_parse_map(raw, "LAMINA_INTERPRETERS"))
            return merged
        if name == "preload_services" and raw.strip().lower() == "none":
            return ()
        if name in ("preload", "preload_services"):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if kind == "bool":
            return _parse_bool(raw)
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        return raw
    except ValueError as exc:
        raise ConfigError(f"LAMINA_{name.upper()}={raw!r}: {exc}") from None
