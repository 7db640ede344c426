"""The function control plane: create, read, update, delete, tag.

Synchronous and thread-safe (the edge calls it from a worker thread). Every change is durable in
the store before it returns, and every change to $LATEST notifies the listeners so warm
environments of the old revision are retired: Lambda cold-starts after any update.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lamina.config import Settings
from lamina.errors import (
    InvalidParameterValue,
    PreconditionFailed,
    ResourceConflict,
    ResourceNotFound,
)
from lamina.functions import validation as check
from lamina.functions.names import Arns, FunctionRef, parse_function_ref
from lamina.model.function import LATEST, FunctionConfig, FunctionRecord, frozen_map
from lamina.store.base import CodeStore, FunctionStore
from lamina.store.code import sha256_hex_from_b64

MAX_TAGS = 50


@dataclass(frozen=True)
class FunctionDraft:
    """CreateFunction's input, typed."""

    name: str
    role: str
    runtime: str | None
    handler: str | None
    zip_file: bytes | None
    description: str = ""
    timeout: int = 3
    memory_size: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)
    architectures: tuple[str, ...] | None = None
    ephemeral_storage: int = 512
    package_type: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    layers: tuple[str, ...] = ()
    tracing_mode: str | None = None
    logging: Mapping[str, str] = field(default_factory=dict)
    dead_letter_target: str | None = None
    kms_key_arn: str | None = None


@dataclass(frozen=True)
class ConfigChange:
    """UpdateFunctionConfiguration's input; None leaves a setting as it is."""

    role: str | None = None
    handler: str | None = None
    runtime: str | None = None
    description: str | None = None
    timeout: int | None = None
    memory_size: int | None = None
    environment: Mapping[str, str] | None = None  # replaces the whole map
    ephemeral_storage: int | None = None
    layers: tuple[str, ...] | None = None
    tracing_mode: str | None = None
    logging: Mapping[str, str] | None = None
    dead_letter_target: str | None = None
    kms_key_arn: str | None = None
    revision_id: str | None = None


