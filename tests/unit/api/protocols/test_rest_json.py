"""rest-json against botocore itself: its serializer builds the requests, its parser reads ours."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import pytest

from lamina.api.protocols.rest_json import RestJsonCodec
from lamina.api.routing import RestRouter
from lamina.errors import (
    InvalidRequestContent,
    LaminaError,
    ResourceNotFound,
    SerializationError,
    ServiceError,
    TooManyRequests,
    ValidationError,
)

from ..botocore_wire import http_request, model, parse

ARN = "arn:aws:lambda:us-east-1:123456789012:function:my-function"
_codecs: dict[str, tuple[RestJsonCodec, RestRouter]] = {}


def _codec(service: str) -> tuple[RestJsonCodec, RestRouter]:
    if service not in _codecs:
        _codecs[service] = (RestJsonCodec(model(service)), RestRouter(model(service)))
    return _codecs[service]


def roundtrip(operation: str, params: dict, service: str = "lambda") -> dict:
    """params → botocore request → our router + parser → params."""
    codec, router = _codec(service)
    request = http_request(service, operation, params)
    match = router.match(request)
    assert match is not None and match.operation == operation
    return codec.parse_request(model(service).operation_model(operation), request, match.labels)


def respond(operation: str, output: dict, service: str = "lambda") -> dict:
    """output → our serializer → botocore's parser, without ResponseMetadata."""
    codec, _ = _codec(service)
    response = codec.serialize_response(model(service).operation_model(operation), output)
    parsed = parse(service, operation, response)
    parsed.pop("ResponseMetadata")
    return parsed


def error(operation: str, exc: LaminaError) -> dict:
    codec, _ = _codec("lambda")
    return parse("lambda", operation, codec.serialize_error(exc))


# -- requests -------------------------------------------------------------------------------------


def test_create_function_body_with_blob_and_nested_members():
    params = {
        "FunctionName": "my-function",
        "Runtime": "python3.12",
        "Role": "arn:aws:iam::123456789012:role/lambda-role",
        "Handler": "app.handler",
        "Code": {"ZipFile": b"PK\x03\x04\x00\xff binary"},
        "Timeout": 30,
        "MemorySize": 256,
        "Publish": True,
        "Environment": {"Variables": {"STAGE": "dev", "LEVEL": "3"}},
        "Tags": {"team": "data"},
        "Architectures": ["arm64"],
        "Layers": ["arn:aws:lambda:us-east-1:123456789012:layer:deps:3"],
        "VpcConfig": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": []},
        "EphemeralStorage": {"Size": 1024},
    }
    assert roundtrip("CreateFunction", params) == params


def test_invoke_takes_the_raw_body_and_headers():
    params = {
        "FunctionName": ARN + ":live",
        "InvocationType": "Event",
        "LogType": "Tail",
        "ClientContext": base64.b64encode(b'{"custom":{"a":1}}').decode(),
        "Payload": b'{"not": "re-encoded", "bytes": "\\u00e9"}',
        "Qualifier": "live",
    }
    assert roundtrip("Invoke", params) == params


def test_invoke_without_payload_has_no_payload_param():
    assert roundtrip("Invoke", {"FunctionName": "f"}) == {"FunctionName": "f"}


def test_list_functions_query_members_are_typed():
    params = {"MaxItems": 10, "Marker": "abc/def==", "FunctionVersion": "ALL", "MasterRegion": "us-east-1"}
    assert roundtrip("ListFunctions", params) == params


def test_get_function_with_qualifier():
    params = {"FunctionName": "my-function", "Qualifier": "$LATEST"}
    assert roundtrip("GetFunction", params) == params


@pytest.mark.parametrize("operation", ["TagResource", "ListTags"])
def test_arn_in_the_path_is_decoded(operation):
    params = {"Resource": ARN}
    if operation == "TagResource":
        params["Tags"] = {"a": "b", "k:with/odd chars": "v&="}
    assert roundtrip(operation, params) == params


def test_untag_resource_repeats_a_query_list():
    params = {"Resource": ARN, "TagKeys": ["a", "b c", "d&e"]}
    assert roundtrip("UntagResource", params) == params


def test_delete_function():
    assert roundtrip("DeleteFunction", {"FunctionName": "f", "Qualifier": "3"}) == {
        "FunctionName": "f",
        "Qualifier": "3",
    }


def test_body_timestamp_becomes_a_datetime():
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    params = {
        "FunctionName": "f",
        "EventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
        "StartingPosition": "AT_TIMESTAMP",
        "StartingPositionTimestamp": when,
        "BatchSize": 100,
        "BisectBatchOnFunctionError": False,
    }
    parsed = roundtrip("CreateEventSourceMapping", params)
    assert parsed == params
    assert parsed["StartingPositionTimestamp"].tzinfo is not None


