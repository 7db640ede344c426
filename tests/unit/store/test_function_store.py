"""The FunctionStore contract, against SqliteStore and MemoryStore alike."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from lamina.errors import InvalidParameterValue, PreconditionFailed, ResourceConflict, ResourceNotFound
from lamina.model.function import FunctionState, UpdateStatus

from .conftest import record


def test_create_then_get_restores_the_exact_record(store):
    original = record(
        tags={"team": "data", "cost-center": "42"},
        created=1712345678.123456,
        environment=MappingProxyType({"A": "1", "UNICODE": "é✓"}),
        logging=MappingProxyType({"LogGroup": "/custom/group", "LogFormat": "JSON"}),
        architectures=("arm64",),
        state=FunctionState.PENDING,
        last_update_status=UpdateStatus.IN_PROGRESS,
        dead_letter_target="arn:aws:sqs:us-east-1:000000000000:dlq",
        timeout=900,
        memory_size=10240,
    )
    store.create_function(original)
    got = store.get_function("fn")
    assert got == original
    assert type(got.config.state) is FunctionState
    assert type(got.config.last_update_status) is UpdateStatus
    assert type(got.config.environment) is MappingProxyType
    assert type(got.config.logging) is MappingProxyType
    assert type(got.tags) is MappingProxyType
    assert type(got.config.architectures) is tuple
    assert got.config.kms_key_arn is None


def test_get_missing_is_none(store):
    assert store.get_function("nope") is None


def test_create_twice_conflicts_with_aws_message(store):
    store.create_function(record())
    with pytest.raises(ResourceConflict) as exc:
        store.create_function(record(handler="other.handler"))
    assert exc.value.message == "Function already exist: fn"
    assert store.get_function("fn").config.handler == "app.handler"


def test_only_latest_configs_are_function_records(store):
    with pytest.raises(InvalidParameterValue):
        store.create_function(record(version="1"))
    assert store.get_function("fn") is None


def test_update_replaces_config_and_tags(store):
    store.create_function(record(tags={"a": "1"}))
    store.update_function(record(tags={"b": "2"}, memory_size=512, revision_id="rev-2"))
    got = store.get_function("fn")
    assert got.config.memory_size == 512 and got.config.revision_id == "rev-2"
    assert dict(got.tags) == {"b": "2"}


def test_update_compares_and_sets_the_revision(store):
    store.create_function(record(revision_id="rev-1"))
    store.update_function(record(revision_id="rev-2", timeout=10), expected_revision="rev-1")
    with pytest.raises(PreconditionFailed) as exc:
        store.update_function(record(revision_id="rev-3", timeout=20), expected_revision="rev-1")
    assert exc.value.message == (
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
    )
    got = store.get_function("fn").config
    assert (got.revision_id, got.timeout) == ("rev-2", 10)


def test_update_missing_is_not_found(store):
    with pytest.raises(ResourceNotFound) as exc:
        store.update_function(record())
    assert exc.value.message == "Function not found: fn"


def test_concurrent_compare_and_set_lets_exactly_one_win(store):
    from concurrent.futures import ThreadPoolExecutor

    store.create_function(record(revision_id="rev-0"))

    def attempt(i: int) -> bool:
        try:
            store.update_function(record(revision_id=f"rev-{i + 1}"), expected_revision="rev-0")
        except PreconditionFailed:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(attempt, range(16)))
    assert sum(wins) == 1
    assert store.get_function("fn").config.revision_id == f"rev-{wins.index(True) + 1}"


def test_delete(store):
    store.create_function(record())
    assert store.delete_function("fn") is True
    assert store.get_function("fn") is None
    assert store.delete_function("fn") is False
    store.create_function(record(handler="new.handler"))  # the name is free again
    assert store.get_function("fn").config.handler == "new.handler"


def test_list_is_ordered_by_name_and_pages(store):
    names = ["b", "a", "c-1", "C", "a_2", "z", "m"]
    for name in names:
        store.create_function(record(name))
    expected = sorted(names)
    assert [r.config.name for r in store.list_functions()] == expected
    pages, after = [], None
    while page := store.list_functions(after=after, limit=3):
        pages.append([r.config.name for r in page])
        after = page[-1].config.name
    assert pages == [expected[0:3], expected[3:6], expected[6:]]
    assert store.list_functions(limit=0) == []
    assert store.list_functions(after="z") == []


def test_delete_keeps_history(store):
    from lamina.store.base import LogEvent

    from .conftest import invocation

    store.create_function(record())
    store.record_invocation_nowait(invocation("fn")).result(timeout=10)
    store.append_logs_nowait("/aws/lambda/fn", "s", [LogEvent(1, "line")]).result(timeout=10)
    store.delete_function("fn")
    assert len(store.list_invocations(function="fn")) == 1
    assert len(store.get_log_events("/aws/lambda/fn")) == 1
