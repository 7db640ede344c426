"""The control plane: validation with Lambda's errors, duplicates, transitional states, listing."""

from __future__ import annotations

import time

import pytest

from lamina.errors import InvalidParameterValue, ResourceConflict, ResourceInUse, ResourceNotFound
from lamina.model.mappings import MappingState
from lamina.sources.mappings import MappingChange
from tests.unit.sources.mappings.harness import FUNCTION_ARN, STREAM_ARN, Harness


@pytest.fixture
def h(tmp_path) -> Harness:
    return Harness(tmp_path)  # the engine is not started: mappings stay in their transitional state


def test_create_answers_creating_with_aws_defaults_and_a_checkpoint_per_shard(h):
    config = h.create()
    assert config.state is MappingState.CREATING and config.state_reason == "USER_INITIATED"
    assert (config.batch_size, config.window_s, config.parallelization, config.max_retries,
            config.max_record_age_s, config.bisect, config.enabled) == (100, 0, 1, -1, -1, False, True)  # fmt: skip
    assert len(config.uuid) == 36 and h.service.arn(config.uuid).endswith(f":event-source-mapping:{config.uuid}")
    assert [c.shard for c in h.store.checkpoints(config.uuid)] == ["shardId-000000000000"]


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        (None, "Unrecognized event source"),
        ("arn:aws:sqs:us-east-1:000000000000:q", "Unsupported event source"),
        ("arn:aws:kinesis:us-east-1:000000000000:stream/missing", "Stream not found: arn:aws:kinesis"),
        ("arn:aws:kinesis:eu-west-1:000000000000:stream/s", "Stream not found"),
    ],
)
def test_bad_sources_are_invalid_parameter_values(h, arn, message):
    with pytest.raises(InvalidParameterValue, match=message):
        h.service.create(arn, "LATEST", None, MappingChange(function_name="f"))


def test_starting_position_rules(h):
    with pytest.raises(InvalidParameterValue, match="StartingPosition is required"):
        h.service.create(STREAM_ARN, None, None, MappingChange(function_name="f"))
    with pytest.raises(InvalidParameterValue, match="StartingPositionTimestamp must be set"):
        h.create("AT_TIMESTAMP")
    with pytest.raises(InvalidParameterValue, match="in the future"):
        h.create("AT_TIMESTAMP", timestamp=time.time() + 3600)


def test_a_missing_function_is_resource_not_found(h):
    with pytest.raises(
        ResourceNotFound, match="Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"
    ):
        h.create(function_name="nope")


def test_a_second_mapping_of_the_same_function_and_stream_is_a_conflict(h):
    first = h.create()
    message = f"already exists. Please update or delete the existing mapping with UUID {first.uuid}"
    with pytest.raises(ResourceConflict, match=message):
        h.create(function_name=FUNCTION_ARN + "f")
    h.create(function_name="dest")  # another function is fine


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"response_types": ["Nope"]}, "FunctionResponseTypes"),
        ({"on_success": FUNCTION_ARN + "dest"}, "Unsupported DestinationConfig parameter"),
        ({"on_failure": FUNCTION_ARN + "missing"}, "does not exist"),
        ({"on_failure": "arn:aws:sqs:us-east-1:000000000000:q"}, "not available"),
        ({"max_record_age_s": 0}, "MaximumRecordAgeInSeconds"),
        ({"batch_size": 10_001}, "BatchSize"),
        ({"filters": ["nope"]}, "Invalid filter pattern definition"),
    ],
)
def test_invalid_settings(h, settings, message):
    with pytest.raises(InvalidParameterValue, match=message):
        h.create(**settings)


def test_update_and_delete_in_a_transitional_state_are_resource_in_use(h):
    config = h.create()
    with pytest.raises(ResourceInUse):
        h.service.update(config.uuid, MappingChange(batch_size=5))
    with pytest.raises(ResourceInUse):
        h.service.delete(config.uuid)
    h.store.put_mapping(config.with_changes(state=MappingState.ENABLED))
    updated = h.service.update(config.uuid, MappingChange(batch_size=5, enabled=False))
    assert (updated.batch_size, updated.state) == (5, MappingState.DISABLING)


def test_get_of_an_unknown_uuid_is_resource_not_found(h):
    with pytest.raises(ResourceNotFound, match=r"The resource you requested does not exist\."):
        h.service.get("00000000-0000-0000-0000-000000000000")


def test_list_filters_by_function_and_source_and_pages(h):
    a = h.create()
    b = h.create(function_name="dest")
    assert [c.uuid for c in h.service.list(None, None, None, None)[0]] == [a.uuid, b.uuid]
    assert [c.uuid for c in h.service.list("dest", None, None, None)[0]] == [b.uuid]
    assert [c.uuid for c in h.service.list(None, STREAM_ARN, None, None)[0]] == [a.uuid, b.uuid]
    page, marker = h.service.list(None, None, None, 1)
    assert [c.uuid for c in page] == [a.uuid] and marker == a.uuid
    page, marker = h.service.list(None, None, marker, 1)
    assert [c.uuid for c in page] == [b.uuid] and marker is None
