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

from lamina.api.admin_json import JsonAdminRoutes, parse_int
from lamina.api.services.lambda_mappings import mapping_view
from lamina.api.wire import HttpRequest
from lamina.sources.mappings.service import MappingService, replay
from lamina.sources.mappings.source import SourceGone

_PATH = re.compile(r"/_lamina/mappings/(?P<uuid>[0-9a-fA-F-]{36})(?:/(?P<what>failed|replay))?")


class MappingAdminRoutes(JsonAdminRoutes):
    path = _PATH
    post_action = "replay"

    def __init__(self, service: MappingService, authorize: Callable[[HttpRequest], object]) -> None:
        super().__init__(authorize)
        self.service = service

    async def serve(self, request: HttpRequest, match: re.Match[str]) -> Any:
        uuid, what = match["uuid"], match["what"]
        if what is None:
            lag = dict(request.query_pairs).get("lag", "1") != "0"  # ?lag=0: skip counting the lag
            return await asyncio.to_thread(self._show, uuid, lag)
        if what == "failed":
            batches = await asyncio.to_thread(self.service.failed_batches, uuid, 1000)
            return {"uuid": uuid, "batches": [
                {"id": b.id, "shard": b.shard, "condition": b.condition, "failed": b.failed,
                 "replayed": b.replayed, "record": json.loads(b.record)} for b in batches]}  # fmt: skip
        ids = [parse_int(v, "id", non_negative=False) for k, v in request.query_pairs if k == "id"] or None
        results = await replay(self.service, uuid, ids)
        return {"uuid": uuid, "replayed": [
            {"id": r.batch_id, "ok": r.ok, "functionError": r.function_error,
             "response": r.response.decode(errors="replace")} for r in results]}  # fmt: skip

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
