"""EventInvokeConfigs: retry, age and destination settings per function, version or alias.

Kept in the store (durable) and cached here, since every event looks its config up. An
unqualified Put configures `$LATEST`, as AWS does (its FunctionArn comes back qualified).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from lamina.config import Settings
from lamina.errors import InvalidParameterValue, ResourceNotFound
from lamina.functions.names import FunctionRef
from lamina.functions.service import FunctionService
from lamina.invoke.asynchronous.destinations import ON_FAILURE, ON_SUCCESS, Destinations
from lamina.model.events import MAX_RETRIES_LIMIT, MIN_MAX_AGE, EventInvokeConfig
from lamina.model.function import LATEST
from lamina.store.events import EventStore

MAX_AGE_LIMIT = 21_600
UNSET = object()


@dataclass(frozen=True)
class ConfigChange:
    """The settings a Put or an Update names; UNSET = not named (an Update keeps the old value).
    A destination of "" removes it."""

    maximum_retry_attempts: object = UNSET
    maximum_event_age: object = UNSET
    on_success: object = UNSET
    on_failure: object = UNSET

    @property
    def empty(self) -> bool:
        return all(v is UNSET for v in (self.maximum_retry_attempts, self.maximum_event_age, self.on_success,
                                        self.on_failure))  # fmt: skip


class EventInvokeConfigs:
    def __init__(
        self, settings: Settings, store: EventStore, functions: FunctionService, destinations: Destinations
    ) -> None:
        self.settings = settings
        self.store = store
        self.functions = functions
        self.destinations = destinations
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], EventInvokeConfig | None] = {}

    def arn(self, config: EventInvokeConfig) -> str:
        return self.functions.arns.function(config.function, config.qualifier)

    def _target(self, name: str, qualifier: str | None) -> tuple[str, str]:
        """(name, qualifier key) of an existing function, version or alias (404 otherwise)."""
        self.functions.resolve(FunctionRef(name, qualifier))
        return name, qualifier or LATEST

    def not_found(self, name: str, qualifier: str) -> ResourceNotFound:
        return ResourceNotFound(
            f"The function {self.functions.arns.function(name, qualifier)} doesn't have an EventInvokeConfig"
        )

    # -- control plane (called from worker threads) -------------------------------------------

    def put(self, name: str, qualifier: str | None, change: ConfigChange) -> EventInvokeConfig:
        """Replace the config: settings not named are removed (AWS PutFunctionEventInvokeConfig)."""
        if change.empty:
            raise InvalidParameterValue("You must specify at least one of error handling or destination setup.")
        name, key = self._target(name, qualifier)
        base = EventInvokeConfig(function=name, qualifier=key, last_modified=time.time())
        return self._save(base, change, name)

    def update(self, name: str, qualifier: str | None, change: ConfigChange) -> EventInvokeConfig:
        """Merge the named settings into the existing config (AWS UpdateFunctionEventInvokeConfig)."""
        name, key = self._target(name, qualifier)
        current = self.store.get_event_config(name, key)
        if current is None:
            raise self.not_found(name, key)
        return self._save(current.with_changes(last_modified=time.time()), change, name)

    def _save(self, base: EventInvokeConfig, change: ConfigChange, name: str) -> EventInvokeConfig:
        values: dict[str, object] = {}
        if change.maximum_retry_attempts is not UNSET:
            retries = change.maximum_retry_attempts
            if retries is not None and not (isinstance(retries, int) and 0 <= retries <= MAX_RETRIES_LIMIT):
                raise InvalidParameterValue(f"MaximumRetryAttempts must be between 0 and {MAX_RETRIES_LIMIT}.")
            values["maximum_retry_attempts"] = retries
        if change.maximum_event_age is not UNSET:
            age = change.maximum_event_age
            if age is not None and not (isinstance(age, int) and MIN_MAX_AGE <= age <= MAX_AGE_LIMIT):
                raise InvalidParameterValue(
                    f"MaximumEventAgeInSeconds must be between {MIN_MAX_AGE} and {MAX_AGE_LIMIT}."
                )
            values["maximum_event_age"] = age
        for field, purpose, target in (("on_success", ON_SUCCESS, change.on_success),
                                       ("on_failure", ON_FAILURE, change.on_failure)):  # fmt: skip
            if target is UNSET:
                continue
            if target:
                self.destinations.validate_target(str(target), purpose, source=name)
            values[field] = str(target) if target else None
        config = base.with_changes(**values)
        with self._lock:
            self.store.put_event_config(config)
            self._cache[(config.function, config.qualifier)] = config
        return config

    def get(self, name: str, qualifier: str | None) -> EventInvokeConfig:
        name, key = self._target(name, qualifier)
        config = self.store.get_event_config(name, key)
        if config is None:
            raise self.not_found(name, key)
        return config

    def delete(self, name: str, qualifier: str | None) -> None:
        name, key = self._target(name, qualifier)
        with self._lock:
            if not self.store.delete_event_config(name, key):
                raise self.not_found(name, key)
            self._cache.pop((name, key), None)

    def list(self, name: str, marker: str | None, max_items: int | None) -> tuple[list[EventInvokeConfig], str | None]:
        self._target(name, None)
        configs = [c for c in self.store.list_event_configs(name) if not marker or c.qualifier > marker]
        limit = max_items or 50
        page = configs[:limit]
        return page, (page[-1].qualifier if len(configs) > limit else None)

    def forget(self, name: str, qualifier: str | None = None) -> None:
        """Drop the configs of a deleted function (qualifier None), version or alias."""
        with self._lock:
            self.store.delete_event_configs(name, qualifier)
            for key in [k for k in self._cache if k[0] == name and qualifier in (None, k[1])]:
                del self._cache[key]

    # -- data plane ---------------------------------------------------------------------------

    def effective(self, name: str, qualifier: str | None) -> EventInvokeConfig:
        """The config an event invoked as (name, qualifier) runs under; defaults when none is set."""
        key = (name, qualifier or LATEST)
        try:
            config = self._cache[key]
        except KeyError:
            with self._lock:
                config = self._cache[key] = self.store.get_event_config(*key)
        if config is None:
            return EventInvokeConfig(function=name, qualifier=key[1], last_modified=0.0)
        return config

    def max_age(self, config: EventInvokeConfig) -> float:
        """Seconds an event may wait: the config's, else the server's default (AWS: 6 h)."""
        if config.maximum_event_age is not None:
            return float(config.maximum_event_age)
        return self.settings.async_max_event_age_seconds
