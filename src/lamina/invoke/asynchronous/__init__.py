"""Asynchronous invocation: the durable event queue, its consumer, EventInvokeConfigs and
destinations. `AsyncInvocation` wires the parts; server.py composes it (docs/async.md)."""

from __future__ import annotations

import logging

from lamina.config import Settings
from lamina.errors import LaminaError
from lamina.functions.names import FunctionRef
from lamina.functions.service import FunctionService
from lamina.invoke.asynchronous.configs import EventInvokeConfigs
from lamina.invoke.asynchronous.destinations import Destinations, LambdaTarget
from lamina.invoke.asynchronous.queue import EventQueue
from lamina.invoke.service import InvokeService
from lamina.store.events import EventStore

log = logging.getLogger("lamina.async")


class AsyncInvocation:
    """The async parts of one platform: `queue` is InvokeService's EventSink."""

    def __init__(self, settings: Settings, store: EventStore, functions: FunctionService, invoker: InvokeService):
        self.functions = functions
        self.destinations = Destinations()
        self.destinations.register("lambda", LambdaTarget(functions))
        self.configs = EventInvokeConfigs(settings, store, functions, self.destinations)
        self.queue = EventQueue(settings, store, invoker, self.configs, self.destinations)

    def validate_target(self, arn: str, purpose: str, source: str | None = None) -> None:
        """Raise InvalidParameterValue unless Lamina can deliver to `arn` for `purpose`
        ("OnSuccess", "OnFailure" or "DeadLetterConfig"); for CreateFunction/UpdateFunctionConfiguration."""
        self.destinations.validate_target(arn, purpose, source)

    async def start(self) -> None:
        self.functions.on_change(self._function_changed)
        await self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()

    def _function_changed(self, name: str, qualifier: str | None = None) -> None:
        """Drop the EventInvokeConfigs of a deleted function, version or alias (worker thread)."""
        try:
            if qualifier is None:
                if self.functions.store.get_function(name) is None:
                    self.configs.forget(name)
            elif qualifier != "$LATEST":
                try:
                    self.functions.resolve(FunctionRef(name, qualifier))
                except LaminaError:
                    self.configs.forget(name, qualifier)
        except Exception:
            log.exception("could not drop the EventInvokeConfigs of %s:%s", name, qualifier)
