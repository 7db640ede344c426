"""Requests as botocore builds them, responses as botocore reads them: the edge's test oracle."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HeadersDict, prepare_request_dict
from botocore.credentials import Credentials
from botocore.model import ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from lamina.api.wire import HttpRequest, HttpResponse

ENDPOINT = "http://127.0.0.1:4566"
_session = botocore.session.get_session()
_models: dict[str, ServiceModel] = {}


def model(name: str) -> ServiceModel:
    if name not in _models:
        _models[name] = _session.get_service_model(name)
    return _models[name]


def build(service: str, operation: str, params: dict[str, Any], *, validate: bool = True) -> AWSRequest:
    """The AWSRequest boto3 would send (unsigned)."""
    m = model(service)
    serializer = create_serializer(m.resolved_protocol, include_validation=validate)
    request_dict = serializer.serialize_to_request(params, m.operation_model(operation))
    prepare_request_dict(request_dict, ENDPOINT)
    body = request_dict["body"]
    if isinstance(body, str):
        body = body.encode()
    return AWSRequest(
        method=request_dict["method"], url=request_dict["url"], data=body, headers=request_dict["headers"]
    )


def sign(request: AWSRequest, service: str, *, key: str = "AKID", secret: str = "SECRET", region: str = "us-east-1"):
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    return request


def to_http(request: AWSRequest) -> HttpRequest:
    """What the edge sees of an AWSRequest (the Host header the HTTP client would add)."""
    url = urlsplit(request.url)
    headers = {k.lower(): v if isinstance(v, str) else v.decode() for k, v in request.headers.items()}
    headers.setdefault("host", url.netloc)
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    return HttpRequest(request.method, url.path, url.query, headers, body)


def http_request(service: str, operation: str, params: dict[str, Any], *, validate: bool = True) -> HttpRequest:
    return to_http(build(service, operation, params, validate=validate))


def parse(service: str, operation: str, response: HttpResponse) -> dict[str, Any]:
    """What boto3 returns (or puts in ClientError.response) for this HTTP response."""
    m = model(service)
    op = m.operation_model(operation)
    parser = create_parser(m.resolved_protocol)
    raw = {"status_code": response.status, "headers": HeadersDict(response.headers), "body": response.body}
    parsed = parser.parse(raw, op.output_shape)
    if response.status >= 300:  # botocore.endpoint._add_modeled_error_fields
        shape = m.shape_for_error_code(parsed.get("Error", {}).get("Code"))
        if shape is not None:
            parsed.update(parser.parse(raw, shape))
    return parsed
