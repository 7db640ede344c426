"""What an operation handler knows about the request it serves, and the handler contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from lamina.api.wire import HttpRequest, HttpResponse


@dataclass(slots=True)
class RequestContext:
    """One AWS API request, after authentication and routing.

    `base_url` is the scheme and host the client used (`http://127.0.0.1:4566`), so handlers can
    build URLs the client can reach (GetFunction's Code.Location). `response_headers` lets a
    handler add headers the output shape does not model (e.g. `Content-Type` of a raw payload);
    modeled members always go in the returned dict.
    """

    request_id: str
    service: str  # botocore service name: "lambda", "kinesis", ...
    operation: str  # botocore operation name: "Invoke", "CreateFunction", ...
    region: str  # from the SigV4 credential scope, else Settings.region
    account_id: str
    access_key_id: str | None  # the caller's key; None when the request was not signed
    headers: dict[str, str]  # lower-case names, as received
    base_url: str
    response_headers: dict[str, str] = field(default_factory=dict)


# An operation handler: params as a boto3 user would have passed them, output as boto3 returns it
# (minus ResponseMetadata). Raise `lamina.errors.LaminaError` subclasses for AWS errors.
Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[dict[str, Any]]]

# A plain (non-AWS) route: `GET /_lamina/health` and friends.
RouteHandler = Callable[[HttpRequest], Awaitable[HttpResponse]]
