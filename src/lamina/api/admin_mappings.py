"""`/_lamina/mappings/...`: what each event source mapping is doing, per shard, and replay of the
batches that went to OnFailure (beyond AWS), for `lamina mappings`.

GET  /_lamina/mappings/<uuid>[?lag=0]         settings, state, and per shard: checkpoint, lag
                                              (records, ms; not counted with lag=0), last result,
                                              retries in progress
GET  /_lamina/mappings/<uuid>/failed          kept batches (id, shard, condition, record)
POST /_lamina/mappings/<uuid>/replay[?id=N]   invoke the function again with kept batches
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from lamina.api.services.lambda_mappings import mapping_view
from lamina.api.wire import HttpRequest, HttpResponse, json_response
from lamina.errors import InvalidParameterValue, LaminaError
from lamina.sources.mappings.service import MappingService, replay
from lamina.sources.mappings.source import SourceGone

_PATH = re.compile(r"/_lamina/mappings/(?P<uuid>[0-9a-fA-F-]{36})(?:/(?P<what>failed|replay))?")


def _json(status: int, body: Any) -> HttpResponse:
    return json_response(status, json.dumps(body).encode())


class MappingAdminRoutes:
    def __init__(self, service: MappingService, authorize: Callable[[HttpRequest], object]) -> None:
        self.service = service
        self.authorize = authorize

    async def handle(self, request: HttpRequest) -> HttpResponse:
        try:
            self.authorize(request)
            match = _PATH.fullmatch(request.raw_path)
            if not match:
                return _json(404, {"code": "NotFound", "message": f"no route {request.raw_path}"})
            uuid, what = match["uuid"], match["what"]
            method = "POST" if what == "replay" else "GET"
            if request.method != method:
                return _json(405, {"code": "MethodNotAllowed", "message": f"use {method} for this route"})
            if what is None:
                lag = dict(request.query_pairs).get("lag", "1") != "0"  # ?lag=0: skip counting the lag
                return _json(200, await asyncio.to_thread(self._show, uuid, lag))
            if what == "failed":
                batches = await asyncio.to_thread(self.service.failed_batches, uuid, 1000)
                return _json(200, {"uuid": uuid, "batches": [
                    {"id": b.id, "shard": b.shard, "condition": b.condition, "failed": b.failed,
                     "replayed": b.replayed, "record": json.loads(b.record)} for b in batches]})  # fmt: skip
            ids = [_int(v) for k, v in request.query_pairs if k == "id"] or None
            results = await replay(self.service, uuid, ids)
            return _json(200, {"uuid": uuid, "replayed": [
                {"id": r.batch_id, "ok": r.ok, "functionError": r.function_error,
                 "response": r.response.decode(errors="replace")} for r in results]})  # fmt: skip
        except LaminaError as exc:
            return _json(exc.status, {"code": exc.code, "message": exc.message})

    def _show(self, uuid: str, lag: bool = True) -> dict[str, Any]:
        service = self.service
        config = service.get(uuid)
        live = service.engine.shard_status(uuid)
        runner = service.engine.runners.get(uuid)
        shards = []
        for checkpoint in service.checkpoints(uuid):
            status = live.get(checkpoint.shard, {})
            lag_records, lag_ms = 0, 0
            if lag and runner is not None and not checkpoint.finished:
                try:
                    lag_records, lag_ms = runner.source.lag(checkpoint.shard, checkpoint.position)
                except (SourceGone, ValueError):
                    pass
            shards.append({
                "shard": checkpoint.shard,
                "checkpoint": checkpoint.position,
                "finished": checkpoint.finished,
                "lagRecords": lag_records,
                "lagMs": lag_ms,
                "iteratorAgeMs": status.get("iteratorAgeMs", 0),
                "lastResult": status.get("lastResult", "-"),
                "retries": status.get("retries", 0),
                "processed": status.get("processed", 0),
            })  # fmt: skip
        kept = service.failed_batches(uuid, 1000)
        return {"mapping": mapping_view(config, service), "shards": shards, "failedBatches": len(kept),
                "notReplayed": sum(1 for b in kept if b.replayed is None)}  # fmt: skip


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidParameterValue("id must be an integer") from None
