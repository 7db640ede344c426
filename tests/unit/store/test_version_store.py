"""The VersionStore contract (published versions, aliases), against SqliteStore and MemoryStore alike."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from lamina.errors import PreconditionFailed, ResourceConflict, ResourceNotFound
from lamina.model.function import AliasRecord

from .conftest import config, record


def publish(store, number: int, latest_revision: str = "rev-1", **changes):
    version = config(version=str(number), revision_id=f"v{number}", **changes)
    store.create_version(version, latest_revision)
    return version


def test_versions_are_listed_after_latest_in_number_order(store):
    store.create_function(record())
    for n in range(1, 12):  # 10 and 11 sort after 9: numbers, not strings
        publish(store, n, memory_size=128 + n)
    assert [c.version for c in store.list_versions("fn")] == ["$LATEST", *[str(n) for n in range(1, 12)]]
    assert store.get_version("fn", "10").memory_size == 138
    assert store.get_version("fn", "$LATEST").version == "$LATEST"
    assert store.get_version("fn", "12") is None
    assert store.last_version("fn") == 11


def test_create_version_checks_latest_revision_and_the_next_number(store):
    store.create_function(record())
    with pytest.raises(PreconditionFailed):
        publish(store, 1, latest_revision="stale")
    with pytest.raises(ResourceConflict):
        publish(store, 2)  # 1 must come first
    publish(store, 1)
    with pytest.raises(ResourceConflict):
        publish(store, 1)
    with pytest.raises(ResourceNotFound):
        store.create_version(config(name="ghost", version="1"), "rev-1")
    assert [c.version for c in store.list_versions("fn")] == ["$LATEST", "1"]


def test_numbers_are_never_reused_after_deletes(store):
    store.create_function(record())
    publish(store, 1)
    publish(store, 2)
    assert store.delete_version("fn", "2")
    assert not store.delete_version("fn", "2")
    assert not store.delete_version("fn", "$LATEST")  # never through this door
    assert store.last_version("fn") == 2
    publish(store, 3)
    assert [c.version for c in store.list_versions("fn")] == ["$LATEST", "1", "3"]


def test_aliases_create_replace_with_revision_and_delete(store):
    store.create_function(record())
    live = AliasRecord("fn", "live", "1", "prod", MappingProxyType({"2": 0.25}), "a1")
    store.put_alias(live, expected_revision=None)
    assert store.get_alias("fn", "live") == live
    with pytest.raises(ResourceConflict):
        store.put_alias(live, expected_revision=None)
    moved = AliasRecord("fn", "live", "2", "prod", MappingProxyType({}), "a2")
    with pytest.raises(PreconditionFailed):
        store.put_alias(moved, expected_revision="not-a1")
    store.put_alias(moved, expected_revision="a1")
    assert store.get_alias("fn", "live") == moved
    with pytest.raises(ResourceNotFound):
        store.put_alias(AliasRecord("fn", "gone", "1", revision_id="x"), expected_revision="x")
    with pytest.raises(ResourceNotFound):
        store.put_alias(AliasRecord("ghost", "live", "1", revision_id="x"), expected_revision=None)
    store.put_alias(AliasRecord("fn", "beta", "$LATEST", revision_id="b1"), expected_revision=None)
    assert [a.name for a in store.list_aliases("fn")] == ["beta", "live"]
    assert store.delete_alias("fn", "beta") and not store.delete_alias("fn", "beta")
    assert [a.name for a in store.list_aliases("fn")] == ["live"]


def test_deleting_a_function_takes_its_versions_and_aliases(store):
    store.create_function(record())
    publish(store, 1)
    store.put_alias(AliasRecord("fn", "live", "1", revision_id="a1"), expected_revision=None)
    assert store.delete_function("fn")
    store.create_function(record())
    assert [c.version for c in store.list_versions("fn")] == ["$LATEST"]
    assert store.list_aliases("fn") == [] and store.get_alias("fn", "live") is None
    assert store.last_version("fn") == 0


def test_versions_survive_reopening(tmp_path):
    from lamina.store.sqlite import SqliteStore

    store = SqliteStore.open(tmp_path / "lamina.db")
    store.create_function(record())
    publish(store, 1, memory_size=512)
    store.put_alias(AliasRecord("fn", "live", "1", "", MappingProxyType({}), "a1"), expected_revision=None)
    store.close()
    store = SqliteStore.open(tmp_path / "lamina.db")
    try:
        assert store.get_version("fn", "1").memory_size == 512
        assert store.get_alias("fn", "live").function_version == "1"
        assert store.last_version("fn") == 1
    finally:
        store.close()
