"""Concurrency settings, the control plane: reserved concurrency per function and provisioned
concurrency configurations per published version or alias. Validates like Lambda, persists, and
keeps the invoke layer's ConcurrencyLimiter current. Starting the provisioned environments is the
invoke layer's job (invoke/provisioning.py).

Rules (../shared/reference/aws-lambda.md §1 "Reserved concurrency", §6; botocore's model):
- the account keeps `min_unreserved` executions for functions without a reservation (AWS: 100;
  Settings.min_unreserved_concurrency, default min(100, max_concurrency // 10)); provisioned
  concurrency of unreserved functions is taken from that unreserved pool too. Lowering a
  reservation (or a provisioned amount) is always allowed, so an account can get back in bounds;
- provisioned concurrency of a function with a reservation must fit inside the reservation, and a
  reservation cannot be set below the function's provisioned total;
- provisioned concurrency applies to a published version or an alias, never to $LATEST.

Thread-safe: one lock serialises validate-then-write, so two puts cannot both take the last units.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from lamina.errors import InvalidParameterValue, ProvisionedConfigNotFound, ResourceConflict, ResourceNotFound
from lamina.functions.names import FunctionRef
from lamina.functions.service import FunctionService
from lamina.functions.timestamps import now_lambda_timestamp
from lamina.model.concurrency import ProvisionedConfig
from lamina.model.function import LATEST
from lamina.store.concurrency import ConcurrencyStore

if TYPE_CHECKING:
    from lamina.config import Settings

UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
ALIAS_ON_PROVISIONED = "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
VERSION_UNDER_ALIAS = "Version is pointed by a Provisioned Concurrency alias"


class Limiter(Protocol):
    """What this module needs of invoke/concurrency.py's ConcurrencyLimiter."""

    def set_reserved(self, function: str, reserved: int | None) -> None: ...

    def set_provisioned(self, function: str, provisioned: int) -> None: ...

    def forget(self, function: str) -> None: ...


