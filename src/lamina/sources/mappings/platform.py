"""The mapping parts of one embedded platform, wired once (server.py composes it): the SQLite
store, the engine, the control plane, and the listener that deletes a deleted function's mappings.
On-failure records go through the async destinations' dispatcher and, for function targets, are
scheduled on the async queue once the mapping's checkpoint committed them."""

from __future__ import annotations

import logging

from lamina.config import Settings
from lamina.functions.service import FunctionService
from lamina.invoke.asynchronous import AsyncInvocation
from lamina.invoke.service import InvokeService
from lamina.sources.mappings import stream_sources
from lamina.sources.mappings.engine import MappingEngine
from lamina.sources.mappings.service import MappingService
from lamina.sources.streams import StreamService
from lamina.store.sqlite.database import Database
from lamina.store.sqlite.mappings import SqliteMappingStore

log = logging.getLogger("lamina.mappings")


class EventSourceMappings:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        functions: FunctionService,
        invoker: InvokeService,
        streams: StreamService,
        asynchronous: AsyncInvocation,
    ) -> None:
        store = SqliteMappingStore(database)
        sources = stream_sources(streams)
        destinations = asynchronous.destinations
        self.functions = functions
        self.engine = MappingEngine(
            store,
            functions,
            invoker,
            sources,
            destinations,
            schedule=asynchronous.queue.committed,
            retry_base=settings.mapping_retry_base_seconds,
            retry_max=settings.mapping_retry_max_seconds,
        )
        self.service = MappingService(store, functions, self.engine, sources, destinations,
                                      min_record_age_s=settings.mapping_min_record_age_seconds)  # fmt: skip

    async def start(self) -> None:
        """Start the enabled mappings (resuming at their checkpoints) and follow function deletes."""
        self.functions.on_change(self._function_changed)
        await self.engine.start()

    async def stop(self) -> None:
        """Stop pollers after the batches in flight (those repeat after a restart if cut short)."""
        await self.engine.stop()

    def _function_changed(self, name: str, qualifier: str | None) -> None:
        if qualifier is not None:
            return
        try:
            if self.functions.store.get_function(name) is None:
                self.service.function_deleted(name)
        except Exception:
            log.exception("could not delete the event source mappings of %s", name)