def test_layer_version_number_label_is_an_int():
    params = {"LayerName": "deps", "VersionNumber": 7}
    assert roundtrip("GetLayerVersion", params) == params


def test_other_rest_json_locations():
    # A querystring map, a prefix header map, header lists, header timestamps, jsonvalue headers.
    assert roundtrip("ListScrapers", {"filters": {"status": ["ACTIVE", "CREATING"]}}, "amp") == {
        "filters": {"status": ["ACTIVE", "CREATING"]}
    }
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    got = roundtrip("ListManagedApiEvents", {"managedApiId": "api-0123456789", "startedAfter": when}, "apiportal")
    assert got["startedAfter"] == when
    props = {"a": [1, 2], "b": {"c": None}}
    got = roundtrip("Publish", {"topic": "t/1", "userProperties": props}, "iot-data")
    assert got == {"topic": "t/1", "userProperties": props}
    ids = ["plain", "with,comma", 'with"quote']
    got = roundtrip("BatchDeleteUniqueId", {"workflowName": "w", "uniqueIds": ids}, "entityresolution")
    assert got["uniqueIds"] == ids
    got = roundtrip(
        "SendApiAsset",
        {"AssetId": "a", "DataSetId": "d", "RevisionId": "r", "RequestHeaders": {"x-one": "1"}},
        "dataexchange",
    )
    assert got["RequestHeaders"] == {"x-one": "1"}


def test_invalid_json_body_is_invalid_request_content():
    codec, _ = _codec("lambda")
    request = http_request("lambda", "CreateFunction", {"FunctionName": "f", "Role": "r", "Code": {}})
    request.body = b'{"FunctionName": '
    with pytest.raises(InvalidRequestContent, match=r"^Could not parse request body into json: "):
        codec.parse_request(model("lambda").operation_model("CreateFunction"), request, {})


def test_wrong_json_type_names_the_member():
    codec, _ = _codec("lambda")
    request = http_request("lambda", "CreateFunction", {"FunctionName": "f", "Role": "r", "Code": {}})
    request.body = json.dumps({"FunctionName": "f", "Environment": {"Variables": {"A": 1}}}).encode()
    with pytest.raises(InvalidRequestContent, match=r"environment\.variables\.A"):
        codec.parse_request(model("lambda").operation_model("CreateFunction"), request, {})


def test_bad_query_integer_is_a_serialization_error():
    codec, _ = _codec("lambda")
    request = http_request("lambda", "ListFunctions", {})
    request.query = "MaxItems=ten"
    with pytest.raises(SerializationError, match="maxItems"):
        codec.parse_request(model("lambda").operation_model("ListFunctions"), request, {})


# -- responses ------------------------------------------------------------------------------------


def test_invoke_output_is_the_raw_payload_with_headers():
    codec, _ = _codec("lambda")
    output = {
        "StatusCode": 200,
        "Payload": b'{"errorMessage":"boom"}',
        "FunctionError": "Unhandled",
        "LogResult": base64.b64encode(b"START RequestId: 1\n").decode(),
        "ExecutedVersion": "$LATEST",
    }
    response = codec.serialize_response(model("lambda").operation_model("Invoke"), output)
    assert response.body == b'{"errorMessage":"boom"}'
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    parsed = parse("lambda", "Invoke", response)
    parsed.pop("ResponseMetadata")
    assert parsed == {**output, "Payload": '{"errorMessage":"boom"}'}  # botocore hands back the text


def test_invoke_event_status_comes_from_the_status_member():
    codec, _ = _codec("lambda")
    response = codec.serialize_response(model("lambda").operation_model("Invoke"), {"StatusCode": 202})
    assert (response.status, response.body) == (202, b"")


def test_get_function_output_round_trips():
    output = {
        "Configuration": {
            "FunctionName": "f",
            "FunctionArn": ARN,
            "Runtime": "python3.12",
            "CodeSize": 123,
            "Timeout": 3,
            "LastModified": "2020-04-10T19:06:32.563+0000",
            "Environment": {"Variables": {"A": "1"}},
            "Architectures": ["x86_64"],
            "State": "Active",
        },
        "Code": {"RepositoryType": "S3", "Location": "http://127.0.0.1:4566/_lamina/code/abc.zip"},
        "Tags": {"a": "b"},
    }
    assert respond("GetFunction", output) == output


def test_list_functions_output_drops_unknown_keys_and_nones():
    output = {
        "Functions": [{"FunctionName": "a", "Internal": "secret", "Description": None}],
        "NextMarker": "m",
        "Bogus": 1,
    }
    assert respond("ListFunctions", output) == {"Functions": [{"FunctionName": "a"}], "NextMarker": "m"}