def min_unreserved(settings: Settings) -> int:
    if settings.min_unreserved_concurrency is not None:
        return settings.min_unreserved_concurrency
    return min(100, settings.max_concurrency // 10)


def is_alias(qualifier: str) -> bool:
    return qualifier != LATEST and not qualifier.isdigit()


class ConcurrencyService:
    def __init__(
        self, settings: Settings, functions: FunctionService, store: ConcurrencyStore, limiter: Limiter
    ) -> None:
        self.settings = settings
        self.functions = functions
        self.store = store
        self.limiter = limiter
        self._lock = threading.Lock()

    def load(self) -> None:
        """Give the limiter the stored settings (server start)."""
        with self._lock:
            for name, reserved in self.store.reserved_concurrencies().items():
                self.limiter.set_reserved(name, reserved)
            totals: dict[str, int] = {}
            for config in self.store.list_provisioned_configs():
                totals[config.function] = totals.get(config.function, 0) + config.requested
            for name, total in totals.items():
                self.limiter.set_provisioned(name, total)

    def function_deleted(self, name: str) -> None:
        """The store dropped the function's settings with it; drop the limiter's view too."""
        self.limiter.forget(name)

    # -- reads the lead wires into GetFunction / GetAccountSettings -----------------------------

    def reserved_for(self, name: str) -> int | None:
        """The function's ReservedConcurrentExecutions, None when it has none."""
        return self.store.get_reserved_concurrency(name)

    def unreserved_for_account(self) -> int:
        """GetAccountSettings' AccountLimit.UnreservedConcurrentExecutions: the account's
        executions minus every reservation."""
        return max(0, self.settings.max_concurrency - sum(self.store.reserved_concurrencies().values()))

    # -- reserved concurrency --------------------------------------------------------------------

    def put_reserved(self, name: str, reserved: int) -> int:
        if reserved < 0:
            raise InvalidParameterValue("ReservedConcurrentExecutions must be greater than or equal to 0.")
        self.functions.get(name)  # ResourceNotFound with the function's ARN
        with self._lock:
            current = self.store.get_reserved_concurrency(name)
            provisioned = sum(c.requested for c in self.store.list_provisioned_configs(name))
            if reserved < provisioned:
                raise InvalidParameterValue(
                    f"Specified ReservedConcurrentExecutions ({reserved}) for function is less than the "
                    f"function's provisioned concurrency ({provisioned})."
                )
            if current is None or reserved > current:
                floor = min_unreserved(self.settings)
                left = self._unreserved_left(excluding=name) - reserved
                if left < floor:
                    raise InvalidParameterValue(
                        "Specified ReservedConcurrentExecutions for function decreases account's "
                        f"UnreservedConcurrentExecution below its minimum value of [{floor}]."
                    )
            self.store.put_reserved_concurrency(name, reserved)
            self.limiter.set_reserved(name, reserved)
        return reserved

    def get_reserved(self, name: str) -> int | None:
        self.functions.get(name)
        return self.store.get_reserved_concurrency(name)

    def delete_reserved(self, name: str) -> None:
        self.functions.get(name)
        with self._lock:
            self.store.delete_reserved_concurrency(name)
            self.limiter.set_reserved(name, None)

    def _unreserved_left(self, excluding: str) -> int:
        """The account's executions left for others once every function but `excluding` has taken
        its reservation, or (unreserved ones) its provisioned concurrency."""
        reserved = self.store.reserved_concurrencies()
        taken = sum(n for name, n in reserved.items() if name != excluding)
        taken += sum(
            c.requested
            for c in self.store.list_provisioned_configs()
            if c.function != excluding and c.function not in reserved
        )
        return self.settings.max_concurrency - taken

    # -- provisioned concurrency -----------------------------------------------------------------

    def put_provisioned(self, name: str, qualifier: str | None, requested: int) -> ProvisionedConfig:
        if not qualifier or qualifier == LATEST:
            raise InvalidParameterValue(UNPUBLISHED)
        if requested < 1:
            raise InvalidParameterValue("ProvisionedConcurrentExecutions must be greater than or equal to 1.")
        version = self.functions.resolve(FunctionRef(name, qualifier)).version  # ResourceNotFound
        if version == LATEST:  # an alias of $LATEST
            raise InvalidParameterValue(UNPUBLISHED)
        with self._lock:
            others = [c for c in self.store.list_provisioned_configs(name) if c.qualifier != qualifier]
            for other in others:
                if self._version_of(name, other.qualifier) == version:
                    raise ResourceConflict(ALIAS_ON_PROVISIONED if is_alias(qualifier) else VERSION_UNDER_ALIAS)
            current = self.store.get_provisioned_config(name, qualifier)
            total = sum(c.requested for c in others) + requested
            reserved = self.store.get_reserved_concurrency(name)
            if reserved is not None:
                if total > reserved:
                    raise InvalidParameterValue(
                        "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution "
                        "for function"
                    )
            elif current is None or requested > current.requested:
                floor = min_unreserved(self.settings)
                if self._unreserved_left(excluding=name) - total < floor:
                    raise InvalidParameterValue(
                        "Specified ConcurrentExecutions for function decreases account's "
                        f"UnreservedConcurrentExecution below its minimum value of [{floor}]."
                    )
            config = ProvisionedConfig(name, qualifier, requested, now_lambda_timestamp())
            self.store.put_provisioned_config(config)
            self.limiter.set_provisioned(name, total)
        return config

    def get_provisioned(self, name: str, qualifier: str | None) -> ProvisionedConfig:
        self.functions.get(name)
        config = self.store.get_provisioned_config(name, qualifier or LATEST)
        if config is None:
            raise ProvisionedConfigNotFound("No Provisioned Concurrency Config found for this function")
        return config

    def list_provisioned(self, name: str) -> list[ProvisionedConfig]:
        self.functions.get(name)
        return self.store.list_provisioned_configs(name)

    def delete_provisioned(self, name: str, qualifier: str | None) -> None:
        self.functions.get(name)
        with self._lock:
            if not self.store.delete_provisioned_config(name, qualifier or LATEST):
                raise ProvisionedConfigNotFound("No Provisioned Concurrency Config found for this function")
            self._sync_provisioned(name)

    def drop_provisioned(self, name: str, qualifier: str) -> None:
        """Its version or alias is gone: so is the configuration (as on Lambda)."""
        with self._lock:
            if self.store.delete_provisioned_config(name, qualifier):
                self._sync_provisioned(name)

    def _sync_provisioned(self, name: str) -> None:
        self.limiter.set_provisioned(name, sum(c.requested for c in self.store.list_provisioned_configs(name)))

    def _version_of(self, name: str, qualifier: str) -> str | None:
        try:
            return self.functions.resolve(FunctionRef(name, qualifier)).version
        except ResourceNotFound:
            return None
