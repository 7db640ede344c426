"""Durable before acknowledged: every record a put acknowledged survives `kill -9`, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter

from lamina.sources.streams import IteratorType, SqliteStreamStore, StreamService
from lamina.store.sqlite import SqliteStore

PRODUCER = textwrap.dedent(
    """
    import sys, threading
    from lamina.sources.streams import Entry, SqliteStreamStore, StreamService
    from lamina.store.sqlite import SqliteStore

    store = SqliteStore.open(sys.argv[1])
    streams = StreamService(SqliteStreamStore(store.database))
    streams.create_stream("flood", 4)
    out = threading.Lock()

    def work(t):
        for b in range(1_000_000):
            entries = [Entry(f"{t}-{b}-{i}".encode(), f"k{t}-{i}") for i in range(100)]
            results = streams.put_records("flood", entries)
            with out:
                for e, r in zip(entries, results):
                    sys.stdout.write(f"ACK {e.data.decode()} {r.shard_id} {r.sequence_number}\\n")
                sys.stdout.flush()

    for t in range(4):
        threading.Thread(target=work, args=(t,)).start()
    """
)


def test_acknowledged_records_survive_kill_9_exactly_once(tmp_path):
    path = tmp_path / "lamina.db"
    child = subprocess.Popen([sys.executable, "-c", PRODUCER, str(path)], stdout=subprocess.PIPE, text=True, bufsize=1)
    acked: dict[str, tuple[str, str]] = {}
    try:
        assert child.stdout is not None
        for line in child.stdout:
            _, data, shard, seq = line.split()
            acked[data] = (shard, seq)
            if len(acked) >= 5000:
                os.kill(child.pid, signal.SIGKILL)  # mid-flood: puts are in flight right now
                break
        for line in child.stdout:  # ACKs written before the kill count too
            _, data, shard, seq = line.split()
            acked[data] = (shard, seq)
    finally:
        child.kill()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL

    store = SqliteStore.open(path)
    try:
        streams = StreamService(SqliteStreamStore(store.database))
        stored: dict[str, tuple[str, str]] = {}
        counts: Counter[str] = Counter()
        for shard in streams.describe("flood").shards:
            it = streams.get_shard_iterator("flood", shard.shard_id, IteratorType.TRIM_HORIZON)
            while True:
                page = streams.get_records(it)
                for r in page.records:
                    stored[r.data.decode()] = (shard.shard_id, r.sequence_number)
                    counts[r.data.decode()] += 1
                it = page.next_iterator
                if not page.records:
                    break
    finally:
        store.close()
    assert all(stored.get(data) == where for data, where in acked.items())  # every ack, where it said
    assert max(counts.values()) == 1  # none duplicated
    assert len(acked) >= 5000
