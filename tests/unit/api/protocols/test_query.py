"""The `query` protocol (STS, IAM) against botocore's own serializer and parser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lamina.api.protocols import codec_for
from lamina.api.protocols.query import PLACEHOLDER, QueryCodec
from lamina.api.routing import router_for
from lamina.errors import LaminaError, ValidationError

from ..botocore_wire import http_request, model, parse
from .test_model_roundtrip import example


class NoSuchEntity(LaminaError):
    code = "NoSuchEntity"
    status = 404
    sender_fault = True


def _operations(service: str, side: str) -> list[tuple[str, str]]:
    m = model(service)
    return [(service, n) for n in m.operation_names if getattr(m.operation_model(n), f"{side}_shape") is not None]


CASES_IN = _operations("sts", "input") + _operations("iam", "input")
CASES_OUT = _operations("sts", "output") + _operations("iam", "output")


@pytest.mark.parametrize(("service", "operation"), CASES_IN)
def test_inputs_round_trip(service, operation):
    m = model(service)
    op = m.operation_model(operation)
    params = example(op.input_shape)
    request = http_request(service, operation, params, validate=False)
    match = router_for(m, "query").match(request)
    assert match is not None and match.operation == operation
    assert codec_for(m).parse_request(op, request, {}) == params


@pytest.mark.parametrize(("service", "operation"), CASES_OUT)
def test_outputs_round_trip(service, operation):
    m = model(service)
    op = m.operation_model(operation)
    output = example(op.output_shape)
    codec = codec_for(m)
    response = codec.serialize_response(op, output)
    codec.finish(response, "req-1")
    parsed = parse(service, operation, response)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
    assert parsed == output


def test_lists_maps_and_empty_lists_parse():
    m = model("iam")
    op = m.operation_model("CreateRole")
    params = {
        "RoleName": "r",
        "AssumeRolePolicyDocument": '{"Version": "2012-10-17", "Statement": []}',
        "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b&c=d", "Value": "é"}],
    }
    request = http_request("iam", "CreateRole", params)
    assert b"Tags.member.2.Key=b%26c%3Dd" in request.body
    assert QueryCodec(m).parse_request(op, request, {}) == params
    request = http_request("iam", "CreateRole", {**params, "Tags": []})
    assert QueryCodec(m).parse_request(op, request, {})["Tags"] == []


def test_get_requests_carry_the_action_in_the_url():
    from lamina.api.wire import HttpRequest

    m = model("sts")
    request = HttpRequest("GET", "/", "Action=GetCallerIdentity&Version=2011-06-15", {})
    assert router_for(m, "query").match(request).operation == "GetCallerIdentity"
    request = HttpRequest("GET", "/", "Action=Nope", {})
    assert router_for(m, "query").match(request) is None


def test_response_document_has_the_aws_layout():
    m = model("sts")
    codec = QueryCodec(m)
    response = codec.serialize_response(
        m.operation_model("GetCallerIdentity"),
        {"UserId": "AIDA", "Account": "000000000000", "Arn": "arn:aws:iam::000000000000:root"},
    )
    assert PLACEHOLDER.encode() in response.body
    codec.finish(response, "abc")
    assert response.body.decode() == (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<GetCallerIdentityResult><UserId>AIDA</UserId><Account>000000000000</Account>"
        "<Arn>arn:aws:iam::000000000000:root</Arn></GetCallerIdentityResult>"
        "<ResponseMetadata><RequestId>abc</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
    )
    assert response.headers["x-amzn-RequestId"] == "abc"


def test_timestamps_and_escaping_survive():
    m = model("iam")
    op = m.operation_model("GetRole")
    when = datetime(2026, 11, 27, 11, 0, 0, 500000, tzinfo=UTC)
    output = {
        "Role": {
            "Path": "/",
            "RoleName": "r<&>",
            "RoleId": "AROA1234567890ABCDEF",
            "Arn": "arn:aws:iam::000000000000:role/r",
            "CreateDate": when,
            "AssumeRolePolicyDocument": "%7B%22a%22%3A1%7D",
            "MaxSessionDuration": 3600,
        }
    }
    codec = QueryCodec(m)
    response = codec.serialize_response(op, output)
    codec.finish(response, "x")
    parsed = parse("iam", "GetRole", response)
    assert parsed["Role"]["RoleName"] == "r<&>"
    assert parsed["Role"]["CreateDate"] == when


def test_errors_parse_as_botocore_reads_them():
    codec = QueryCodec(model("iam"))
    response = codec.serialize_error(NoSuchEntity("The role with name nope cannot be found."))
    codec.finish(response, "rid")
    assert response.status == 404
    parsed = parse("iam", "GetRole", response)
    assert parsed["Error"] == {
        "Type": "Sender",
        "Code": "NoSuchEntity",
        "Message": "The role with name nope cannot be found.",
    }
    assert parsed["ResponseMetadata"]["RequestId"] == "rid"


def test_common_errors_take_their_query_names():
    codec = QueryCodec(model("sts"))
    response = codec.serialize_error(ValidationError("1 validation error detected"))
    assert parse("sts", "AssumeRole", response)["Error"]["Code"] == "ValidationError"


def test_bad_scalars_are_validation_errors():
    m = model("sts")
    request = http_request("sts", "AssumeRole", {"RoleArn": "arn:aws:iam::000000000000:role/r",
                                                  "RoleSessionName": "ss", "DurationSeconds": 900})  # fmt: skip
    request.body = request.body.replace(b"DurationSeconds=900", b"DurationSeconds=soon")
    with pytest.raises(ValidationError, match="DurationSeconds"):
        QueryCodec(m).parse_request(m.operation_model("AssumeRole"), request, {})
