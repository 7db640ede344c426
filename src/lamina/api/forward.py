"""Forwarding a request from an edge worker to the core process, over a Unix socket.

An edge worker (edge_worker.py) serves the hot ingest calls itself and hands every other request
to the core, which serves the same HTTP API on a Unix socket. The request goes on as it came
(method, path, query, headers, body), so the core authenticates and answers it exactly as if the
client had connected to it; the answer comes back as it was written. Connections to the core
are kept and reused, one request at a time each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httptools

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"expect", b"upgrade"}


class _Response:
    """httptools callbacks: collects one response."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()  # only meaningful inside a callback
        self.done = True


class Forwarder:
    """An ASGI app that sends each HTTP request to the server at `path` and relays its answer."""

    def __init__(self, path: str, pool_size: int = 16) -> None:
        self.path = path
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._pool_size = pool_size

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        head = [scope["method"].encode() + b" " + target + b" HTTP/1.1"]
        head += [name + b": " + value for name, value in scope["headers"] if name.lower() not in _HOP_BY_HOP]
        head.append(b"content-length: " + str(len(body)).encode())
        request = b"\r\n".join(head) + b"\r\n\r\n" + body
        status, headers, answer = await self._exchange(request, scope["method"] == "HEAD")
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _exchange(self, request: bytes, head_only: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        for attempt in range(2):  # a kept connection the core closed meanwhile: once more, fresh
            reused = bool(self._idle)
            reader, writer = self._idle.pop() if reused else await asyncio.open_unix_connection(self.path)
            try:
                writer.write(request)
                response = _Response()
                parser = response.parser = httptools.HttpResponseParser(response)
                while not (response.done or (head_only and response.headers_done)):
                    data = await reader.read(1 << 16)
                    if not data:
                        raise ConnectionResetError("the core closed the connection")
                    parser.feed_data(data)
            except (ConnectionError, httptools.HttpParserError):
                writer.close()
                if reused and attempt == 0:
                    continue
                raise
            keep = response.done and response.keep_alive and len(self._idle) < self._pool_size
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()
            body = b"".join(response.body)
            if head_only:  # the length of what a GET would send, as the core said
                headers = [(n.lower(), v) for n, v in response.headers if n.lower() != b"connection"]
            else:
                headers = [(n.lower(), v) for n, v in response.headers if n.lower() not in _HOP_BY_HOP]
                headers.append((b"content-length", str(len(body)).encode()))
            return parser.get_status_code(), headers, body
        raise ConnectionResetError("the core closed the connection")  # not reached
