"""Query-protocol services at the edge: the Action is found in the form body once it is read,
errors come back as query XML with the request id, and STS/IAM share one endpoint."""

from __future__ import annotations

import asyncio

from lamina.api.app import EdgeApp
from lamina.api.context import RequestContext
from lamina.api.wire import HttpResponse
from lamina.config import Settings
from lamina.errors import NoSuchEntity

from .botocore_wire import build, parse, sign, to_http

OPEN = Settings(interpreters={})


async def whoami(ctx: RequestContext, params: dict) -> dict:
    return {"UserId": ctx.access_key_id, "Account": ctx.account_id, "Arn": f"arn:{ctx.operation}"}


async def get_role(ctx: RequestContext, params: dict) -> dict:
    raise NoSuchEntity(f"The role with name {params['RoleName']} cannot be found.")


def make_app() -> EdgeApp:
    app = EdgeApp(OPEN)
    app.register_service("sts", {"GetCallerIdentity": whoami})
    app.register_service("iam", {"GetRole": get_role})
    return app


def over_asgi(app: EdgeApp, request) -> tuple[int, dict[str, str], bytes]:
    """Through the ASGI entry, so the body arrives after routing started."""
    http = to_http(request)
    scope = {"type": "http", "method": http.method, "path": http.raw_path, "raw_path": http.raw_path.encode(),
             "query_string": http.query.encode(), "headers": [(k.encode(), v.encode()) for k, v in http.headers.items()]}  # fmt: skip
    messages = [{"type": "http.request", "body": http.body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, sent[1]["body"]


def test_action_in_the_body_routes_after_the_body_is_read():
    request = sign(build("sts", "GetCallerIdentity", {}), "sts", key="AKIAME")
    status, headers, body = over_asgi(make_app(), request)
    assert status == 200
    parsed = parse("sts", "GetCallerIdentity", HttpResponse(status, headers, body))
    assert parsed["UserId"] == "AKIAME" and parsed["Arn"] == "arn:GetCallerIdentity"
    assert parsed["ResponseMetadata"]["RequestId"] == headers["x-amzn-RequestId"]


def test_iam_errors_are_query_xml():
    app = make_app()
    request = sign(build("iam", "GetRole", {"RoleName": "ghost"}), "iam")
    response = asyncio.run(app.handle(to_http(request)))
    assert response.status == 404
    parsed = parse("iam", "GetRole", response)
    assert parsed["Error"]["Code"] == "NoSuchEntity"
    assert parsed["ResponseMetadata"]["RequestId"] == response.headers["x-amzn-RequestId"]


def test_unimplemented_and_unknown_actions():
    app = make_app()
    request = sign(build("iam", "ListUsers", {}), "iam")
    response = asyncio.run(app.handle(to_http(request)))
    assert response.status == 501 and parse("iam", "ListUsers", response)["Error"]["Code"] == "NotImplemented"
    http = to_http(sign(build("iam", "ListUsers", {}), "iam"))
    http.body = b"Action=Bogus&Version=2010-05-08"  # open access: the signature is not checked
    response = asyncio.run(app.handle(http))
    assert response.status == 404 and parse("iam", "ListUsers", response)["Error"]["Code"] == "InvalidAction"


def test_unsigned_requests_find_their_service_by_action():
    app = make_app()
    status, headers, body = over_asgi(app, build("sts", "GetCallerIdentity", {}))  # not signed
    parsed = parse("sts", "GetCallerIdentity", HttpResponse(status, headers, body))
    assert status == 200 and parsed["Arn"] == "arn:GetCallerIdentity" and "UserId" not in parsed  # no key
    response = asyncio.run(app.handle(to_http(build("iam", "GetRole", {"RoleName": "x"}))))
    assert response.status == 404 and parse("iam", "GetRole", response)["Error"]["Code"] == "NoSuchEntity"