def test_timestamp_output_is_epoch_seconds():
    codec, _ = _codec("lambda")
    when = datetime(2019, 11, 13, 23, 0, 21, 479000, tzinfo=UTC)
    op = model("lambda").operation_model("GetEventSourceMapping")
    response = codec.serialize_response(op, {"UUID": "u", "LastModified": when, "BatchSize": 10})
    assert json.loads(response.body)["LastModified"] == 1573686021.479
    assert respond("GetEventSourceMapping", {"UUID": "u", "LastModified": when}) == {
        "UUID": "u",
        "LastModified": when,
    }


def test_no_content_responses_have_no_body():
    codec, _ = _codec("lambda")
    response = codec.serialize_response(model("lambda").operation_model("TagResource"), {})
    assert (response.status, response.body) == (204, b"")
    assert respond("DeleteFunction", {"StatusCode": 200}) == {"StatusCode": 200}


def test_account_settings_output():
    output = {
        "AccountLimit": {"TotalCodeSize": 80530636800, "ConcurrentExecutions": 1000},
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
    }
    assert respond("GetAccountSettings", output) == output


# -- errors ---------------------------------------------------------------------------------------


def test_not_found_error_uses_the_modeled_message_member():
    codec, _ = _codec("lambda")
    response = codec.serialize_error(ResourceNotFound(f"Function not found: {ARN}"))
    assert response.status == 404
    assert response.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(response.body) == {"Type": "User", "Message": f"Function not found: {ARN}"}
    parsed = error("GetFunction", ResourceNotFound(f"Function not found: {ARN}"))
    assert parsed["Error"] == {"Code": "ResourceNotFoundException", "Message": f"Function not found: {ARN}"}
    assert parsed["Type"] == "User"


def test_throttle_error_carries_its_reason():
    parsed = error("Invoke", TooManyRequests("Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded"))
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert parsed["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}
    assert parsed["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert parsed["message"] == "Rate Exceeded."


def test_header_extras_go_in_headers():
    class Throttled(TooManyRequests):
        def extra(self):
            return {**super().extra(), "retryAfterSeconds": "3"}

    codec, _ = _codec("lambda")
    response = codec.serialize_error(Throttled())
    assert response.headers["Retry-After"] == "3"
    assert error("Invoke", Throttled())["retryAfterSeconds"] == "3"


def test_unmodeled_errors_and_service_faults():
    parsed = error("CreateFunction", ValidationError("1 validation error detected: x"))
    assert parsed["Error"] == {"Code": "ValidationException", "Message": "1 validation error detected: x"}
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 400
    codec, _ = _codec("lambda")
    body = json.loads(codec.serialize_error(ServiceError("boom")).body)
    assert body == {"Type": "Service", "Message": "boom"}


def _create_function(body: bytes) -> dict:
    codec, _ = _codec("lambda")
    request = http_request("lambda", "CreateFunction", {"FunctionName": "f", "Role": "r", "Code": {}})
    request.body = body
    return codec.parse_request(model("lambda").operation_model("CreateFunction"), request, {})


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"FunctionName":"f","Code":{"ZipFile":' + b"[" * 10_000 + b"]" * 10_000 + b"}}"],
    ids=["open-brackets", "nested-member"],
)
def test_json_nested_past_the_stack_is_invalid_request_content(body):
    with pytest.raises(
        InvalidRequestContent, match=r"^Could not parse request body into json: JSON nested too deeply$"
    ):
        _create_function(body)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (rb'{"FunctionName":"\ud800","Role":"r"}', "functionName"),
        (rb'{"FunctionName":"f","Description":"caf\u00e9 \udc00"}', "description"),
        (rb'{"FunctionName":"f","Environment":{"Variables":{"\ud800":"v"}}}', "environment.variables"),
    ],
)
def test_unpaired_surrogate_is_invalid_request_content(body, where):
    with pytest.raises(InvalidRequestContent, match=rf"at '{re.escape(where)}' as string: unpaired UTF-16 surrogate"):
        _create_function(body)


def test_jsonvalue_header_nested_past_the_stack_is_a_serialization_error():
    codec, router = _codec("iot-data")
    request = http_request("iot-data", "Publish", {"topic": "t/1", "userProperties": {"a": 1}})
    request.headers["x-amz-mqtt5-user-properties"] = base64.b64encode(b"[" * 5_000).decode()
    match = router.match(request)
    assert match is not None
    with pytest.raises(SerializationError, match="userProperties"):
        codec.parse_request(model("iot-data").operation_model("Publish"), request, match.labels)
