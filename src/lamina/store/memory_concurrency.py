"""The in-memory twin of store/sqlite/concurrency.py, mixed into MemoryStore."""

from __future__ import annotations

import threading

from lamina.model.concurrency import ProvisionedConfig
from lamina.model.function import FunctionRecord
from lamina.store.base import function_not_found


class MemoryConcurrencyStore:
    _lock: threading.RLock
    _functions: dict[str, FunctionRecord]

    def __init__(self) -> None:
        self._reserved: dict[str, int] = {}
        self._provisioned: dict[tuple[str, str], ProvisionedConfig] = {}

    def put_reserved_concurrency(self, function: str, reserved: int) -> None:
        with self._lock:
            if function not in self._functions:
                raise function_not_found(function)
            self._reserved[function] = reserved

    def get_reserved_concurrency(self, function: str) -> int | None:
        with self._lock:
            return self._reserved.get(function)

    def delete_reserved_concurrency(self, function: str) -> bool:
        with self._lock:
            return self._reserved.pop(function, None) is not None

    def reserved_concurrencies(self) -> dict[str, int]:
        with self._lock:
            return dict(self._reserved)

    def put_provisioned_config(self, config: ProvisionedConfig) -> None:
        with self._lock:
            if config.function not in self._functions:
                raise function_not_found(config.function)
            self._provisioned[(config.function, config.qualifier)] = config

    def get_provisioned_config(self, function: str, qualifier: str) -> ProvisionedConfig | None:
        with self._lock:
            return self._provisioned.get((function, qualifier))

    def delete_provisioned_config(self, function: str, qualifier: str) -> bool:
        with self._lock:
            return self._provisioned.pop((function, qualifier), None) is not None

    def list_provisioned_configs(self, function: str | None = None) -> list[ProvisionedConfig]:
        with self._lock:
            return [c for key, c in sorted(self._provisioned.items()) if function is None or key[0] == function]

    def _drop_concurrency(self, function: str) -> None:
        """With the function (MemoryStore.delete_function, under its lock)."""
        self._reserved.pop(function, None)
        for key in [k for k in self._provisioned if k[0] == function]:
            del self._provisioned[key]
