"""What Lamina's own JSON admin rooms share (`/_lamina/<thing>/<key>[/<action>]`, beyond AWS):
authorisation, routing by one path pattern, GET for reads and POST for the one action that
changes something, and errors as `{"code", "message"}` with the error's status."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from lamina.api.wire import HttpRequest, HttpResponse, json_response
from lamina.errors import InvalidParameterValue, LaminaError


def json_reply(status: int, body: Any) -> HttpResponse:
    return json_response(status, json.dumps(body).encode())


def parse_int(text: str, name: str, *, non_negative: bool = True) -> int:
    """A number from a query parameter, refused with a 400 that names the parameter."""
    try:
        value = int(text)
    except ValueError:
        raise InvalidParameterValue(f"{name} must be an integer") from None
    if non_negative and value < 0:
        raise InvalidParameterValue(f"{name} must not be negative")
    return value


def query_int(query: Mapping[str, str], key: str, default: int = 0) -> int:
    """`parse_int` of query parameter `key`, `default` when it is absent."""
    return parse_int(query.get(key, str(default)), key)


class JsonAdminRoutes:
    """Subclasses set `path` (a pattern with a `what` group for the action, None for the
    resource itself) and `post_action`, and implement `serve`."""

    path: re.Pattern[str]
    post_action: str

    def __init__(self, authorize: Callable[[HttpRequest], object]) -> None:
        self.authorize = authorize

    async def handle(self, request: HttpRequest) -> HttpResponse:
        try:
            self.authorize(request)
            match = self.path.fullmatch(request.raw_path)
            if not match:
                return json_reply(404, {"code": "NotFound", "message": f"no route {request.raw_path}"})
            method = "POST" if match["what"] == self.post_action else "GET"
            if request.method != method:
                return json_reply(405, {"code": "MethodNotAllowed", "message": f"use {method} for this route"})
            return json_reply(200, await self.serve(request, match))
        except LaminaError as exc:
            return json_reply(exc.status, {"code": exc.code, "message": exc.message})

    async def serve(self, request: HttpRequest, match: re.Match[str]) -> Any:
        raise NotImplementedError
