"""Running the edge under uvicorn (httptools parser, uvloop event loop; decision 0001).

`serve(app, settings)` blocks until SIGINT/SIGTERM; `BackgroundServer` runs the same server on a
thread, on a free port, for tests and embedding.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from lamina.api.app import EdgeApp


def server_config(app: EdgeApp, host: str, port: int, *, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level=log_level,
        timeout_keep_alive=75,  # boto3 keeps connections in a pool; don't drop them every 5 s
    )


def tcp_socket(host: str, port: int, *, share_port: bool = False) -> socket.socket:
    """A bound TCP socket for uvicorn's `sockets=`; `share_port`: other processes may bind the
    same port too (SO_REUSEPORT), and the kernel spreads connections over them (edge workers)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def serve(app: EdgeApp, *, log_level: str = "info") -> None:
    """Serve on `app.settings.host:port` until interrupted."""
    app.settings.check_bind()
    uvicorn.Server(server_config(app, app.settings.host, app.settings.port, log_level=log_level)).run()


class BackgroundServer:
    """`with BackgroundServer(app) as server: boto3.client(..., endpoint_url=server.url)`."""

    def __init__(self, app: EdgeApp, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning") -> None:
        self.app = app
        self._sock = tcp_socket(host, port)
        self.host, self.port = self._sock.getsockname()[:2]
        self.server = uvicorn.Server(server_config(app, host, self.port, log_level=log_level))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Lamina edge did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
