"""The function control plane: create, read, resolve, update, delete, tag (versions and aliases:
functions/versions.py, a mixin of this class).

Synchronous and thread-safe (the edge calls it from a worker thread). Every change is durable in
the store before it returns, and every change notifies the listeners with what changed (the whole
function, $LATEST, a version or an alias) so warm environments of an old revision are retired:
Lambda cold-starts after any update, while published versions keep their own environments.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lamina.config import Settings
from lamina.errors import (
    InvalidParameterValue,
    PreconditionFailed,
    ResourceConflict,
    ResourceNotFound,
)
from lamina.functions import aliases as alias_rules
from lamina.functions import validation as check
from lamina.functions.names import Arns, FunctionRef, parse_function_ref
from lamina.functions.paging import decode_marker, encode_marker, page_size
from lamina.functions.timestamps import now_lambda_timestamp
from lamina.functions.versions import FunctionStores, VersionsAndAliases
from lamina.model.function import LATEST, AliasRecord, FunctionConfig, FunctionRecord, frozen_map
from lamina.store.base import CodeStore
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


class FunctionService(VersionsAndAliases):
    def __init__(self, settings: Settings, store: FunctionStores, code: CodeStore) -> None:
        self.settings = settings
        self.store = store
        self.code = code
        self.arns = Arns(settings.region, settings.account_id)
        self._lock = threading.RLock()  # serialises writes (read-modify-write) and cache fills
        self._listeners: list[Callable[[str, str | None], None]] = []
        # Every invoke resolves its function: serve it from memory. Writes go to the store first and
        # then refresh these caches, all under `_lock`, so a reader sees the committed record or the
        # one before it, never a record the store lacks. (One server process owns the store.)
        self._cache: dict[str, FunctionRecord] = {}
        self._versions: dict[tuple[str, str], FunctionConfig] = {}  # published: immutable
        self._aliases: dict[tuple[str, str], AliasRecord] = {}
        self._rng = random.Random()
        # Checks other rooms plug in (the composition root sets them): does this execution role
        # exist and trust Lambda (IAM strict mode), can this dead-letter target receive (destinations).
        self.role_check: Callable[[str], None] | None = None
        self.dead_letter_check: Callable[[str], None] | None = None

    def on_change(self, listener: Callable[[str, str | None], None]) -> None:
        """Call `listener(name, qualifier)` after a change: qualifier None when the function was
        deleted, "$LATEST" when its code or configuration changed, "N" when version N was deleted,
        or an alias name when that alias was created, updated or deleted."""
        self._listeners.append(listener)

    def _changed(self, name: str, qualifier: str | None) -> None:
        for listener in self._listeners:
            listener(name, qualifier)

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
        """The configuration a (possibly qualified) reference names; an alias names its primary version."""
        return self._resolve(ref, route=False)

    def route(self, ref: FunctionRef) -> FunctionConfig:
        """The configuration one invoke of `ref` runs: an alias with routing picks by weight."""
        return self._resolve(ref, route=True)

    def _resolve(self, ref: FunctionRef, route: bool) -> FunctionConfig:
        if ref.account is not None and ref.account != self.settings.account_id:
            raise self.not_found(ref.name, ref.qualifier)
        record = self._load(ref.name)
        if record is None:
            raise self.not_found(ref.name, ref.qualifier)
        qualifier = ref.qualifier
        if qualifier in (None, LATEST):
            return record.config
        if alias_rules.is_alias(qualifier):
            alias = self._load_alias(ref.name, qualifier)
            if alias is None:
                raise self.not_found(ref.name, qualifier)
            version = alias_rules.pick_version(alias, self._rng) if route else alias.function_version
            if version == LATEST:
                return record.config
            config = self._load_version(ref.name, version)
        else:
            config = self._load_version(ref.name, qualifier)
        if config is None:
            raise self.not_found(ref.name, qualifier)
        return config

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
        limit = page_size(max_items)
        rows = self.store.list_functions(after=decode_marker(marker), limit=limit + 1)
        next_marker = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_marker = encode_marker(rows[-1].config.name)
        return rows, next_marker

    def list_all_versions(
        self, marker: str | None = None, max_items: int | None = None
    ) -> tuple[list[FunctionConfig], str | None]:
        """ListFunctions with FunctionVersion=ALL: every function's $LATEST and published versions."""
        records, next_marker = self.list(marker, max_items)
        return [config for r in records for config in self.store.list_versions(r.config.name)], next_marker

    def zip_path(self, config: FunctionConfig) -> Path:
        return self.code.zip_path(sha256_hex_from_b64(config.code_sha256))

    def code_dir(self, config: FunctionConfig) -> Path:
        return self.code.unpacked(sha256_hex_from_b64(config.code_sha256))

    # -- writes ------------------------------------------------------------------------------

    def _check_references(self, role: str | None, dead_letter_target: str | None) -> None:
        if role is not None and self.role_check is not None:
            self.role_check(role)
        if dead_letter_target and self.dead_letter_check is not None:
            self.dead_letter_check(dead_letter_target)

    def _store_zip(self, data: bytes | None, operation: str) -> tuple[str, int]:
        """Validate (every entry read, limits checked) and store a package; (CodeSha256, size)."""
        if not data:
            raise InvalidParameterValue("Please provide a source for function code.")
        digest = self.code.validate_zip(data, operation)
        self.code.put_zip(data)
        return digest.sha256_b64, digest.size

    def create(self, draft: FunctionDraft) -> FunctionRecord:
        check.check_package_type(draft.package_type)
        runtime = check.check_runtime(draft.runtime, self.settings)
        handler = check.check_handler(draft.handler)
        if draft.layers:
            raise InvalidParameterValue("Layers are not supported by Lamina yet.")
        if len(draft.tags) > MAX_TAGS:
            raise InvalidParameterValue(f"Too many tags: at most {MAX_TAGS} per function")
        if self.store.get_function(draft.name) is not None:
            raise ResourceConflict(f"Function already exist: {draft.name}")
        self._check_references(draft.role, draft.dead_letter_target)
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
        self._changed(name, LATEST)
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
        self._check_references(change.role, change.dead_letter_target)

        def apply(current: FunctionRecord) -> FunctionRecord:
            old = current.config
            runtime = check.check_runtime(change.runtime, self.settings) if change.runtime is not None else old.runtime
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
        """The whole function (versions, aliases and all) or, with a qualifier, one version."""
        if qualifier == LATEST:
            raise InvalidParameterValue("Deletion of $LATEST version is not allowed.")
        if qualifier is not None:
            self._delete_version(name, qualifier)
            return
        with self._lock:
            self._cache.pop(name, None)
            self._forget(name)
            if not self.store.delete_function(name):
                raise self.not_found(name)
        self._changed(name, None)

    def _forget(self, name: str) -> None:
        for cache in (self._versions, self._aliases):
            for key in [k for k in cache if k[0] == name]:
                del cache[key]

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
