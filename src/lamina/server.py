"""The composition root: builds the embedded platform from Settings and serves it.

Everything is wired here and nowhere else, so each service gets its collaborators through its
constructor (no module-level singletons).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from lamina import gc_tuning
from lamina.api.admin import AdminRoutes
from lamina.api.admin_events import EventAdminRoutes
from lamina.api.admin_mappings import MappingAdminRoutes
from lamina.api.app import EdgeApp
from lamina.api.edge_workers import EdgeWorkers
from lamina.api.server import server_config
from lamina.api.services.iam import IamApi
from lamina.api.services.kinesis import register_kinesis
from lamina.api.services.lambda_ import CodeUrls, LambdaApi
from lamina.api.services.lambda_async import AsyncInvokeApi
from lamina.api.services.lambda_concurrency import ConcurrencyApi
from lamina.api.services.lambda_mappings import MappingsApi
from lamina.api.services.lambda_versions import VersionsApi
from lamina.api.services.logs import register_logs
from lamina.api.services.sts import StsApi, api_credentials
from lamina.config import Settings
from lamina.functions.concurrency import ConcurrencyService
from lamina.functions.service import FunctionService
from lamina.iam import IamService, TokenService
from lamina.invoke.asynchronous import AsyncInvocation
from lamina.invoke.provisioning import Provisioner
from lamina.invoke.sandbox_env import RoleCredentials
from lamina.invoke.service import InvokeService
from lamina.model.function import FunctionConfig
from lamina.runtime.pool import ProcessPool
from lamina.sources.mappings.platform import EventSourceMappings
from lamina.store.code import FileCodeStore
from lamina.store.sqlite import SqliteStore
from lamina.store.sqlite.events import SqliteEventStore
from lamina.store.sqlite.iam import SqliteIamStore

log = logging.getLogger("lamina")


class Platform:
    """Every service of one embedded Lamina, and the edge that serves them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        # Functions may run under their own unprivileged uid: they must be able to traverse the
        # data dir to reach their (read-only) code, but not list or read anything else in it.
        os.chmod(data_dir, 0o711)
        self.store = SqliteStore.from_settings(settings)
        self.code = FileCodeStore.from_settings(settings)
        self.pool = ProcessPool(settings)
        self.functions = FunctionService(settings, self.store, self.code)
        self.invoker = InvokeService(settings, self.functions, self.pool, self.store, self.store)
        events = SqliteEventStore(self.store.database)
        self.asynchronous = AsyncInvocation(settings, events, self.functions, self.invoker)
        self.invoker.events = self.asynchronous.queue
        self.functions.dead_letter_check = lambda arn: self.asynchronous.validate_target(arn, "DeadLetterConfig")
        self.concurrency = ConcurrencyService(settings, self.functions, self.store, self.invoker.limiter)
        self.concurrency.load()
        self.provisioner = Provisioner(self.concurrency, self.invoker, self.pool)
        key = hashlib.sha256(f"code-urls:{settings.secret_access_key}".encode()).digest() if (
            settings.secret_access_key
        ) else None  # fmt: skip
        self.code_urls = CodeUrls(key)
        iam_store = SqliteIamStore(self.store.database)
        self.iam = IamService(iam_store, settings.account_id)
        self.tokens = TokenService(self.iam, iam_store, settings.access_key_id)
        self.app = EdgeApp(settings, api_credentials(settings, self.tokens))
        # The Lambda API is served by several rooms, one handler table: functions, versions and
        # aliases, concurrency, asynchronous invocation, event source mappings.
        lambda_handlers = LambdaApi(self.functions, self.invoker, self.code_urls, self.concurrency).handlers()
        lambda_handlers.update(VersionsApi(self.functions).handlers())
        lambda_handlers.update(ConcurrencyApi(self.concurrency, self.provisioner).handlers())
        lambda_handlers.update(AsyncInvokeApi(self.asynchronous.configs, self.invoker).handlers())
        self.streams = register_kinesis(self.app, settings, self.store.database)
        self.mappings = EventSourceMappings(settings, self.store.database, self.functions, self.invoker,
                                            self.streams, self.asynchronous)  # fmt: skip
        lambda_handlers.update(MappingsApi(self.mappings.service).handlers())
        self.app.register_service("lambda", lambda_handlers)
        self.app.register_service("sts", StsApi(self.tokens).handlers())
        self.app.register_service("iam", IamApi(self.iam, self.tokens).handlers())
        if settings.strict_roles:
            self.functions.role_check = self.iam.check_role
        self.invoker.role_credentials = self._role_credentials
        self.logs = register_logs(self.app, settings, self.store)  # sweeps retention while serving
        admin = AdminRoutes(settings, self.store, self.functions, self.invoker, self.code_urls, self.app.authorize)
        self.app.register_route("/_lamina/", admin.handle, methods=("GET",))
        events_admin = EventAdminRoutes(self.asynchronous.queue, self.app.authorize)
        self.app.register_route("/_lamina/events/", events_admin.handle, methods=("GET", "POST"))
        mappings_admin = MappingAdminRoutes(self.mappings.service, self.app.authorize)
        self.app.register_route("/_lamina/mappings/", mappings_admin.handle, methods=("GET", "POST"))
        self.app.on_startup.append(self._startup)
        self.app.on_shutdown.append(self._shutdown)

    def _role_credentials(self, config: FunctionConfig) -> RoleCredentials | None:
        """Environments run with their execution role's temporary credentials when IAM has it."""
        session = self.tokens.function_session(config.role, config.name)
        if session is None:
            return None
        return RoleCredentials(session.access_key_id, session.secret, session.token, session.expires)

    async def _startup(self) -> None:
        loop = asyncio.get_running_loop()
        # The control plane runs in worker threads; retirement belongs on the loop's thread.
        self.functions.on_change(
            lambda name, qualifier: loop.call_soon_threadsafe(self.invoker.function_changed, name, qualifier)
        )
        self.functions.on_change(
            lambda name, qualifier: loop.call_soon_threadsafe(self.provisioner.changed, name, qualifier)
        )
        self._prestart = loop.create_task(self._prestart_zygotes())
        await self.asynchronous.start()  # recovers queued events and starts the consumer
        await self.mappings.start()  # resumes enabled event source mappings at their checkpoints
        self._provisioning = loop.create_task(self.provisioner.start())

    async def _prestart_zygotes(self) -> None:
        """Boot the zygotes of the runtimes in use (and the host's) so first invokes skip it."""
        records = await asyncio.to_thread(self.store.list_functions, None, 200)
        runtimes = {r.config.runtime for r in records} | {f"python{sys.version_info[0]}.{sys.version_info[1]}"}
        for runtime in sorted(runtimes):
            try:
                await self.pool.prestart(self.settings.interpreter_for(runtime)[0], self.settings.preload, runtime)
            except Exception as exc:  # a runtime that cannot start fails its invokes, not the server
                log.warning("could not pre-start the %s zygote: %s", runtime, exc)

    async def _shutdown(self) -> None:
        self._prestart.cancel()
        await self.mappings.stop()  # after the batches in flight (before the queue and the pool go)
        await self.asynchronous.stop()
        self._provisioning.cancel()
        await self.pool.close()
        await asyncio.to_thread(self.store.close)


def serve(settings: Settings, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM; `on_ready(endpoint)` runs in a thread once requests are accepted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gc_tuning.tune()
    platform = Platform(settings)
    server = uvicorn.Server(server_config(platform.app, settings.host, settings.port, log_level="warning"))
    if on_ready is not None:
        threading.Thread(target=_when_started, args=(server, settings, on_ready), daemon=True).start()
    sockets = None  # uvicorn binds the configured host and port
    if settings.edge_workers > 0:  # they own the port; this process serves them on a Unix socket
        workers = EdgeWorkers(settings, platform.streams.signal)
        platform.app.on_startup.append(workers.start)
        platform.app.on_shutdown.insert(0, workers.stop)
        sockets = [workers.core_socket()]
    platform.app.on_startup.append(_freeze)
    server.run(sockets=sockets)


async def _freeze() -> None:
    gc_tuning.freeze()  # the platform is built and started: what lives now lives on


def _when_started(server: uvicorn.Server, settings: Settings, on_ready: Callable[[str], None]) -> None:
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.01)
    try:
        on_ready(settings.endpoint)
    except Exception as exc:  # the server keeps serving; say what went wrong, once
        log.error("start-up callback failed: %s", exc)
