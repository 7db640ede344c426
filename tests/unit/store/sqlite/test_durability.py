"""Durable before acknowledged: every write that returned survives `kill -9` of its process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from lamina.store.sqlite import SqliteStore

WRITER = textwrap.dedent(
    """
    import sys, threading
    from lamina.model.function import FunctionConfig, FunctionRecord
    from lamina.model.invocation import InvocationRecord, Outcome
    from lamina.store.base import LogEvent
    from lamina.store.sqlite import SqliteStore

    store = SqliteStore.open(sys.argv[1])
    out = threading.Lock()

    def ack(kind, key):
        with out:
            sys.stdout.write(f"ACK {kind} {key}\\n")
            sys.stdout.flush()

    def work(t):
        for i in range(1_000_000):
            key = f"{t}-{i}"
            if i % 3 == 0:
                store.record_invocation_nowait(InvocationRecord(
                    key, "f", "$LATEST", i, 1.0, 1, 128, 10, False, None, Outcome.SUCCESS)).result()
                ack("inv", key)
            elif i % 3 == 1:
                store.append_logs_nowait("/g", f"s{t}", [LogEvent(i, key)]).result()
                ack("log", key)
            else:
                store.create_function(FunctionRecord(FunctionConfig(key, "python3.12", "r", "h.h", "x", 1)))
                ack("fn", key)

    for t in range(4):
        threading.Thread(target=work, args=(t,)).start()
    """
)


def test_acknowledged_writes_survive_kill_9(tmp_path):
    path = tmp_path / "lamina.db"
    errors = tmp_path / "child-stderr.txt"
    with open(errors, "w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1
        )
    acked: dict[str, set[str]] = {"inv": set(), "log": set(), "fn": set()}
    try:
        assert child.stdout is not None
        for line in child.stdout:
            _, kind, key = line.split()
            acked[kind].add(key)
            if sum(map(len, acked.values())) >= 600:
                os.kill(child.pid, signal.SIGKILL)  # mid-stream: writes are in flight right now
                break
        for line in child.stdout:  # ACKs already written before the kill count too
            _, kind, key = line.split()
            acked[kind].add(key)
    finally:
        child.kill()
        child.wait(10)
    # If the writer died on its own, say why (its threads' tracebacks are on its stderr).
    assert child.returncode == -signal.SIGKILL, errors.read_text()[-3000:]
    assert all(acked.values()), (acked, errors.read_text()[-3000:])

    store = SqliteStore.open(path)
    try:
        invocations = {r.request_id for r in store.list_invocations(limit=1_000_000)}
        logs = {e.message for _, _, e in store.get_log_events("/g", limit=1_000_000)}
        functions = {r.config.name for r in store.list_functions(limit=1_000_000)}
    finally:
        store.close()
    assert acked["inv"] <= invocations
    assert acked["log"] <= logs
    assert acked["fn"] <= functions
