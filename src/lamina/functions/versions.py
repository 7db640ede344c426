"""Published versions and aliases: the part of the control plane that snapshots $LATEST and names
versions. A mixin of FunctionService, sharing its write lock, caches and listeners.

Published versions are immutable, so they are cached for good once read; aliases are cached and
replaced under the lock on every change. Every change notifies the listeners with the qualifier
it touched (the version deleted, the alias changed), so only what went stale is retired.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType

from lamina.errors import InvalidParameterValue, PreconditionFailed, ResourceConflict, ResourceNotFound
from lamina.functions import aliases as alias_rules
from lamina.functions.names import Arns
from lamina.functions.paging import decode_marker, encode_marker, page_size
from lamina.functions.timestamps import now_lambda_timestamp
from lamina.model.function import LATEST, AliasRecord, FunctionConfig, FunctionRecord
from lamina.store.base import FunctionStore, VersionStore

# What a new version is compared on: everything but its identity and timestamps.
_UNVERSIONED = ("version", "revision_id", "last_modified", "description")


class FunctionStores(FunctionStore, VersionStore):
    """What the control plane needs of a store."""


def same_snapshot(a: FunctionConfig, b: FunctionConfig) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in FunctionConfig.__dataclass_fields__ if f not in _UNVERSIONED)


class VersionsAndAliases:
    # Provided by FunctionService.
    store: FunctionStores
    arns: Arns
    _lock: threading.RLock
    _versions: dict[tuple[str, str], FunctionConfig]
    _aliases: dict[tuple[str, str], AliasRecord]
    get: Callable[[str], FunctionRecord]
    not_found: Callable[..., ResourceNotFound]
    _changed: Callable[[str, str | None], None]

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

    def list_versions(
        self, name: str, marker: str | None = None, max_items: int | None = None
    ) -> tuple[list[FunctionConfig], str | None]:
        """ListVersionsByFunction: $LATEST, then published versions in ascending order."""
        self.get(name)
        limit = page_size(max_items)
        configs = self.store.list_versions(name)
        after = decode_marker(marker)
        if after is not None:  # the page's last version; versions after it (it may be deleted since)
            rank = -1 if after == LATEST else int(after) if after.isdigit() else None
            if rank is None:
                raise InvalidParameterValue(f"Invalid marker: {marker}")
            configs = [c for c in configs if c.version != LATEST and int(c.version) > rank]
        next_marker = encode_marker(configs[limit - 1].version) if len(configs) > limit else None
        return configs[:limit], next_marker

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
            if published and same_snapshot(published[-1], latest):
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
        limit = page_size(max_items)
        after = decode_marker(marker) or ""
        aliases = [
            a
            for a in self.store.list_aliases(name)
            if a.name > after and (function_version is None or function_version in (a.function_version, *a.routing))
        ]
        next_marker = encode_marker(aliases[limit - 1].name) if len(aliases) > limit else None
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
            record = AliasRecord(name, alias, version, description, MappingProxyType(weights), str(uuid.uuid4()))
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
                MappingProxyType(weights),
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
