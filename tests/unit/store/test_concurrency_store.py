"""ConcurrencyStore: the same contract on SQLite and in memory."""

from __future__ import annotations

import pytest

from lamina.errors import ResourceNotFound
from lamina.model.concurrency import ProvisionedConfig
from lamina.store.sqlite import SqliteStore

from .conftest import record


def test_reserved_concurrency_round_trip(store):
    store.create_function(record("a"))
    store.create_function(record("b"))
    assert store.get_reserved_concurrency("a") is None
    store.put_reserved_concurrency("a", 5)
    store.put_reserved_concurrency("b", 0)
    store.put_reserved_concurrency("a", 7)
    assert store.get_reserved_concurrency("a") == 7 and store.get_reserved_concurrency("b") == 0
    assert store.reserved_concurrencies() == {"a": 7, "b": 0}
    assert store.delete_reserved_concurrency("a") is True
    assert store.delete_reserved_concurrency("a") is False
    assert store.reserved_concurrencies() == {"b": 0}
    with pytest.raises(ResourceNotFound):
        store.put_reserved_concurrency("missing", 1)


def test_provisioned_configs_round_trip(store):
    store.create_function(record("a"))
    store.create_function(record("b"))
    one = ProvisionedConfig("a", "1", 2, "2026-01-01T00:00:00.000+0000")
    live = ProvisionedConfig("a", "live", 3, "2026-01-01T00:00:01.000+0000")
    other = ProvisionedConfig("b", "4", 1, "2026-01-01T00:00:02.000+0000")
    for config in (live, one, other):
        store.put_provisioned_config(config)
    assert store.get_provisioned_config("a", "1") == one
    assert store.get_provisioned_config("a", "2") is None
    assert store.list_provisioned_configs("a") == [one, live]
    assert store.list_provisioned_configs() == [one, live, other]
    bigger = ProvisionedConfig("a", "1", 9, "2026-01-02T00:00:00.000+0000")
    store.put_provisioned_config(bigger)
    assert store.get_provisioned_config("a", "1") == bigger
    assert store.delete_provisioned_config("a", "1") is True
    assert store.delete_provisioned_config("a", "1") is False
    with pytest.raises(ResourceNotFound):
        store.put_provisioned_config(ProvisionedConfig("missing", "1", 1, "x"))


def test_deleting_a_function_deletes_its_settings(store):
    store.create_function(record("a"))
    store.create_function(record("b"))
    store.put_reserved_concurrency("a", 3)
    store.put_reserved_concurrency("b", 4)
    store.put_provisioned_config(ProvisionedConfig("a", "1", 2, "x"))
    store.put_provisioned_config(ProvisionedConfig("b", "1", 2, "x"))
    assert store.delete_function("a")
    assert store.reserved_concurrencies() == {"b": 4}
    assert [c.function for c in store.list_provisioned_configs()] == ["b"]


def test_settings_survive_a_reopen(tmp_path):
    store = SqliteStore.open(tmp_path / "lamina.db")
    store.create_function(record("a"))
    store.put_reserved_concurrency("a", 3)
    store.put_provisioned_config(ProvisionedConfig("a", "1", 2, "x"))
    store.close()
    again = SqliteStore.open(tmp_path / "lamina.db")
    assert again.reserved_concurrencies() == {"a": 3}
    assert again.list_provisioned_configs() == [ProvisionedConfig("a", "1", 2, "x")]
    again.close()
