"""Routing every modeled operation from the URLs botocore builds for it."""

from __future__ import annotations

import pytest

from lamina.api.routing import RestRouter, TargetRouter, detect_service
from lamina.api.wire import HttpRequest

from .botocore_wire import http_request, model


def _label_params(service: str, operation: str) -> dict:
    """A value for every URI member (and required querystring member) of the operation."""
    shape = model(service).operation_model(operation).input_shape
    params: dict = {}
    if shape is None:
        return params
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        if location == "uri" or (location == "querystring" and name in shape.required_members):
            params[name] = 7 if member.type_name in ("integer", "long") else f"v:{name}/x y"
    return params


@pytest.mark.parametrize("operation", model("lambda").operation_names)
def test_every_lambda_operation_routes_to_itself(operation):
    router = RestRouter(model("lambda"))
    params = _label_params("lambda", operation)
    match = router.match(http_request("lambda", operation, params, validate=False))
    assert match is not None and match.operation == operation
    shape = model("lambda").operation_model(operation).input_shape
    members = shape.members.items() if shape is not None else ()
    expected = {
        m.serialization.get("name", n): str(params[n]) for n, m in members if m.serialization.get("location") == "uri"
    }
    assert match.labels == expected


def test_literal_query_parts_pick_the_operation():
    router = RestRouter(model("lambda"))
    listing = http_request("lambda", "ListProvisionedConcurrencyConfigs", {"FunctionName": "f"})
    getting = http_request("lambda", "GetProvisionedConcurrencyConfig", {"FunctionName": "f", "Qualifier": "1"})
    assert router.match(listing).operation == "ListProvisionedConcurrencyConfigs"
    assert router.match(getting).operation == "GetProvisionedConcurrencyConfig"
    by_arn = http_request("lambda", "GetLayerVersionByArn", {"Arn": "arn:aws:lambda:us-east-1:1:layer:x:1"})
    assert router.match(by_arn).operation == "GetLayerVersionByArn"
    assert router.match(http_request("lambda", "ListLayers", {})).operation == "ListLayers"


def test_encoded_arn_and_slash_stay_inside_a_label():
    router = RestRouter(model("lambda"))
    request = HttpRequest("GET", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af%2Fx", "", {})
    match = router.match(request)
    assert match.operation == "GetFunction"
    assert match.labels == {"FunctionName": "arn:aws:lambda:us-east-1:1:function:f/x"}


def test_unknown_paths_and_methods_do_not_match():
    router = RestRouter(model("lambda"))
    assert router.match(HttpRequest("GET", "/2015-03-31/nothing", "", {})) is None
    assert router.match(HttpRequest("PATCH", "/2015-03-31/functions", "", {})) is None
    assert router.match(HttpRequest("GET", "/2015-03-31/functions//configuration", "", {})) is None


def test_greedy_labels_and_required_query_members_for_s3():
    router = RestRouter(model("s3"))

    def route(operation, params):
        return router.match(http_request("s3", operation, params, validate=False))

    got = route("GetObject", {"Bucket": "b", "Key": "a/b/c d+e.txt"})
    assert (got.operation, got.labels) == ("GetObject", {"Bucket": "b", "Key": "a/b/c d+e.txt"})
    assert route("PutObject", {"Bucket": "b", "Key": "k"}).operation == "PutObject"
    upload = route("UploadPart", {"Bucket": "b", "Key": "k", "PartNumber": 1, "UploadId": "u"})
    assert upload.operation == "UploadPart"
    assert route("GetBucketVersioning", {"Bucket": "b"}).operation == "GetBucketVersioning"
    assert route("ListObjectsV2", {"Bucket": "b"}).operation == "ListObjectsV2"
    assert route("ListObjects", {"Bucket": "b"}).operation == "ListObjects"
    assert route("ListBuckets", {}).operation == "ListBuckets"


def test_json_protocol_routes_by_target():
    router = TargetRouter(model("kinesis"))
    request = http_request("kinesis", "PutRecord", {"StreamName": "s", "Data": b"x", "PartitionKey": "p"})
    assert router.match(request).operation == "PutRecord"
    request.headers["x-amz-target"] = "Kinesis_20131202.Nope"
    assert router.match(request) is None
    request.headers["x-amz-target"] = "DynamoDB_20120810.PutRecord"
    assert router.match(request) is None


def test_detect_service_prefers_scope_then_target_then_routes():
    lam = RestRouter(model("lambda"))
    kinesis = TargetRouter(model("kinesis"))
    services = {"lambda": [("L", lam.match)], "kinesis": [("K", kinesis.match)]}
    targets = {"Kinesis_20131202": "K"}
    rest = [("L", lam.match)]
    put = http_request("kinesis", "PutRecord", {"StreamName": "s", "Data": b"x", "PartitionKey": "p"})
    assert detect_service(put, "lambda", services, targets, rest) == ("L", None)
    assert detect_service(put, None, services, targets, rest) == ("K", None)
    get = http_request("lambda", "GetFunction", {"FunctionName": "f"})
    service, route = detect_service(get, None, services, targets, rest)
    assert (service, route.operation) == ("L", "GetFunction")
    assert detect_service(HttpRequest("GET", "/x", "", {}), "sts", services, targets, rest) == (None, None)


def test_services_sharing_a_signing_name_are_told_apart_by_their_routes():
    tables = TargetRouter(model("dynamodb"))
    streams = TargetRouter(model("dynamodbstreams"))
    shared = {"dynamodb": [("DDB", tables.match), ("STREAMS", streams.match)]}
    request = http_request("dynamodbstreams", "ListStreams", {})
    service, route = detect_service(request, "dynamodb", shared, {}, [])
    assert (service, route.operation) == ("STREAMS", "ListStreams")
    request = http_request("dynamodb", "ListTables", {})
    assert detect_service(request, "dynamodb", shared, {}, [])[0] == "DDB"
