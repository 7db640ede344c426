"""The edge application in-process: `EdgeApp.handle` and the raw ASGI contract."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest

from lamina.api.app import EdgeApp
from lamina.api.context import RequestContext
from lamina.api.wire import HttpRequest, HttpResponse
from lamina.config import CREATE_REQUEST_LIMIT, Settings
from lamina.errors import ConfigError, ResourceNotFound

from .botocore_wire import build, http_request, parse, sign, to_http

SECURE = Settings(access_key_id="AKID", secret_access_key="SECRET", interpreters={})
OPEN = Settings(interpreters={})


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[RequestContext, dict]] = []

    async def get_account_settings(self, ctx: RequestContext, params: dict) -> dict:
        self.calls.append((ctx, params))
        ctx.response_headers["X-Lamina-Test"] = "yes"
        return {"AccountUsage": {"FunctionCount": 3}}

    async def get_function(self, ctx: RequestContext, params: dict) -> dict:
        self.calls.append((ctx, params))
        raise ResourceNotFound(f"Function not found: {params['FunctionName']}")

    async def invoke(self, ctx: RequestContext, params: dict) -> dict:
        self.calls.append((ctx, params))
        if params.get("Payload") == b"crash":
            raise RuntimeError("secret internal detail")
        return {"StatusCode": 200, "Payload": params.get("Payload", b"") + b"!", "ExecutedVersion": "$LATEST"}


def make_app(settings: Settings = SECURE) -> tuple[EdgeApp, Recorder]:
    recorder = Recorder()
    app = EdgeApp(settings)
    app.register_service(
        "lambda",
        {
            "GetAccountSettings": recorder.get_account_settings,
            "GetFunction": recorder.get_function,
            "Invoke": recorder.invoke,
        },
    )
    return app, recorder


def call(app: EdgeApp, operation: str, params: dict, *, signed: bool = True, **sign_args: Any) -> HttpResponse:
    request = build("lambda", operation, params)
    if signed:
        sign(request, "lambda", **sign_args)
    return asyncio.run(app.handle(to_http(request)))


def test_signed_request_reaches_the_handler_with_its_context():
    app, recorder = make_app()
    response = call(app, "GetAccountSettings", {}, region="eu-west-1")
    parsed = parse("lambda", "GetAccountSettings", response)
    assert parsed["AccountUsage"] == {"FunctionCount": 3}
    ctx, params = recorder.calls[0]
    assert params == {}
    assert (ctx.service, ctx.operation, ctx.region, ctx.access_key_id) == (
        "lambda",
        "GetAccountSettings",
        "eu-west-1",
        "AKID",
    )
    assert ctx.account_id == SECURE.account_id
    assert ctx.base_url == "http://127.0.0.1:4566"
    assert parsed["ResponseMetadata"]["RequestId"] == ctx.request_id
    assert response.headers["X-Lamina-Test"] == "yes"


def test_handler_errors_are_aws_errors():
    app, _ = make_app()
    parsed = parse("lambda", "GetFunction", call(app, "GetFunction", {"FunctionName": "nope"}))
    assert parsed["Error"] == {"Code": "ResourceNotFoundException", "Message": "Function not found: nope"}
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_unexpected_exceptions_are_500_without_details(caplog):
    app, _ = make_app()
    with caplog.at_level(logging.ERROR, logger="lamina.api.app"):
        response = call(app, "Invoke", {"FunctionName": "f", "Payload": b"crash"})
    assert response.status == 500
    assert b"secret internal detail" not in response.body and b"Traceback" not in response.body
    assert parse("lambda", "Invoke", response)["Error"]["Code"] == "ServiceException"
    assert "secret internal detail" in caplog.text  # the log keeps the traceback


def test_modeled_operation_without_handler_is_501():
    app, _ = make_app()
    response = call(app, "ListFunctions", {})
    parsed = parse("lambda", "ListFunctions", response)
    assert response.status == 501
    assert parsed["Error"] == {
        "Code": "NotImplemented",
        "Message": "Lamina does not implement lambda:ListFunctions yet.",
    }


def test_validation_runs_before_the_handler():
    app, recorder = make_app()
    request = build("lambda", "Invoke", {"FunctionName": "f"})
    request.url = request.url.replace("/functions/f/", "/functions/bad%20name/")
    sign(request, "lambda")
    response = asyncio.run(app.handle(to_http(request)))
    parsed = parse("lambda", "Invoke", response)
    assert parsed["Error"]["Code"] == "ValidationException"
    assert parsed["Error"]["Message"].startswith("1 validation error detected: Value 'bad name' at 'functionName'")
    assert recorder.calls == []


def test_authentication_comes_first():
    app, recorder = make_app()
    parsed = parse("lambda", "Invoke", call(app, "Invoke", {"FunctionName": "f"}, signed=False))
    assert parsed["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 403
    parsed = parse("lambda", "Invoke", call(app, "Invoke", {"FunctionName": "f"}, secret="WRONG"))
    assert parsed["Error"]["Code"] == "InvalidSignatureException"
    unknown = to_http(build("lambda", "GetAccountSettings", {}))
    unknown.raw_path = "/2015-03-31/nowhere"
    assert asyncio.run(app.handle(unknown)).status == 403  # not 404: no route details before auth
    assert recorder.calls == []


def test_malformed_signature_in_the_service_error_format():
    app, _ = make_app()
    request = to_http(build("lambda", "GetAccountSettings", {}))
    request.headers["authorization"] = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/lambda/aws4_request"
    response = asyncio.run(app.handle(request))
    assert response.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"


def test_open_mode_serves_unsigned_requests_in_the_default_region():
    app, recorder = make_app(OPEN)
    response = call(app, "GetAccountSettings", {}, signed=False)
    assert response.status == 200
    ctx, _ = recorder.calls[0]
    assert (ctx.region, ctx.access_key_id) == (OPEN.region, None)


def test_unknown_paths_and_unserved_services():
    app, _ = make_app(OPEN)
    response = asyncio.run(app.handle(HttpRequest("GET", "/nowhere", "", {"host": "h"})))
    assert response.status == 404
    assert json.loads(response.body)["__type"] == "UnknownOperationException"
    sts = AWSRequest(
        method="POST",
        url="http://127.0.0.1:4566/",
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    sign(sts, "sts")
    response = asyncio.run(app.handle(to_http(sts)))
    assert response.status == 501 and b"does not implement the sts service" in response.body


def test_json_services_route_by_target():
    app = EdgeApp(OPEN)
    seen = []

    async def put_record(ctx, params):
        seen.append(params)
        return {"ShardId": "shardId-000000000000", "SequenceNumber": "1"}

    app.register_service("kinesis", {"PutRecord": put_record})
    app.register_service("lambda", {})
    request = http_request("kinesis", "PutRecord", {"StreamName": "s", "Data": b"x", "PartitionKey": "p"})
    response = asyncio.run(app.handle(request))
    assert parse("kinesis", "PutRecord", response)["ShardId"] == "shardId-000000000000"
    assert seen == [{"StreamName": "s", "Data": b"x", "PartitionKey": "p"}]
    listing = http_request("kinesis", "ListStreams", {})
    assert parse("kinesis", "ListStreams", asyncio.run(app.handle(listing)))["Error"]["Code"] == "NotImplemented"


def test_plain_routes():
    app, _ = make_app()

    async def health(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, {"Content-Type": "text/plain"}, b"ok " + request.raw_path.encode())

    app.register_route("/_lamina/health", health)
    app.register_route("/_lamina/private", health, auth=True)
    got = asyncio.run(app.handle(HttpRequest("GET", "/_lamina/health", "", {})))
    assert (got.status, got.body) == (200, b"ok /_lamina/health")
    assert asyncio.run(app.handle(HttpRequest("POST", "/_lamina/health", "", {}))).status == 405
    denied = asyncio.run(app.handle(HttpRequest("GET", "/_lamina/private", "", {})))
    assert denied.status == 403


def test_registration_errors():
    app, _ = make_app()
    with pytest.raises(ConfigError, match="already registered"):
        app.register_service("lambda", {})
    with pytest.raises(ConfigError, match="no operations named Nope"):
        EdgeApp(OPEN).register_service("lambda", {"Nope": None})
    with pytest.raises(ConfigError, match="CreateFunction"):
        EdgeApp(OPEN, max_body_bytes=1024)


# -- ASGI -----------------------------------------------------------------------------------------


def asgi(app: EdgeApp, request, chunks: list[bytes] | None = None) -> list[dict]:
    """Run one request through the ASGI interface; the messages the app sent."""
    http = to_http(request)
    body_chunks = chunks if chunks is not None else [http.body]
    scope = {
        "type": "http",
        "method": http.method,
        "path": http.raw_path,
        "raw_path": http.raw_path.encode(),
        "query_string": http.query.encode(),
        "headers": [(k.encode(), v.encode()) for k, v in http.headers.items()],
        "scheme": "http",
        "server": ("127.0.0.1", 4566),
    }
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(body_chunks) - 1} for i, c in enumerate(body_chunks)
    ]
    sent: list[dict] = []

    async def receive():
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_one_start_and_one_body_with_length_and_request_id():
    app, _ = make_app(OPEN)
    request = build("lambda", "Invoke", {"FunctionName": "f", "Payload": b"abc"})
    sent = asgi(app, request, chunks=[b"a", b"b", b"c"])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    headers = dict(sent[0]["headers"])
    assert sent[1]["body"] == b"abc!"
    assert headers[b"content-length"] == b"4"
    assert b"x-amzn-RequestId" in headers


def test_oversized_bodies_are_refused_unread():
    app, _ = make_app(OPEN)
    request = build("lambda", "CreateFunction", {"FunctionName": "f", "Role": "r", "Code": {}}, validate=False)
    request.headers["Content-Length"] = str(CREATE_REQUEST_LIMIT + 1)
    sent = asgi(app, request, chunks=[])
    headers = dict(sent[0]["headers"])
    assert sent[0]["status"] == 413
    assert headers[b"x-amzn-ErrorType"] == b"RequestEntityTooLargeException"
    assert headers[b"Connection"] == b"close"
    assert json.loads(sent[1]["body"])["message"] == (
        f"Request must be smaller than {CREATE_REQUEST_LIMIT} bytes for the CreateFunction operation"
    )


def test_streamed_bodies_are_capped_too():
    app = EdgeApp(OPEN, max_body_bytes=CREATE_REQUEST_LIMIT)
    app.register_service("lambda", {})
    request = build("lambda", "Invoke", {"FunctionName": "f"})
    del request.headers["Content-Length"]
    chunk = b"x" * (CREATE_REQUEST_LIMIT // 2 + 1)
    sent = asgi(app, request, chunks=[chunk, chunk])
    assert sent[0]["status"] == 413


def test_lifespan_runs_hooks():
    app, _ = make_app(OPEN)
    events = []

    async def up():
        events.append("up")

    async def down():
        events.append("down")

    app.on_startup.append(up)
    app.on_shutdown.append(down)
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = []

    async def receive():
        return inbox.pop(0)

    async def send(message):
        sent.append(message["type"])

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert events == ["up", "down"]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
