"""The output pipe reader: lines, timestamps, the per-invocation cap, never blocking the writer."""

from __future__ import annotations

import asyncio
import os

from lamina.runtime.output import TRUNCATED, Output, make_pipe


def _output(cap: int = 1000) -> tuple[Output, int]:
    read_fd, write_fd = make_pipe()
    return Output(read_fd, cap), write_fd


def test_lines_partial_lines_and_take():
    out, w = _output()
    os.write(w, b"one\ntw")
    out.drain()
    os.write(w, b"o\nthree")
    out.drain()
    assert [line.text for line in out.take()] == ["one", "two", "three"]
    assert out.take() == []
    os.write(w, b"caf\xc3\xa9 \xff\r\n")
    out.drain()
    assert [line.text for line in out.take()] == ["caf\u00e9 \ufffd\r"]
    os.close(w)
    out.drain()
    assert out.closed


def test_cap_keeps_one_marker_and_resets_per_take():
    out, w = _output(cap=25)
    os.write(w, b"0123456789\n" * 5)
    out.drain()
    os.write(w, b"more\n" * 100)
    out.drain()
    lines = [line.text for line in out.take()]
    assert lines == ["0123456789", "0123456789", "012", TRUNCATED]
    os.write(w, b"fresh\n")
    out.drain()
    assert [line.text for line in out.take()] == ["fresh"]
    os.close(w)
    out.close()


def test_endless_line_is_cut():
    out, w = _output(cap=100)
    for _ in range(10):
        os.write(w, b"x" * 50)
        out.drain()
    assert [line.text for line in out.take()] == ["x" * 100, TRUNCATED]
    os.close(w)
    out.close()


def test_reader_keeps_a_writer_unblocked():
    async def scenario():
        out, w = _output(cap=10)
        out.start()
        data = b"y" * (8 << 20)  # far more than a pipe holds: blocks unless we read
        await asyncio.to_thread(os.write, w, data)
        os.close(w)
        await asyncio.sleep(0.05)
        return out

    out = asyncio.run(scenario())
    assert out.closed
    assert [line.text for line in out.take()] == ["y" * 10, TRUNCATED]
