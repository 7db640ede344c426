"""The contract of concurrency settings in a store: reserved concurrency per function and
provisioned concurrency configurations per version or alias.

Same rules as every store (store/base.py): thread-safe, synchronous, durable once a write returns.
Deleting a function (FunctionStore.delete_function) deletes its settings in the same transaction.
"""

from __future__ import annotations

from typing import Protocol

from lamina.model.concurrency import ProvisionedConfig


class ConcurrencyStore(Protocol):
    def put_reserved_concurrency(self, function: str, reserved: int) -> None:
        """Set the function's reserved concurrency; raises ResourceNotFound if the function does not
        exist (checked in the same transaction, so a racing delete leaves nothing behind)."""

    def get_reserved_concurrency(self, function: str) -> int | None: ...

    def delete_reserved_concurrency(self, function: str) -> bool:
        """False if the function had none."""

    def reserved_concurrencies(self) -> dict[str, int]:
        """Every function's reservation."""

    def put_provisioned_config(self, config: ProvisionedConfig) -> None:
        """Insert or replace; raises ResourceNotFound if the function does not exist."""

    def get_provisioned_config(self, function: str, qualifier: str) -> ProvisionedConfig | None: ...

    def delete_provisioned_config(self, function: str, qualifier: str) -> bool: ...

    def list_provisioned_configs(self, function: str | None = None) -> list[ProvisionedConfig]:
        """Ordered by (function, qualifier); every function's when `function` is None."""
