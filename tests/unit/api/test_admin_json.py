"""JsonAdminRoutes: the routing, method and error rules every `/_lamina/...` JSON room shares."""

from __future__ import annotations

import asyncio
import json
import re

from lamina.api.admin_json import JsonAdminRoutes
from lamina.api.wire import HttpRequest
from lamina.errors import InvalidParameterValue, UnrecognizedClient


class Things(JsonAdminRoutes):
    path = re.compile(r"/_lamina/things/(?P<key>[a-z]+)(?:/(?P<what>list|poke))?")
    post_action = "poke"

    async def serve(self, request, match):
        if match["key"] == "bad":
            raise InvalidParameterValue("bad thing")
        return {"key": match["key"], "what": match["what"]}


def call(routes: JsonAdminRoutes, method: str, path: str):
    response = asyncio.run(routes.handle(HttpRequest(method, path, "", {})))
    return response.status, json.loads(response.body)


def test_reads_are_gets_and_the_action_is_a_post():
    routes = Things(authorize=lambda request: None)
    assert call(routes, "GET", "/_lamina/things/a") == (200, {"key": "a", "what": None})
    assert call(routes, "GET", "/_lamina/things/a/list") == (200, {"key": "a", "what": "list"})
    assert call(routes, "POST", "/_lamina/things/a/poke") == (200, {"key": "a", "what": "poke"})
    assert call(routes, "GET", "/_lamina/things/a/poke")[0] == 405
    assert call(routes, "POST", "/_lamina/things/a")[0] == 405
    assert call(routes, "GET", "/_lamina/things/A")[0] == 404
    assert call(routes, "GET", "/_lamina/things/a/other")[0] == 404


def test_errors_keep_their_code_and_status_and_authorisation_comes_first():
    routes = Things(authorize=lambda request: None)
    assert call(routes, "GET", "/_lamina/things/bad") == (
        400, {"code": "InvalidParameterValueException", "message": "bad thing"},
    )  # fmt: skip

    def refuse(request):
        raise UnrecognizedClient("who are you")

    status, body = call(Things(authorize=refuse), "GET", "/_lamina/things/a")
    assert status == 403 and body["code"] == UnrecognizedClient.code
