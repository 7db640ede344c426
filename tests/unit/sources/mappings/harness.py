"""An in-process mapping engine over in-memory stores, with a Python handler standing in for the
function: the engine's semantics in milliseconds, without a server."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import zipfile
from collections.abc import Callable
from typing import Any

from lamina.config import Settings
from lamina.errors import TooManyRequests
from lamina.functions.service import FunctionDraft, FunctionService
from lamina.invoke.asynchronous.destinations import Destinations, LambdaTarget
from lamina.model.invocation import InvokeRequest, InvokeResult
from lamina.sources.mappings import MappingChange, MappingEngine, MappingService, stream_sources
from lamina.sources.streams import Entry, SqliteStreamStore, StreamService
from lamina.sources.streams.memory import MemoryStreamStore
from lamina.store.code import FileCodeStore
from lamina.store.events import Enqueue, EventOp, EventStore
from lamina.store.mappings import MappingStore
from lamina.store.memory import MemoryStore
from lamina.store.memory_events import MemoryEventStore
from lamina.store.memory_mappings import MemoryMappingStore
from lamina.store.sqlite.database import Database
from lamina.store.sqlite.events import SqliteEventStore
from lamina.store.sqlite.mappings import SqliteMappingStore

SETTINGS = Settings(interpreters={})
ROLE = "arn:aws:iam::000000000000:role/r"
STREAM_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/s"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


class FunctionError(Exception):
    """Raised by a test handler: the invoke answers with a function error."""


Handler = Callable[[dict[str, Any]], Any]


class HandlerInvoker:
    """Stands in for InvokeService: runs `handler(event)`; FunctionError → function error,
    TooManyRequests → a throttle (raised, as InvokeService raises it)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.events: list[dict[str, Any]] = []
        self.requests: list[InvokeRequest] = []
        self.delay = 0.0  # seconds each invoke takes (to observe concurrency)
        self.in_flight = 0
        self.most_in_flight = 0

    async def invoke(self, request: InvokeRequest) -> InvokeResult:
        event = json.loads(request.payload)
        self.requests.append(request)
        self.events.append(event)
        if self.delay:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            await asyncio.sleep(self.delay)
            self.in_flight -= 1
        try:
            value = self.handler(event)
        except TooManyRequests:
            raise
        except FunctionError as exc:
            body = json.dumps({"errorMessage": str(exc), "errorType": "FunctionError"}).encode()
            return InvokeResult(request.request_id or "", 200, body, "$LATEST", function_error="Unhandled")
        body = b"" if value is None else json.dumps(value).encode()
        return InvokeResult(request.request_id or "", 200, body, "$LATEST")


def data_of(record: dict[str, Any]) -> str:
    return base64.b64decode(record["kinesis"]["data"]).decode()


class Harness:
    def __init__(
        self,
        tmp_path,
        handler: Handler = lambda event: None,
        shards: int = 1,
        database: Database | None = None,
        retention_hour_s: float = 3600.0,
    ) -> None:
        """In memory; or, given a `database`, over the SQLite stores (a second Harness on the same
        database is the same platform after a restart)."""
        self.functions = FunctionService(SETTINGS, MemoryStore(), FileCodeStore(tmp_path / "code", 10_000, 100_000))
        for name in ("f", "dest"):
            self.functions.create(FunctionDraft(name=name, role=ROLE, runtime="python3.12", handler="app.handler",
                                                zip_file=_zip()))  # fmt: skip
        if database is None:
            self.streams = StreamService(MemoryStreamStore(), retention_hour_s=retention_hour_s)
            self.events: EventStore = MemoryEventStore()
            self.store: MappingStore = MemoryMappingStore(self.events)
        else:
            self.streams = StreamService(SqliteStreamStore(database))
            self.events = SqliteEventStore(database)
            self.store = SqliteMappingStore(database)
        if self.streams.store.get_stream("s") is None:
            self.streams.create_stream("s", shards)
        self.destinations = Destinations()
        self.destinations.register("lambda", LambdaTarget(self.functions))
        self.invoker = HandlerInvoker(handler)
        self.scheduled: list[EventOp] = []
        sources = stream_sources(self.streams)
        self.engine = MappingEngine(self.store, self.functions, self.invoker, sources, self.destinations,  # type: ignore[arg-type]
                                    schedule=self.scheduled.extend, retry_base=0.005, retry_max=0.02)  # fmt: skip
        self.service = MappingService(self.store, self.functions, self.engine, sources, self.destinations,
                                      min_record_age_s=1)  # fmt: skip

    def create(self, starting: str = "TRIM_HORIZON", **settings: Any):
        timestamp = settings.pop("timestamp", None)
        change = MappingChange(function_name=settings.pop("function_name", "f"), **settings)
        return self.service.create(STREAM_ARN, starting, timestamp, change)

    def put(self, *items: str | tuple[str, str]) -> None:
        entries = [Entry(i.encode(), "k") if isinstance(i, str) else Entry(i[1].encode(), i[0]) for i in items]
        for start in range(0, len(entries), 500):
            self.streams.put_records("s", entries[start : start + 500])

    def delivered(self) -> list[dict[str, Any]]:
        """On-failure records handed to the destination function."""
        return [json.loads(op.event.payload) for op in self.scheduled if isinstance(op, Enqueue)]

    def batches(self) -> list[list[str]]:
        """The data of each invoke's records, in invoke order."""
        return [[data_of(r) for r in event["Records"]] for event in self.invoker.events]


async def until(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.002)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(e, c):\n    return 1\n")
    return buffer.getvalue()
