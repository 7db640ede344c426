"""The edge worker's forwarder against a real uvicorn server on a Unix socket, and its router."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import uvicorn

from lamina.api.edge_worker import WorkerApp
from lamina.api.forward import Forwarder

seen: list[dict] = []


async def backend(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    seen.append({"method": scope["method"], "path": scope["raw_path"], "query": scope["query_string"],
                 "headers": dict(scope["headers"]), "body": body})  # fmt: skip
    payload = b"" if scope["path"] == "/empty" else b"answer:" + body * (1000 if scope["path"] == "/big" else 1)
    await send({"type": "http.response.start", "status": 201 if scope["path"] != "/missing" else 404,
                "headers": [(b"content-type", b"application/json"), (b"x-amzn-requestid", b"abc"),
                            (b"content-length", str(len(payload)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})


class Backend:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.server = uvicorn.Server(uvicorn.Config(backend, log_level="warning", lifespan="off", loop="asyncio"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def core(tmp_path):
    path = str(tmp_path / "core.sock")
    server = Backend(path)
    seen.clear()
    yield path
    server.stop()


def call(app, method: str, path: str, body: bytes = b"", headers=(), query: bytes = b""):
    sent: list[dict] = []
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]

    async def receive():
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query,
             "headers": [(b"host", b"127.0.0.1:4566"), *headers]}  # fmt: skip
    return scope, receive, send, sent


def run(coro):
    return asyncio.run(coro)


def test_a_request_goes_on_as_it_came_and_its_answer_comes_back(core):
    forward = Forwarder(core)

    async def go():
        scope, receive, send, sent = call(
            forward, "POST", "/2015-03-31/functions/f/invocations", b'{"a": 1}',
            [(b"authorization", b"AWS4-HMAC-SHA256 sig"), (b"connection", b"keep-alive"),
             (b"transfer-encoding", b"chunked")], b"Qualifier=live",
        )  # fmt: skip
        await forward(scope, receive, send)
        return sent

    sent = run(go())
    request = seen[0]
    assert (request["method"], request["path"], request["query"]) == (
        "POST", b"/2015-03-31/functions/f/invocations", b"Qualifier=live")  # fmt: skip
    assert request["body"] == b'{"a": 1}'
    assert request["headers"][b"authorization"] == b"AWS4-HMAC-SHA256 sig"  # the signature is checked there
    assert request["headers"][b"host"] == b"127.0.0.1:4566"
    assert b"transfer-encoding" not in request["headers"] and request["headers"][b"content-length"] == b"8"
    start, body = sent
    assert start["status"] == 201
    headers = dict(start["headers"])
    assert headers[b"x-amzn-requestid"] == b"abc" and headers[b"content-length"] == b"15"
    assert body["body"] == b'answer:{"a": 1}'


def test_connections_are_kept_and_a_closed_one_is_replaced(core, tmp_path):
    forward = Forwarder(core)

    async def go(path: str, body: bytes = b"x"):
        scope, receive, send, sent = call(forward, "POST", path, body)
        await forward(scope, receive, send)
        return sent

    async def several():
        for _ in range(3):
            assert (await go("/a"))[1]["body"] == b"answer:x"
        assert len(forward._idle) == 1  # one connection served all three
        _, writer = forward._idle[0]
        writer.transport.abort()  # the core dropped it (a restart, an idle timeout)
        assert (await go("/again"))[1]["body"] == b"answer:x"  # retried on a fresh connection
        big = await go("/big", b"0123456789")
        assert len(big[1]["body"]) == 7 + 10_000
        missing = await go("/missing")
        assert missing[0]["status"] == 404

    run(several())


def test_head_answers_do_not_wait_for_a_body(core):
    forward = Forwarder(core)

    async def go():
        scope, receive, send, sent = call(forward, "HEAD", "/x")
        await asyncio.wait_for(forward(scope, receive, send), 5)
        return sent

    start, body = run(go())
    assert start["status"] == 201 and body["body"] == b""
    assert dict(start["headers"])[b"content-length"] == b"7"  # what a GET would send: "answer:"


def test_the_worker_serves_ingest_itself_and_forwards_the_rest():
    calls: list[tuple[str, bytes | None]] = []

    def app(name):
        async def asgi(scope, receive, send):
            calls.append((name, dict(scope.get("headers", [])).get(b"x-amz-target")))

        return asgi

    router = WorkerApp(app("local"), app("core"))  # type: ignore[arg-type]

    async def go():
        for target in (b"Kinesis_20131202.PutRecords", b"Kinesis_20131202.PutRecord",
                       b"Kinesis_20131202.GetRecords", None):  # fmt: skip
            headers = [(b"x-amz-target", target)] if target else []
            await router({"type": "http", "headers": headers}, None, None)
        await router({"type": "lifespan"}, None, None)  # the local edge starts and stops

    run(go())
    assert [name for name, _ in calls] == ["local", "local", "core", "core", "local"]
