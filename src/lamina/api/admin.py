"""Lamina's own routes under `/_lamina/`: health, code downloads, and the views the CLI reads
(logs, cost). `lamina logs` reads logs here rather than through the CloudWatch Logs API because
this route's cursor is commit order, which makes `--follow` gapless (docs/decisions/0080).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from lamina.api.admin_json import json_reply, query_int
from lamina.api.services.lambda_ import CodeUrls
from lamina.api.wire import HttpRequest, HttpResponse
from lamina.config import Settings
from lamina.errors import LaminaError
from lamina.functions.service import FunctionService
from lamina.invoke.service import InvokeService
from lamina.logs.patterns import compile_pattern
from lamina.store.base import LogEvent, Store

_CODE_PATH = re.compile(r"/_lamina/code/(?P<sha>[0-9a-f]{64})\.zip")
_LOGS_PATH = re.compile(r"/_lamina/logs/(?P<name>[a-zA-Z0-9_-]{1,64})")


def _error(exc: LaminaError) -> HttpResponse:
    return json_reply(exc.status, {"code": exc.code, "message": exc.message})


class AdminRoutes:
    """Handlers for `/_lamina/*`. `authorize` raises an AuthError for requests that must be signed."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        functions: FunctionService,
        invoker: InvokeService,
        code_urls: CodeUrls,
        authorize: Callable[[HttpRequest], None],
    ) -> None:
        self.settings = settings
        self.store = store
        self.functions = functions
        self.invoker = invoker
        self.code_urls = code_urls
        self.authorize = authorize
        self.started = time.time()

    async def handle(self, request: HttpRequest) -> HttpResponse:
        try:
            if request.raw_path == "/_lamina/health":
                return self.health()
            match = _CODE_PATH.fullmatch(request.raw_path)
            if match:  # authorised by its signature, like a presigned S3 URL
                return await self.code(match["sha"], dict(request.query_pairs))
            self.authorize(request)
            if request.method != "GET":
                return json_reply(405, {"code": "MethodNotAllowed", "message": "only GET is served here"})
            match = _LOGS_PATH.fullmatch(request.raw_path)
            if match:
                return await asyncio.to_thread(self.logs, match["name"], dict(request.query_pairs))
            if request.raw_path == "/_lamina/cost":
                return await asyncio.to_thread(self.cost, dict(request.query_pairs))
            return json_reply(404, {"code": "NotFound", "message": f"no route {request.raw_path}"})
        except LaminaError as exc:
            return _error(exc)

    def health(self) -> HttpResponse:
        uptime = round(time.time() - self.started, 3)
        return json_reply(200, {"status": "ok", "uptime_s": uptime, **self.invoker.stats()})

    async def code(self, sha: str, query: dict[str, str]) -> HttpResponse:
        if not self.code_urls.verify(sha, query.get("expires", ""), query.get("signature", "")):
            message = "Request has expired or the signature is invalid"
            return json_reply(403, {"code": "AccessDenied", "message": message})
        try:
            data = await asyncio.to_thread(self.functions.code.zip_path(sha).read_bytes)
        except OSError:
            return json_reply(404, {"code": "NoSuchKey", "message": "The code package does not exist."})
        return HttpResponse(200, {"Content-Type": "application/zip"}, data)

    def logs(self, name: str, query: dict[str, str]) -> HttpResponse:
        """Events of `/aws/lambda/<name>`: the last `tail` ones, or those after the `after` cursor.

        The cursor is an event id (commit order), so `lamina logs --follow` misses nothing, not
        even an event committed late with an early timestamp. `filter` (a Logs filter pattern),
        `stream` (one stream's name) and `since` (epoch ms) narrow either kind of answer."""
        group = self._log_group(name)
        if {"filter", "stream", "since"} & query.keys():
            return json_reply(200, self._narrowed_logs(group, query))
        if "after" in query:
            after = query_int(query, "after")
            rows = self.store.get_log_events(group, after_id=after, limit=query_int(query, "limit", 1000))
        else:
            rows = self.store.tail_log_events(group, limit=query_int(query, "tail", 200))
            after = 0
        events = [{"id": i, "stream": s, "timestamp": e.timestamp_ms, "message": e.message} for i, s, e in rows]
        cursor = max([after, *(e["id"] for e in events)]) if events else (after or self.store.last_log_event_id())
        return json_reply(200, {"events": events, "cursor": cursor})

    def _narrowed_logs(self, group: str, query: dict[str, str]) -> dict[str, Any]:
        match = compile_pattern(query.get("filter"))
        stream = query.get("stream") or None
        since = query_int(query, "since") if query.get("since") else None
        if "after" in query:
            after = query_int(query, "after")
            rows = self.store.get_log_events(group, stream, since, None, after, query_int(query, "limit", 1000))
            cursor = max([after, *(i for i, _, _ in rows)])  # past the events that did not match too
            rows = [row for row in rows if match(row[2].message)]
        else:
            # The cursor is read first: whatever commits during the scan is the follower's.
            cursor = self.store.last_log_event_id()
            kept: deque[tuple[int, str, LogEvent]] = deque(maxlen=query_int(query, "tail", 200))
            after = 0
            while page := self.store.get_log_events(group, stream, since, None, after, 5000):
                after = max(i for i, _, _ in page)
                kept.extend(row for row in page if match(row[2].message))
            rows = sorted(kept, key=lambda row: (row[2].timestamp_ms, row[0]))
            cursor = max(cursor, after)
        events = [{"id": i, "stream": s, "timestamp": e.timestamp_ms, "message": e.message} for i, s, e in rows]
        return {"events": events, "cursor": cursor}

    def _log_group(self, name: str) -> str:
        record = self.store.get_function(name)
        return record.config.log_group if record else f"/aws/lambda/{name}"

    def cost(self, query: dict[str, str]) -> HttpResponse:
        since = float(query["since"]) if query.get("since") else None
        s = self.settings
        rows = []
        for row in self.store.cost_by_function(since):
            dollars = row.requests * s.price_per_request + row.gb_seconds * s.price_per_gb_second
            rows.append({"function": row.function, "requests": row.requests, "billed_ms": row.billed_ms,
                         "gb_seconds": row.gb_seconds, "dollars": dollars})  # fmt: skip
        requests = sum(r["requests"] for r in rows)
        gbs = sum(r["gb_seconds"] for r in rows)
        billable = (
            max(0, requests - s.free_requests) * s.price_per_request
            + max(0.0, gbs - s.free_gb_seconds) * s.price_per_gb_second
        )
        total = {
            "requests": requests,
            "billed_ms": sum(r["billed_ms"] for r in rows),
            "gb_seconds": gbs,
            "dollars": sum(r["dollars"] for r in rows),
            "dollars_after_free_tier": billable,
        }
        return json_reply(200, {
            "functions": rows,
            "total": total,
            "prices": {"per_request": s.price_per_request, "per_gb_second": s.price_per_gb_second},
            "free_tier": {"requests": s.free_requests, "gb_seconds": s.free_gb_seconds},
        })  # fmt: skip
