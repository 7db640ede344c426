"""Model constraints, worded as AWS words them (messages copied from real Lambda responses)."""

from __future__ import annotations

import re

import pytest

from lamina.api.validation import Validator
from lamina.errors import ValidationError

from .botocore_wire import model

ROLE = "arn:aws:iam::123456789012:role/lambda-role"


def check(operation: str, params: dict, service: str = "lambda") -> str | None:
    try:
        Validator().validate(model(service).operation_model(operation), params)
    except ValidationError as exc:
        assert exc.code == "ValidationException" and exc.status == 400
        return exc.message
    return None


def create(**overrides) -> dict:
    return {"FunctionName": "f", "Role": ROLE, "Code": {"ZipFile": b"PK"}, **overrides}


def test_valid_requests_pass():
    assert check("CreateFunction", create(Timeout=900, MemorySize=10240, Architectures=["arm64"])) is None
    assert check("Invoke", {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f:1"}) is None
    assert check("GetAccountSettings", {}) is None


def test_pattern_violation_matches_lambda_wording():
    message = check("GetFunction", {"FunctionName": "SC-Name of the App"})
    pattern = model("lambda").shape_for("NamespacedFunctionName").metadata["pattern"]
    assert message == (
        "1 validation error detected: Value 'SC-Name of the App' at 'functionName' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {pattern}"
    )


def test_pattern_must_match_the_whole_value():
    assert check("GetFunction", {"FunctionName": "ok-prefix then junk"}) is not None


def test_role_pattern_like_the_real_report():
    message = check("CreateFunction", create(Role="lambdarole"))
    assert message.startswith(
        "1 validation error detected: Value 'lambdarole' at 'role' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?"
    )


def test_missing_required_members():
    message = check("CreateFunction", {"FunctionName": "f"})
    assert message == (
        "2 validation errors detected: "
        "Value null at 'role' failed to satisfy constraint: Member must not be null; "
        "Value null at 'code' failed to satisfy constraint: Member must not be null"
    )


def test_numeric_and_length_ranges():
    assert check("CreateFunction", create(Timeout=0)) == (
        "1 validation error detected: Value '0' at 'timeout' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )
    message = check("CreateFunction", create(MemorySize=64, Description="x" * 257))
    assert "Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than" in message
    assert "at 'description' failed to satisfy constraint: Member must have length less than or equal to 256" in (
        message
    )
    assert message.startswith("2 validation errors detected: ")


def test_model_maximum_is_all_the_edge_enforces():
    # The model allows 5400 s; the 900 s standard limit is the service layer's to enforce.
    assert check("CreateFunction", create(Timeout=5400)) is None
    assert "less than or equal to 5400" in check("CreateFunction", create(Timeout=5401))


def test_sensitive_map_keys_like_the_real_report():
    message = check("CreateFunction", create(Environment={"Variables": {"a": "1", "GOOD": "2"}}))
    assert message == (
        "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: "
        "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "
        "[a-zA-Z]([a-zA-Z0-9_])+]"
    )


def test_list_members_enum_like_the_real_report():
    message = check("CreateFunction", create(Architectures=["arm32"]))
    assert message == (
        "1 validation error detected: Value '[arm32]' at 'architectures' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], "
        "Member must not be null]"
    )
    assert "Member must have length less than or equal to 1" in check(
        "CreateFunction", create(Architectures=["arm64", "x86_64"])
    )


def test_enum_scalar():
    message = check("CreateFunction", create(PackageType="Docker"))
    assert re.search(r"Value 'Docker' at 'packageType' .* Member must satisfy enum value set: \[Zip, Image\]", message)


def test_nested_structures_in_lists_use_member_paths():
    params = {
        "StreamName": "s",
        "Records": [{"Data": b"x", "PartitionKey": "p"}, {"Data": b"y", "PartitionKey": "k" * 257}],
    }
    message = check("PutRecords", params, "kinesis")
    assert "at 'records.2.member.partitionKey' failed to satisfy constraint: Member must have length less" in message


def test_blob_maximum_is_not_enforced():
    assert check("PutRecord", {"StreamName": "s", "Data": b"x" * 2_000_000, "PartitionKey": "p"}, "kinesis") is None


def test_lengths_count_utf16_units_as_java_does():
    # PartitionKey allows 256: 129 emoji are 129 code points but 258 UTF-16 units.
    assert check("PutRecord", {"StreamName": "s", "Data": b"x", "PartitionKey": "\U0001f600" * 128}, "kinesis") is None
    message = check("PutRecord", {"StreamName": "s", "Data": b"x", "PartitionKey": "\U0001f600" * 129}, "kinesis")
    assert "Member must have length less than or equal to 256" in message


@pytest.mark.parametrize("service", ["lambda", "kinesis", "logs", "sqs", "dynamodb", "s3"])
def test_every_input_shape_compiles(service):
    validator = Validator()
    m = model(service)
    for name in m.operation_names:
        shape = m.operation_model(name).input_shape
        if shape is not None:
            validator.check_for(shape)


@pytest.mark.parametrize(
    ("records", "where"),
    [([None], "records.1.member"), ([{"Data": b"x", "PartitionKey": "p"}, None], "records.2.member")],
)
def test_null_structure_in_a_list_is_named_like_aws(records, where):
    message = check("PutRecords", {"StreamName": "s", "Records": records}, "kinesis")
    assert message == (
        f"1 validation error detected: Value null at '{where}' failed to satisfy constraint: Member must not be null"
    )


def test_null_structure_in_a_list_without_other_checks():
    # FileSystemConfig has required members, but a list whose items need no check must refuse null too.
    message = check("CreateFunction", create(FileSystemConfigs=[None]))
    assert "Value null at 'fileSystemConfigs.1.member' failed to satisfy constraint: Member must not be null" in message


def test_null_unconstrained_map_value_is_refused():
    # EnvironmentVariableValue has no constraint of its own; null still is not a value.
    message = check("CreateFunction", create(Environment={"Variables": {"AB": None}}))
    assert message == (
        "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: "
        "Map value must satisfy constraint: [Member must not be null]"
    )
    message = check("CreateFunction", create(Tags={"a": None}))
    assert "Value '{a=null}' at 'tags'" in message


def test_unpaired_surrogate_does_not_crash_length_checks():
    # The JSON decoders refuse these; a string arriving another way is counted as Java would (1 unit).
    assert check("PutRecord", {"StreamName": "s", "Data": b"x", "PartitionKey": "\ud800"}, "kinesis") is None
    message = check("PutRecord", {"StreamName": "s", "Data": b"x", "PartitionKey": "\ud800" * 257}, "kinesis")
    assert "Member must have length less than or equal to 256" in message
    assert "regular expression" in check(
        "PutRecord", {"StreamName": "\ud800", "Data": b"x", "PartitionKey": "p"}, "kinesis"
    )


def test_recursive_shape_nested_past_the_stack_is_a_validation_error():
    value: dict = {"S": "x"}
    for _ in range(2000):
        value = {"L": [value]}
    message = check("PutItem", {"TableName": "t", "Item": {"a": value}}, "dynamodb")
    assert message == "1 validation error detected: Input is nested too deeply"
