"""A minimal HTTP/1.1 keep-alive load generator: N connections, one request in flight on each.

Runs as its own process (so it does not share a core's event loop with the benchmark driver) and
prints one JSON object on stdout. Each connection is an asyncio Protocol that sends the next
request from `data_received` as soon as the previous response is complete: no coroutine switch,
no stream buffering, no HTTP library. Responses are parsed only as far as needed: the status
line, `Content-Length` and whether `X-Amz-Function-Error` is present.

    python bench/loadgen.py --port 4566 --path /2015-03-31/functions/f/invocations \
        --connections 64 --warmup 1 --duration 6

Self-contained on purpose (standard library, plus uvloop when importable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import cast

NS = 1_000_000_000


@dataclass
class Tally:
    """What all connections saw in the measured window (requests started at or after `record_from`)."""

    record_from: int
    stop_at: int
    latencies_ns: array = field(default_factory=lambda: array("q"))
    ok: int = 0
    non_200: int = 0
    function_errors: int = 0
    connection_errors: list[str] = field(default_factory=list)
    warmup_requests: int = 0


class Connection(asyncio.Protocol):
    def __init__(self, request: bytes, tally: Tally, done: asyncio.Future[None]) -> None:
        self.request = request
        self.tally = tally
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.body_start = -1  # index after the header block, once seen
        self.body_length = 0
        self.status = 0
        self.function_error = False
        self.sent_at = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        now = time.perf_counter_ns()
        if now >= self.tally.stop_at:
            self.transport.close()
            return
        self.sent_at = now
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except Exception as exc:  # a malformed response: stop this connection, say why
            self._fail(f"bad response: {exc!r}")

    def _receive(self, data: bytes) -> None:
        self.buffer += data
        if self.body_start < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            self.status = int(head[9:12])
            self.function_error = b"\r\nx-amz-function-error:" in head
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._fail("response without Content-Length")
                return
            line_end = head.find(b"\r\n", at + 2)
            self.body_length = int(head[at + 17 : line_end if line_end > 0 else len(head)])
            self.body_start = end + 4
        if len(self.buffer) < self.body_start + self.body_length:
            return
        self._complete()
        del self.buffer[: self.body_start + self.body_length]
        self.body_start = -1
        self._send()

    def _complete(self) -> None:
        tally = self.tally
        finished = time.perf_counter_ns()
        if self.sent_at < tally.record_from:
            tally.warmup_requests += 1
            return
        tally.latencies_ns.append(finished - self.sent_at)
        if self.status != 200:
            tally.non_200 += 1
        elif self.function_error:
            tally.function_errors += 1
        else:
            tally.ok += 1

    def _fail(self, reason: str) -> None:
        self.tally.connection_errors.append(reason)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if time.perf_counter_ns() < self.tally.stop_at and not self.tally.connection_errors:
            self.tally.connection_errors.append(f"connection closed early: {exc!r}")
        if not self.done.done():
            self.done.set_result(None)


def percentile(values: list[int], q: float) -> float:
    """Linear interpolation between closest ranks, `values` sorted; nanoseconds in, ms out."""
    if not values:
        return float("nan")
    pos = (len(values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return (values[lo] + (values[hi] - values[lo]) * (pos - lo)) / 1e6


async def run(host: str, port: int, path: str, body: bytes, connections: int, warmup: float, duration: float) -> dict:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    start = time.perf_counter_ns()
    tally = Tally(record_from=start + int(warmup * NS), stop_at=start + int((warmup + duration) * NS))
    waiters = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda d=done: Connection(request, tally, d), host, port)
        waiters.append(done)
    await asyncio.wait_for(asyncio.gather(*waiters), warmup + duration + 60)
    latencies = sorted(tally.latencies_ns)
    return {
        "connections": connections,
        "window_s": duration,
        "requests": len(latencies),
        "ok": tally.ok,
        "non_200": tally.non_200,
        "function_errors": tally.function_errors,
        "connection_errors": tally.connection_errors[:5],
        "warmup_requests": tally.warmup_requests,
        "rps": len(latencies) / duration if duration > 0 else 0.0,
        "p50_ms": percentile(latencies, 0.50),
        "p90_ms": percentile(latencies, 0.90),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": latencies[-1] / 1e6 if latencies else float("nan"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", default="{}")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds run but not recorded")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds recorded")
    args = parser.parse_args(argv)
    try:
        import uvloop

        runner = uvloop.run
        loop_name = "uvloop"
    except ImportError:
        runner = asyncio.run
        loop_name = "asyncio"
    result = runner(
        run(args.host, args.port, args.path, args.body.encode(), args.connections, args.warmup, args.duration)
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["loop"] = loop_name
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
