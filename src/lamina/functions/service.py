"""The function control plane: create, read, update, delete, tag, publish versions, aliases.

Synchronous and thread-safe (the edge calls it from a worker thread). Every change is durable in
the store before it returns, and every change notifies the listeners with what changed (the whole
function, $LATEST, a version or an alias) so warm environments of an old revision are retired:
Lambda cold-starts after any update, while published versions keep their own environments.
"""

from __future__ import annotations

import base64
import random
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
from lamina.functions import aliases as alias_rules
from lamina.functions import validation as check
from lamina.functions.names import Arns, FunctionRef, parse_function_ref
from lamina.model.function import LATEST, AliasRecord, FunctionConfig, FunctionRecord, frozen_map
from lamina.store.base import CodeStore, FunctionStore, VersionStore
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


def _same_snapshot(a: FunctionConfig, b: FunctionConfig) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in FunctionConfig.__dataclass_fields__ if f not in _UNVERSIONED)


def now_lambda_timestamp() -> str:
    """Lambda's LastModified: a string like 2020-04-10T19:06:32.563+0000."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


class FunctionStores(FunctionStore, VersionStore):
    """What the control plane needs of a store."""


# What a new version is compared on: everything but its identity and timestamps.
_UNVERSIONED = ("version", "revision_id", "last_modified", "description")
MAX_PAGE = 50


def _encode_marker(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode_marker(marker: str | None) -> str | None:
    if not marker:
        return None
    try:
        return base64.b64decode(marker.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameterValue(f"Invalid marker: {marker}") from None


def _page_size(max_items: int | None) -> int:
    limit = MAX_PAGE if max_items is None else max_items
    if not 1 <= limit <= 10000:
        raise InvalidParameterValue("MaxItems must be between 1 and 10000")
    return min(limit, MAX_PAGE)  # Lambda pages at most 50


class FunctionService:
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

    def _load_version(self, name: str, version: str) -> FunctionConfig | None:
        config = self._versions.get((name, version))
        if config is not None:
            return config
        with self._lock:
            config = self._versions.get((name, version)) or self.store.get_version(name, version)
            if config is not None and config.version != LATEST:
                self._versions[(name, version)] = config
            return config

    def _load_alias(self, name: str, alias: str) -> AliasRecord | None:
        record = self._aliases.get((name, alias))
        if record is not None:
            return record
        with self._lock:
            record = self._aliases.get((name, alias)) or self.store.get_alias(name, alias)
            if record is not None:
                self._aliases[(name, alias)] = record
            return record

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
        limit = _page_size(max_items)
        rows = self.store.list_functions(after=_decode_marker(marker), limit=limit + 1)
        next_marker = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_marker = _encode_marker(rows[-1].config.name)
        return rows, next_marker

    def list_all_versions(
        self, marker: str | None = None, max_items: int | None = None
    ) -> tuple[list[FunctionConfig], str | None]:
        """ListFunctions with FunctionVersion=ALL: every function's $LATEST and published versions."""
        records, next_marker = self.list(marker, max_items)
        return [config for r in records for config in self.store.list_versions(r.config.name)], next_marker

    def list_versions(
        self, name: str, marker: str | None = None, max_items: int | None = None
    ) -> tuple[list[FunctionConfig], str | None]:
        """ListVersionsByFunction: $LATEST, then published versions in ascending order."""
        self.get(name)
        limit = _page_size(max_items)
        configs = self.store.list_versions(name)
        after = _decode_marker(marker)
        if after is not None:
            order = [c.version for c in configs]
            configs = configs[order.index(after) + 1 :] if after in order else [
                c for c in configs if c.version != LATEST and int(c.version) > int(after if after.isdigit() else 0)
            ]  # fmt: skip
        next_marker = _encode_marker(configs[limit - 1].version) if len(configs) > limit else None
        return configs[:limit], next_marker

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
        runtime = check.check_runtime(draft.runtime)
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

    def _delete_version(self, name: str, version: str) -> None:
        if alias_rules.is_alias(version):
            raise InvalidParameterValue(
                f"Deletion of an alias through DeleteFunction is not supported: use DeleteAlias for {version}."
            )
        with self._lock:
            self.get(name)
            users = [a.name for a in self.store.list_aliases(name) if version in (a.function_version, *a.routing)]
            if users:
                raise ResourceConflict(
                    f"Unable to delete version because the following aliases reference it: [{', '.join(users)}]"
                )
            self._versions.pop((name, version), None)
            if not self.store.delete_version(name, version):
                raise self.not_found(name, version)
        self._changed(name, version)

    # -- versions ----------------------------------------------------------------------------

    def publish(
        self, name: str, code_sha256: str | None = None, description: str | None = None, revision_id: str | None = None
    ) -> FunctionConfig:
        """PublishVersion: snapshot $LATEST as the next number, unless it is unchanged since the
        newest published version (then that version is returned, as Lambda does)."""
        with self._lock:
            latest = self.get(name).config
            if revision_id is not None and revision_id != latest.revision_id:
                raise PreconditionFailed(
                    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/"
                    "GetAlias API to retrieve the latest Revision Id"
                )
            if code_sha256 and code_sha256 != latest.code_sha256:
                raise PreconditionFailed(
                    f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
                    f"({latest.code_sha256}). Please try again with the current CodeSHA256."
                )
            published = [c for c in self.store.list_versions(name) if c.version != LATEST]
            if published and _same_snapshot(published[-1], latest):
                return published[-1]
            config = latest.with_changes(
                version=str(self.store.last_version(name) + 1),
                description=latest.description if description is None else description,
                last_modified=now_lambda_timestamp(),
                revision_id=str(uuid.uuid4()),
            )
            self.store.create_version(config, latest_revision=latest.revision_id)
            self._versions[(name, config.version)] = config
            return config

    # -- aliases -----------------------------------------------------------------------------

    def alias_not_found(self, name: str, alias: str) -> ResourceNotFound:
        return ResourceNotFound(f"Cannot find alias arn: {self.arns.function(name, alias)}")

    def get_alias(self, name: str, alias: str) -> AliasRecord:
        self.get(name)
        record = self._load_alias(name, alias)
        if record is None:
            raise self.alias_not_found(name, alias)
        return record

    def list_aliases(
        self, name: str, function_version: str | None = None, marker: str | None = None, max_items: int | None = None
    ) -> tuple[list[AliasRecord], str | None]:
        self.get(name)
        limit = _page_size(max_items)
        after = _decode_marker(marker) or ""
        aliases = [
            a
            for a in self.store.list_aliases(name)
            if a.name > after and (function_version is None or function_version in (a.function_version, *a.routing))
        ]
        next_marker = _encode_marker(aliases[limit - 1].name) if len(aliases) > limit else None
        return aliases[:limit], next_marker

    def _check_target(self, name: str, version: str, routing: Mapping[str, float]) -> dict[str, float]:
        """The alias's versions exist; weights are valid; both versions share role and DLQ."""
        weights = alias_rules.check_routing(version, routing)
        configs = []
        for v in (version, *weights):
            config = self.get(name).config if v == LATEST else self._load_version(name, v)
            if config is None:
                raise self.not_found(name, v)
            configs.append(config)
        if len({(c.role, c.dead_letter_target) for c in configs}) > 1:
            raise InvalidParameterValue(
                "The versions of an alias with routing must have the same role and the same DeadLetterConfig."
            )
        return weights

    def create_alias(
        self, name: str, alias: str, version: str, description: str = "", routing: Mapping[str, float] | None = None
    ) -> AliasRecord:
        alias_rules.check_alias_name(alias)
        with self._lock:
            self.get(name)
            if self._load_alias(name, alias) is not None:
                raise ResourceConflict(f"Alias already exists: {self.arns.function(name, alias)}")
            weights = self._check_target(name, version, routing or {})
            record = AliasRecord(name, alias, version, description, frozen_map(weights), str(uuid.uuid4()))  # type: ignore[arg-type]
            self.store.put_alias(record, expected_revision=None)
            self._aliases[(name, alias)] = record
        self._changed(name, alias)
        return record

    def update_alias(
        self,
        name: str,
        alias: str,
        version: str | None = None,
        description: str | None = None,
        routing: Mapping[str, float] | None = None,
        revision_id: str | None = None,
    ) -> AliasRecord:
        """UpdateAlias: None leaves a setting as it is; routing {} clears the weights."""
        with self._lock:
            current = self.get_alias(name, alias)
            if revision_id is not None and revision_id != current.revision_id:
                raise PreconditionFailed(
                    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/"
                    "GetAlias API to retrieve the latest Revision Id"
                )
            target = version if version is not None else current.function_version
            weights = self._check_target(name, target, current.routing if routing is None else routing)
            record = AliasRecord(
                name,
                alias,
                target,
                current.description if description is None else description,
                frozen_map(weights),  # type: ignore[arg-type]
                str(uuid.uuid4()),
            )
            self.store.put_alias(record, expected_revision=current.revision_id)
            self._aliases[(name, alias)] = record
        self._changed(name, alias)
        return record

    def delete_alias(self, name: str, alias: str) -> None:
        with self._lock:
            self.get(name)
            self._aliases.pop((name, alias), None)
            if not self.store.delete_alias(name, alias):
                raise self.alias_not_found(name, alias)
        self._changed(name, alias)

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
