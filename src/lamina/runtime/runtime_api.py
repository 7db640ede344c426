"""The Lambda Runtime API of one execution environment (../shared/reference/aws-lambda.md §2).

Each environment that runs a bootstrap (`provided*`, Node.js, Ruby, Java) gets its own server:
a listening socket on 127.0.0.1 with a port of its own, whose `host:port` goes into that
environment's `AWS_LAMBDA_RUNTIME_API` and nowhere else. When the environment runs under a uid
of its own (a root server), a connection is accepted only from a socket owned by that uid, so
another environment cannot reach it even by scanning ports.

The server speaks HTTP/1.1 (httptools parses; keep-alive, chunked bodies) and serves one
invocation at a time:

- `GET /2018-06-01/runtime/invocation/next` long-polls; the first one ends the init phase.
- `POST .../invocation/{id}/response` and `.../{id}/error` answer 202 `{"status":"OK"}`; an id
  that is not the invocation in flight gets 400 `InvalidRequestID`; a response body over the
  limit gets 413 (and the invocation fails with Function.ResponseSizeTooLarge).
- `POST /2018-06-01/runtime/init/error` reports a failed init (202).

What the runtime says is handed to the environment as the same events its Python channel
produces (`("frame", header, body)`, see environment.py), so timeouts, crashes, memory limits,
logs and metering are shared by every runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import httptools

from lamina.runtime.base import Invocation

log = logging.getLogger("lamina.runtime")

PREFIX = "/2018-06-01/runtime/"
ACCEPTED = b'{"status":"OK"}'
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 413: "Payload Too Large"}  # fmt: skip
LARGE = 1 << 16
MAX_ERROR_BODY = 1 << 20  # an error document or init error larger than this is cut

Event = tuple[Any, ...]


def error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def _head(status: int, length: int, headers: tuple[tuple[str, str], ...] = (), close: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _response(status: int, body: bytes, headers: tuple[tuple[str, str], ...] = (), close: bool = False) -> bytes:
    return _head(status, len(body), headers, close) + body


def next_headers(invocation: Invocation, deadline_ms: int) -> tuple[tuple[str, str], ...]:
    headers = [
        ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
        ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
        ("Lambda-Runtime-Invoked-Function-Arn", invocation.invoked_function_arn),
        ("Lambda-Runtime-Trace-Id", invocation.trace_id or ""),
    ]
    if invocation.client_context:
        headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
    if invocation.cognito_identity:
        headers.append(("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity))
    return tuple(headers)


def peer_uid(local_port: int, peer_port: int) -> int | None:
    """The uid owning the loopback TCP socket `peer_port` connected to `local_port`, from
    /proc/net/tcp{,6} (the client's row has its own port as local and ours as remote)."""
    want_local, want_remote = f":{peer_port:04X}", f":{local_port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[1].endswith(want_local) and fields[2].endswith(want_remote):
                        return int(fields[7])
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    return None


class RuntimeApi:
    """The Runtime API of one environment. `on_event` receives what the runtime reports:

    ("frame", {"t": "init", "ok": True}, b"")          first /next: the init phase is over
    ("frame", {"t": "init", "ok": False}, error doc)   /runtime/init/error
    ("frame", {"t": "ok"}, response body)              /invocation/{id}/response
    ("frame", {"t": "err", "et": type}, error doc)     /invocation/{id}/error
    ("frame", {"t": "big", "n": size}, b"")            a response over `response_limit`
    """

    def __init__(self, on_event: Callable[[Event], None], response_limit: int, uid: int | None = None) -> None:
        self.on_event = on_event
        self.response_limit = response_limit
        self.uid = uid  # when set, only sockets of this uid may connect
        self.address = ""
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._initialised = False
        self._init_reported = False
        self._current: Invocation | None = None  # delivered or waiting for a /next
        self._deadline_ms = 0
        self._sent = False  # the current invocation has been handed to a /next
        self._answered = False
        self._waiting: list[_Connection] = []  # parked /next requests
        self.closed = False

    async def start(self) -> str:
        """Listen on 127.0.0.1 on a port of its own; returns `host:port`."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.listen(8)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(lambda: _Connection(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        return self.address

    def close(self) -> None:
        """Stop listening and drop every connection (the environment is dead)."""
        if self.closed:
            return
        self.closed = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.abort()
        self._connections.clear()
        self._waiting.clear()

    # The environment's side -------------------------------------------------------------------

    def deliver(self, invocation: Invocation, deadline_ms: int) -> None:
        """Hand `invocation` to the runtime: now if a /next is waiting, else at its next /next."""
        self._current = invocation
        self._deadline_ms = deadline_ms
        self._sent = False
        self._answered = False
        self._dispatch()

    def _dispatch(self) -> None:
        invocation = self._current
        if invocation is None or self._sent:
            return
        while self._waiting:
            connection = self._waiting.pop(0)
            if connection.alive:
                self._sent = True
                payload = invocation.payload
                head = _head(200, len(payload), next_headers(invocation, self._deadline_ms))
                if len(payload) < LARGE:
                    connection.send(head + payload)  # one send: headers and body together
                else:
                    connection.send_parts(head, payload)  # no copy of a large event
                return

    # The runtime's side ----------------------------------------------------------------------

    def _next(self, connection: _Connection) -> None:
        if not self._initialised:
            self._initialised = True
            self.on_event(("frame", {"t": "init", "ok": True}, b""))
        self._waiting.append(connection)
        if self._current is not None and self._answered:
            self._current = None
        self._dispatch()

    def _check_id(self, request_id: str) -> bool:
        current = self._current
        return current is not None and self._sent and not self._answered and current.request_id == request_id

    def handle(self, connection: _Connection, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        if not path.startswith(PREFIX):
            connection.send(_response(404, error_body("NotFound", "Not Found")))
            return
        route = path[len(PREFIX) :].split("?", 1)[0]
        parts = route.split("/")
        invocation_route = len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error")
        if route not in ("invocation/next", "init/error") and not invocation_route:
            connection.send(_response(404, error_body("NotFound", "Not Found")))
            return
        if method != ("GET" if route == "invocation/next" else "POST"):
            connection.send(_response(405, error_body("MethodNotAllowed", "Method Not Allowed")))
            return
        if route == "invocation/next":
            self._next(connection)
            return
        if route == "init/error":
            if self._initialised or self._init_reported:
                connection.send(_response(403, error_body("InvalidStateTransition", "State transition is not allowed")))
                return
            self._init_reported = True
            connection.send(_response(202, ACCEPTED))
            self.on_event(("frame", {"t": "init", "ok": False}, _error_document(body, headers)))
            return
        if not self._check_id(parts[1]):
            connection.send(_response(400, error_body("InvalidRequestID", "Invalid request ID")))
            return
        self._answered = True
        connection.send(_response(202, ACCEPTED))
        if parts[2] == "response":
            self.on_event(("frame", {"t": "ok"}, body))
        else:
            document = _error_document(body, headers)
            self.on_event(("frame", {"t": "err", "et": _error_type(document, headers)}, document))

    def too_large(self, connection: _Connection, path: str, size: int) -> None:
        """A response body over the limit: 413 to the runtime, Function.ResponseSizeTooLarge to
        the caller. The connection is closed (its body is not read)."""
        route = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
        parts = route.split("/")
        message = f"Exceeded maximum allowed payload size ({self.response_limit} bytes)."
        connection.send(_response(413, error_body("RequestEntityTooLarge", message), close=True))
        connection.close_after_write()
        if len(parts) == 3 and parts[2] in ("response", "error") and self._check_id(parts[1]):
            self._answered = True
            self.on_event(("frame", {"t": "big", "n": size}, b""))

    def forget(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        with contextlib.suppress(ValueError):
            self._waiting.remove(connection)


def _error_document(body: bytes, headers: dict[str, str]) -> bytes:
    """The error as the caller gets it: the runtime's JSON document, or one made up around
    whatever it sent (AWS passes the body on; a runtime that sends none gets Runtime.Unknown)."""
    body = body[:MAX_ERROR_BODY]
    try:
        document = json.loads(body)
        if isinstance(document, dict):
            return body
    except ValueError:
        pass
    error_type = headers.get("lambda-runtime-function-error-type") or "Runtime.Unknown"
    return json.dumps({"errorMessage": body.decode("utf-8", "replace"), "errorType": error_type}).encode()


def _error_type(document: bytes, headers: dict[str, str]) -> str:
    try:
        declared = json.loads(document).get("errorType")
    except (ValueError, AttributeError):
        declared = None
    return declared or headers.get("lambda-runtime-function-error-type") or "Unhandled"


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection from the runtime (keep-alive; requests are answered in order)."""

    def __init__(self, api: RuntimeApi) -> None:
        self.api = api
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.alive = True
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._rejected = False
        self._closing = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        api = self.api
        if api.closed:
            transport.abort()  # type: ignore[attr-defined]
            return
        if api.uid is not None:
            peer = transport.get_extra_info("peername")
            owner = peer_uid(api.port, peer[1]) if peer else None
            if owner != api.uid:
                log.warning("runtime API of port %s: refused a connection from uid %s", api.port, owner)
                self.alive = False
                transport.abort()  # type: ignore[attr-defined]
                return
        api._connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.send(_response(400, error_body("BadRequest", "Malformed HTTP request"), close=True))
            self.close_after_write()

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self.api.forget(self)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.api.response_limit:
            self._reject(int(length))

    def on_body(self, chunk: bytes) -> None:
        if self._rejected:
            return
        self._size += len(chunk)
        if self._size > self.api.response_limit:  # chunked, or a lying Content-Length
            self._reject(self._size)
            return
        self._body.append(chunk)

    def on_message_complete(self) -> None:
        if self._rejected:
            return
        method = self.parser.get_method().decode()
        body = b"".join(self._body)
        self._body = []
        self.api.handle(self, method, self._url.decode("latin-1"), self._headers, body)

    # helpers
    def _reject(self, size: int) -> None:
        self._rejected = True
        self._body = []
        self.api.too_large(self, self._url.decode("latin-1"), size)

    def send(self, data: bytes) -> None:
        if self.transport is not None and self.alive and not self._closing:
            self.transport.write(data)

    def send_parts(self, *parts: bytes) -> None:
        if self.transport is not None and self.alive and not self._closing:
            self.transport.writelines(parts)

    def close_after_write(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.alive = False
        if self.transport is not None:
            self.transport.abort()
