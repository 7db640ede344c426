"""The Runtime API server of one environment, spoken to over real HTTP/1.1 connections."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from lamina.runtime.base import Invocation
from lamina.runtime.runtime_api import RuntimeApi, peer_uid

BASE = "/2018-06-01/runtime"


class Client:
    """A keep-alive HTTP/1.1 client on one connection (as runtimes use)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, address: str) -> Client:
        host, port = address.split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    def send(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: x"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        status = int((await self.reader.readline()).split()[1])
        headers = {}
        while (line := (await self.reader.readline()).strip()) != b"":
            name, value = line.decode().split(":", 1)
            headers[name.lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    async def request(self, method: str, path: str, body: bytes | None = None, **headers: str):
        self.send(method, path, body, {k.replace("_", "-"): v for k, v in headers.items()})
        return await self.response()

    def close(self) -> None:
        self.writer.close()


def invocation(request_id: str = "11111111-2222-3333-4444-555555555555", payload: bytes = b'{"a":1}') -> Invocation:
    return Invocation(
        request_id=request_id,
        payload=payload,
        deadline_ms=1_900_000_000_000,
        invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:f:live",
        client_context='{"custom":{"k":"v"}}',
        trace_id="Root=1-5e1b4151-5ac6c58f5b5dbd6a5ea0f0f0;Parent=1;Sampled=0",
    )


async def started(limit: int = 1024, uid: int | None = None) -> tuple[RuntimeApi, list]:
    events: list = []
    api = RuntimeApi(events.append, limit, uid)
    await api.start()
    return api, events


async def until(condition, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met")
        await asyncio.sleep(0.005)


def test_next_ends_init_and_receives_the_invocation_with_its_headers():
    async def scenario():
        api, events = await started()
        client = await Client.connect(api.address)
        client.send("GET", f"{BASE}/invocation/next")
        await until(lambda: events)
        assert events == [("frame", {"t": "init", "ok": True}, b"")]
        api.deliver(invocation(), 1_900_000_000_123)
        status, headers, body = await client.response()
        assert status == 200 and body == b'{"a":1}'
        assert headers["lambda-runtime-aws-request-id"] == "11111111-2222-3333-4444-555555555555"
        assert headers["lambda-runtime-deadline-ms"] == "1900000000123"
        assert headers["lambda-runtime-invoked-function-arn"].endswith(":function:f:live")
        assert headers["lambda-runtime-trace-id"].startswith("Root=1-5e1b4151")
        assert headers["lambda-runtime-client-context"] == '{"custom":{"k":"v"}}'
        assert "lambda-runtime-cognito-identity" not in headers
        status, _, body = await client.request("POST", f"{BASE}/invocation/{invocation().request_id}/response", b"42")
        assert (status, body) == (202, b'{"status":"OK"}')
        assert events[-1] == ("frame", {"t": "ok"}, b"42")
        client.close()
        api.close()

    asyncio.run(scenario())


def test_an_invocation_waits_for_the_next_poll():
    async def scenario():
        api, _events = await started()
        client = await Client.connect(api.address)
        api.deliver(invocation(payload=b"[1]"), 5)  # delivered before the runtime asks
        status, headers, body = await client.request("GET", f"{BASE}/invocation/next")
        assert status == 200 and body == b"[1]" and headers["lambda-runtime-deadline-ms"] == "5"
        api.close()

    asyncio.run(scenario())


def test_a_large_event_and_response_pass_whole():
    async def scenario():
        api, events = await started(limit=6_291_556)
        client = await Client.connect(api.address)
        client.send("GET", f"{BASE}/invocation/next")
        event = b'"' + b"x" * 5_000_000 + b'"'
        api.deliver(invocation(payload=event), 1)
        status, headers, body = await client.response()
        assert status == 200 and body == event and headers["content-length"] == str(len(event))
        rid = invocation().request_id
        assert (await client.request("POST", f"{BASE}/invocation/{rid}/response", event))[0] == 202
        assert events[-1] == ("frame", {"t": "ok"}, event)
        api.close()

    asyncio.run(scenario())


def test_unknown_or_answered_ids_get_400():
    async def scenario():
        api, events = await started()
        client = await Client.connect(api.address)
        status, _, body = await client.request("POST", f"{BASE}/invocation/nope/response", b"1")
        assert status == 400 and json.loads(body) == {
            "errorMessage": "Invalid request ID",
            "errorType": "InvalidRequestID",
        }
        client.send("GET", f"{BASE}/invocation/next")
        api.deliver(invocation(), 1)
        await client.response()
        status, _, _ = await client.request("POST", f"{BASE}/invocation/other-id/response", b"1")
        assert status == 400
        rid = invocation().request_id
        assert (await client.request("POST", f"{BASE}/invocation/{rid}/response", b"1"))[0] == 202
        assert (await client.request("POST", f"{BASE}/invocation/{rid}/response", b"2"))[0] == 400  # once only
        assert (await client.request("POST", f"{BASE}/invocation/{rid}/error", b"{}"))[0] == 400
        assert [e for e in events if e[1]["t"] == "ok"] == [("frame", {"t": "ok"}, b"1")]
        status, _, _ = await client.request("GET", f"{BASE}/invocation/x/next")
        assert status == 404
        api.close()

    asyncio.run(scenario())


def test_error_reports_carry_the_document_and_type():
    async def scenario():
        api, events = await started()
        client = await Client.connect(api.address)
        client.send("GET", f"{BASE}/invocation/next")
        api.deliver(invocation(), 1)
        await client.response()
        document = json.dumps({"errorMessage": "boom", "errorType": "TypeError", "stackTrace": []}).encode()
        rid = invocation().request_id
        status, _, body = await client.request(
            "POST", f"{BASE}/invocation/{rid}/error", document, Lambda_Runtime_Function_Error_Type="TypeError"
        )
        assert (status, body) == (202, b'{"status":"OK"}')
        assert events[-1] == ("frame", {"t": "err", "et": "TypeError"}, document)
        # A body that is no error document is wrapped in one, typed by the header.
        client.send("GET", f"{BASE}/invocation/next")
        api.deliver(invocation("second"), 1)
        await client.response()
        await client.request(
            "POST", f"{BASE}/invocation/second/error", b"plain text", Lambda_Runtime_Function_Error_Type="Custom.Err"
        )
        assert events[-1][1] == {"t": "err", "et": "Custom.Err"}
        assert json.loads(events[-1][2]) == {"errorMessage": "plain text", "errorType": "Custom.Err"}
        api.close()

    asyncio.run(scenario())


def test_init_error_then_no_more_init_errors():
    async def scenario():
        api, events = await started()
        client = await Client.connect(api.address)
        document = b'{"errorMessage":"Cannot find module","errorType":"Runtime.ImportModuleError"}'
        status, _, body = await client.request("POST", f"{BASE}/init/error", document)
        assert (status, body) == (202, b'{"status":"OK"}')
        assert events == [("frame", {"t": "init", "ok": False}, document)]
        status, _, _ = await client.request("POST", f"{BASE}/init/error", document)
        assert status == 403
        api.close()

    asyncio.run(scenario())


def test_oversized_response_gets_413_and_fails_the_invocation():
    async def scenario():
        api, events = await started(limit=100)
        client = await Client.connect(api.address)
        client.send("GET", f"{BASE}/invocation/next")
        api.deliver(invocation(), 1)
        await client.response()
        status, _headers, body = await client.request(
            "POST", f"{BASE}/invocation/{invocation().request_id}/response", b"x" * 101
        )
        assert status == 413 and json.loads(body)["errorType"] == "RequestEntityTooLarge"
        assert "100 bytes" in json.loads(body)["errorMessage"]
        assert events[-1] == ("frame", {"t": "big", "n": 101}, b"")
        api.close()

    asyncio.run(scenario())


def test_chunked_bodies_are_read_and_counted():
    async def scenario():
        api, events = await started(limit=10)
        client = await Client.connect(api.address)
        client.send("GET", f"{BASE}/invocation/next")
        api.deliver(invocation(), 1)
        await client.response()
        rid = invocation().request_id
        client.writer.write(
            f"POST {BASE}/invocation/{rid}/response HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".encode()
        )
        assert (await client.response())[0] == 202
        assert events[-1] == ("frame", {"t": "ok"}, b"abcde")
        api.close()

    asyncio.run(scenario())


def test_close_drops_a_waiting_poll():
    async def scenario():
        api, _ = await started()
        client = await Client.connect(api.address)
        client.send("GET", f"{BASE}/invocation/next")
        await until(lambda: api._waiting)
        api.close()
        assert await client.reader.read() == b""  # the runtime's long poll ends with the environment

    asyncio.run(scenario())


@pytest.mark.skipif(os.geteuid() != 0, reason="environments have their own uid only when the server is root")
def test_a_connection_from_another_uid_is_refused():
    async def scenario():
        api, events = await started(uid=os.geteuid() + 12345)
        client = await Client.connect(api.address)
        client.send("GET", f"{BASE}/invocation/next")
        assert await client.reader.read() == b""
        assert events == [] and not api._waiting
        api.close()
        own, _ = await started(uid=os.geteuid())
        client = await Client.connect(own.address)
        client.send("GET", f"{BASE}/invocation/next")
        await until(lambda: own._waiting)
        own.close()

    asyncio.run(scenario())


def test_peer_uid_finds_the_owner_of_a_loopback_socket():
    async def scenario():
        api, _ = await started()
        client = await Client.connect(api.address)
        port = client.writer.get_extra_info("sockname")[1]
        assert peer_uid(api.port, port) == os.geteuid()
        api.close()

    asyncio.run(scenario())
