"""`/_lamina/events/...`: the async queue's state and failed-event redrive (beyond AWS), for the CLI.

GET  /_lamina/events/<fn>                 depth, in-flight, in-retry, oldest age, failed count
GET  /_lamina/events/<fn>/failed?limit=N   failed events: id, payload, attempts, condition, error
POST /_lamina/events/<fn>/redrive[?id=ID]  queue failed events again (all, or those named)
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable
from typing import Any

from lamina.api.admin_json import JsonAdminRoutes, query_int
from lamina.api.wire import HttpRequest
from lamina.invoke.asynchronous.queue import EventQueue
from lamina.model.events import QueuedEvent

_PATH = re.compile(r"/_lamina/events/(?P<name>[a-zA-Z0-9_-]{1,64})(?:/(?P<what>failed|redrive))?")


def failed_view(event: QueuedEvent) -> dict[str, Any]:
    try:
        payload: Any = json.loads(event.payload)
    except (ValueError, UnicodeDecodeError):
        payload = {"base64": base64.b64encode(event.payload).decode()}
    return {
        "id": event.id,
        "qualifier": event.qualifier,
        "enqueued": event.enqueued,
        "attempts": event.attempts,
        "condition": str(event.condition) if event.condition else None,
        "last_error": event.last_error,
        "payload": payload,
    }


class EventAdminRoutes(JsonAdminRoutes):
    path = _PATH
    post_action = "redrive"

    def __init__(self, queue: EventQueue, authorize: Callable[[HttpRequest], object]) -> None:
        super().__init__(authorize)
        self.queue = queue

    async def serve(self, request: HttpRequest, match: re.Match[str]) -> Any:
        name, what = match["name"], match["what"]
        if what is None:
            return await self.queue.stats(name)
        if what == "failed":
            limit = query_int(dict(request.query_pairs), "limit", 100)
            events = await asyncio.to_thread(self.queue.failed, name, limit)
            return {"function": name, "events": [failed_view(e) for e in events]}
        ids = [v for k, v in request.query_pairs if k == "id"] or None
        return {"function": name, "redriven": await self.queue.redrive(name, ids)}