def now_lambda_timestamp() -> str:
    """Lambda's LastModified: a string like 2020-04-10T19:06:32.563+0000."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


class FunctionService:
    def __init__(self, settings: Settings, store: FunctionStore, code: CodeStore) -> None:
        self.settings = settings
        self.store = store
        self.code = code
        self.arns = Arns(settings.region, settings.account_id)
        self._lock = threading.RLock()  # serialises writes (read-modify-write) and cache fills
        self._listeners: list[Callable[[str], None]] = []
        # Every invoke resolves its function: serve it from memory. Writes go to the store first and
        # then refresh this cache, all under `_lock`, so a reader sees the committed record or the
        # one before it, never a record the store lacks. (One server process owns the store.)
        self._cache: dict[str, FunctionRecord] = {}

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call `listener(name)` after any change to a function's $LATEST, or its deletion."""
        self._listeners.append(listener)

    def _changed(self, name: str) -> None:
        for listener in self._listeners:
            listener(name)

    # -- reads -------------------------------------------------------------------------------

    def not_found(self, name: str, qualifier: str | None = None) -> ResourceNotFound:
        return ResourceNotFound(f"Function not found: {self.arns.function(name, qualifier)}")

    def _load(self, name: str) -> FunctionRecord | None:
        record = self._cache.get(name)
        if record is not None:
            return record
        with self._lock:  # no write can land between the store read and the cache fill
            record = self._cache.get(name) or self.store.get_function(name)
            if record is not None:
                self._cache[name] = record
            return record

    def get(self, name: str) -> FunctionRecord:
        record = self._load(name)
        if record is None:
            raise self.not_found(name)
        return record

    def resolve(self, ref: FunctionRef) -> FunctionConfig:
        """The configuration a (possibly qualified) reference names."""
        if ref.account is not None and ref.account != self.settings.account_id:
            raise self.not_found(ref.name, ref.qualifier)
        record = self._load(ref.name)
        if record is None:
            raise self.not_found(ref.name, ref.qualifier)
        if ref.qualifier in (None, LATEST):
            return record.config
        # Published versions and aliases arrive with the versions issue.
        raise self.not_found(ref.name, ref.qualifier)

    def usage(self) -> tuple[int, int]:
        """(number of functions, total size of their code packages), for GetAccountSettings."""
        count = total = 0
        after = None
        while page := self.store.list_functions(after=after, limit=500):
            count += len(page)
            total += sum(record.config.code_size for record in page)
            after = page[-1].config.name
        return count, total

    def list(self, marker: str | None = None, max_items: int | None = None) -> tuple[list[FunctionRecord], str | None]:
        limit = 50 if max_items is None else max_items
        if not 1 <= limit <= 10000:
            raise InvalidParameterValue("MaxItems must be between 1 and 10000")
        after = None
        if marker:
            try:
                after = base64.b64decode(marker.encode(), altchars=b"-_", validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise InvalidParameterValue(f"Invalid marker: {marker}") from None
        limit = min(limit, 50)  # Lambda pages at most 50
        rows = self.store.list_functions(after=after, limit=limit + 1)
        next_marker = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_marker = base64.urlsafe_b64encode(rows[-1].config.name.encode()).decode()
        return rows, next_marker

    def zip_path(self, config: FunctionConfig) -> Path:
        return self.code.zip_path(sha256_hex_from_b64(config.code_sha256))

    def code_dir(self, config: FunctionConfig) -> Path:
        return self.code.unpacked(sha256_hex_from_b64(config.code_sha256))

    # -- writes ------------------------------------------------------------------------------

    def _store_zip(self, data: bytes | None, operation: str) -> tuple[str, int]:
        """Validate (every entry read, limits checked) and store a package; (CodeSha256, size)."""
        if not data:
            raise InvalidParameterValue("Please provide a source for function code.")
        digest = self.code.validate_zip(data, operation)
        self.code.put_zip(data)
        return digest.sha256_b64, digest.size

    def create(self, draft: FunctionDraft) -> FunctionRecord:
        check.check_package_type(draft.package_type)
        runtime = check.check_runtime(draft.runtime)
        handler = check.check_handler(draft.handler)
        if draft.layers:
            raise InvalidParameterValue("Layers are not supported by Lamina yet.")
        if len(draft.tags) > MAX_TAGS:
            raise InvalidParameterValue(f"Too many tags: at most {MAX_TAGS} per function")
        if self.store.get_function(draft.name) is not None:
            raise ResourceConflict(f"Function already exist: {draft.name}")
        code_sha, code_size = self._store_zip(draft.zip_file, "CreateFunction")
        config = FunctionConfig(
            name=draft.name,
            runtime=runtime,
            role=draft.role,
            handler=handler,
            code_sha256=code_sha,
            code_size=code_size,
            description=draft.description,
            timeout=check.check_timeout(draft.timeout, self.settings),
            memory_size=check.check_memory(draft.memory_size, self.settings),
            environment=frozen_map(check.check_environment(draft.environment)),
            architectures=check.check_architectures(list(draft.architectures or ())),
            ephemeral_storage=check.check_ephemeral_storage(draft.ephemeral_storage),
            package_type="Zip",
            last_modified=now_lambda_timestamp(),
            revision_id=str(uuid.uuid4()),
            tracing_mode=draft.tracing_mode or "PassThrough",
            logging=frozen_map(dict(draft.logging)),
            dead_letter_target=draft.dead_letter_target,
            kms_key_arn=draft.kms_key_arn,
        )
        record = FunctionRecord(config=config, tags=frozen_map(dict(draft.tags)), created=time.time())
        with self._lock:
            self.store.create_function(record)  # raises ResourceConflict on a concurrent create
            self._cache[record.config.name] = record
        return record

    def _update(
        self, name: str, change: Callable[[FunctionRecord], FunctionRecord], revision_id: str | None = None
    ) -> FunctionRecord:
        with self._lock:
            record = self.get(name)
            if revision_id is not None and revision_id != record.config.revision_id:
                raise PreconditionFailed(
                    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/"
                    "GetAlias API to retrieve the latest Revision Id"
                )
            updated = change(record)
            self.store.update_function(updated, expected_revision=record.config.revision_id)
            self._cache[name] = updated
        self._changed(name)
        return updated

    def update_code(
        self,
        name: str,
        zip_file: bytes | None,
        revision_id: str | None = None,
        dry_run: bool = False,
        architectures: list[str] | None = None,
    ) -> FunctionConfig:
        record = self.get(name)
        arch = check.check_architectures(architectures) if architectures else record.config.architectures
        if dry_run:  # validate and report, change nothing
            if not zip_file:
                raise InvalidParameterValue("Please provide a source for function code.")
            digest = self.code.validate_zip(zip_file, "UpdateFunctionCode")
            return record.config.with_changes(code_sha256=digest.sha256_b64, code_size=digest.size, architectures=arch)
        code_sha, code_size = self._store_zip(zip_file, "UpdateFunctionCode")

        def apply(current: FunctionRecord) -> FunctionRecord:
            config = current.config.with_changes(
                code_sha256=code_sha,
                code_size=code_size,
                architectures=arch,
                last_modified=now_lambda_timestamp(),
                revision_id=str(uuid.uuid4()),
            )
            return FunctionRecord(config=config, tags=current.tags, created=current.created)

        return self._update(name, apply, revision_id).config

    def update_configuration(self, name: str, change: ConfigChange) -> FunctionConfig:
        s = self.settings
        if change.layers:
            raise InvalidParameterValue("Layers are not supported by Lamina yet.")

        def apply(current: FunctionRecord) -> FunctionRecord:
            old = current.config
            runtime = check.check_runtime(change.runtime) if change.runtime is not None else old.runtime
            config = old.with_changes(
                role=change.role if change.role is not None else old.role,
                handler=check.check_handler(change.handler) if change.handler is not None else old.handler,
                runtime=runtime,
                description=change.description if change.description is not None else old.description,
                timeout=check.check_timeout(change.timeout, s) if change.timeout is not None else old.timeout,
                memory_size=(
                    check.check_memory(change.memory_size, s) if change.memory_size is not None else old.memory_size
                ),
                environment=(
                    frozen_map(check.check_environment(change.environment))
                    if change.environment is not None
                    else old.environment
                ),
                ephemeral_storage=(
                    check.check_ephemeral_storage(change.ephemeral_storage)
                    if change.ephemeral_storage is not None
                    else old.ephemeral_storage
                ),
                tracing_mode=change.tracing_mode or old.tracing_mode,
                logging=frozen_map(dict(change.logging)) if change.logging is not None else old.logging,
                dead_letter_target=(
                    change.dead_letter_target if change.dead_letter_target is not None else old.dead_letter_target
                )
                or None,
                kms_key_arn=change.kms_key_arn if change.kms_key_arn is not None else old.kms_key_arn,
                last_modified=now_lambda_timestamp(),
                revision_id=str(uuid.uuid4()),
            )
            return FunctionRecord(config=config, tags=current.tags, created=current.created)

        return self._update(name, apply, change.revision_id).config

    def delete(self, name: str, qualifier: str | None = None) -> None:
        if qualifier not in (None, LATEST):
            raise self.not_found(name, qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValue("Deletion of $LATEST version is not allowed.")
        with self._lock:
            self._cache.pop(name, None)
            if not self.store.delete_function(name):
                raise self.not_found(name)
        self._changed(name)

    # -- tags --------------------------------------------------------------------------------

    def _function_from_arn(self, arn: str) -> str:
        ref = parse_function_ref(arn)
        if not arn.startswith("arn:"):
            raise InvalidParameterValue(f"Invalid ARN: {arn}")
        if ref.qualifier is not None:
            raise InvalidParameterValue("Tags are not supported on function versions or aliases.")
        return ref.name

    def list_tags(self, arn: str) -> dict[str, str]:
        return dict(self.get(self._function_from_arn(arn)).tags)

    def tag(self, arn: str, tags: Mapping[str, str]) -> None:
        name = self._function_from_arn(arn)

        def apply(current: FunctionRecord) -> FunctionRecord:
            merged = {**current.tags, **tags}
            if len(merged) > MAX_TAGS:
                raise InvalidParameterValue(f"Too many tags: at most {MAX_TAGS} per function")
            return FunctionRecord(config=current.config, tags=frozen_map(merged), created=current.created)

        self._update_tags(name, apply)

    def untag(self, arn: str, keys: list[str]) -> None:
        name = self._function_from_arn(arn)

        def apply(current: FunctionRecord) -> FunctionRecord:
            kept = {k: v for k, v in current.tags.items() if k not in set(keys)}
            return FunctionRecord(config=current.config, tags=frozen_map(kept), created=current.created)

        self._update_tags(name, apply)

    def _update_tags(self, name: str, apply: Callable[[FunctionRecord], FunctionRecord]) -> None:
        # Tags are not part of the code/config revision: warm environments stay.
        with self._lock:
            record = self.get(name)
            updated = apply(record)
            self.store.update_function(updated, expected_revision=record.config.revision_id)
            self._cache[name] = updated
