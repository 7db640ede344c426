"""An edge worker: a second process on the server's port that takes stream ingest off the core.

One server process tops out where its event loop and its writer thread share one interpreter
lock (decision 0110). With `LAMINA_EDGE_WORKERS=N` the core stops listening on TCP and serves
only on a Unix socket; N workers own the port (`SO_REUSEPORT`, so the kernel spreads connections
over them). A worker answers Kinesis PutRecords and PutRecord itself: it authenticates, parses,
routes and commits the records through its own group-committing writer on the same database
(decision 0110's prerequisite: writers forget their cached state when another connection
committed), acknowledges only after the commit as the core would, then tells the core which
shards have new records (a datagram to its RecordSignal), so mappings wake at once. Every other
request goes to the core as it came (forward.py), which answers it as if the client had connected
to it. A worker exits when the core does (it watches a pipe the core holds open).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import uvicorn

from lamina import gc_tuning
from lamina.api.app import EdgeApp
from lamina.api.forward import Forwarder
from lamina.api.server import server_config, tcp_socket
from lamina.api.services.kinesis import KinesisApi
from lamina.api.services.kinesis_wire import PUT_RECORDS
from lamina.api.services.sts import api_credentials
from lamina.config import Settings
from lamina.iam.service import IamService
from lamina.iam.tokens import TokenService
from lamina.sources.streams import SqliteStreamStore, StreamService
from lamina.sources.streams.notify import RecordSignal
from lamina.store.sqlite import SqliteStore
from lamina.store.sqlite.iam import SqliteIamStore

log = logging.getLogger("lamina.edge")

SERVED = {b"Kinesis_20131202.PutRecords", b"Kinesis_20131202.PutRecord"}


class RemoteSignal(RecordSignal):
    """Tells the core's RecordSignal which shards have new records (it wakes the pollers)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._path = path

    def notify(self, shard_ids: Iterable[int]) -> None:
        ids = sorted(set(shard_ids))
        try:
            self._sock.sendto(json.dumps(ids).encode(), self._path)
        except OSError as exc:  # the core is gone or busy: its pollers still find the records
            log.warning("could not wake the core for shards %s: %s", ids, exc)


class WorkerApp:
    """Routes: the served ingest calls to the local edge, everything else to the core."""

    def __init__(self, local: EdgeApp, forward: Forwarder) -> None:
        self.local = local
        self.forward = forward

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            target = next((v for n, v in scope["headers"] if n == b"x-amz-target"), None)
            if target not in SERVED:
                await self.forward(scope, receive, send)
                return
        await self.local(scope, receive, send)


def build(settings: Settings, core_socket: str, notify_socket: str) -> WorkerApp:
    store = SqliteStore.from_settings(settings)
    iam_store = SqliteIamStore(store.database)
    tokens = TokenService(IamService(iam_store, settings.account_id), iam_store, settings.access_key_id)
    local = EdgeApp(settings, api_credentials(settings, tokens))
    streams = StreamService(
        SqliteStreamStore(store.database),
        region=settings.region,
        account_id=settings.account_id,
        signal=RemoteSignal(notify_socket),
    )
    api = KinesisApi(streams)
    local.register_service(
        "kinesis",
        {"PutRecords": api.put_records, "PutRecord": api.put_record},
        fast_paths={"PutRecords": PUT_RECORDS},
    )

    async def close() -> None:
        await asyncio.to_thread(store.close)

    local.on_shutdown.append(close)
    return WorkerApp(local, Forwarder(core_socket))


def main() -> None:
    parser = argparse.ArgumentParser(description="A Lamina edge worker (started by `lamina up`).")
    parser.add_argument("--core-socket", required=True)
    parser.add_argument("--notify-socket", required=True)
    parser.add_argument("--parent-fd", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.load(data_dir=args.data_dir, host=args.host, port=args.port)
    gc_tuning.tune()
    app = build(settings, args.core_socket, args.notify_socket)
    sock = tcp_socket(settings.host, settings.port, share_port=True)  # shared with the other workers
    sock.listen(1024)  # now: the core's start-up waits until the port accepts
    server = uvicorn.Server(server_config(app, settings.host, settings.port, log_level="warning"))  # type: ignore[arg-type]

    async def watch_parent() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.add_reader(args.parent_fd, lambda: done.done() or done.set_result(None))
        await done  # readable only at EOF: the core has exited
        log.warning("the core process exited: stopping")
        os._exit(0)

    async def start_watching() -> None:
        asyncio.get_running_loop().create_task(watch_parent())

    async def freeze() -> None:
        gc_tuning.freeze()  # started: what lives now lives on

    app.local.on_startup += [start_watching, freeze]
    log.info("edge worker %d serving %s:%d", os.getpid(), settings.host, settings.port)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
