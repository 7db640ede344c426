"""`kill -9` of a real `lamina up` during a PutRecords flood: every acknowledged record is there
after the restart, where its acknowledgement said, and none twice.
"""

from __future__ import annotations

import threading
from collections import Counter

from lamina.testing import LocalLamina


def test_acknowledged_records_survive_kill_9_of_the_server(tmp_path):
    server = LocalLamina(tmp_path / "data", env={"LAMINA_PRELOAD": ""}).start()
    try:
        kinesis = server.client("kinesis")
        kinesis.create_stream(StreamName="flood", ShardCount=4)
        acked: dict[str, tuple[str, str]] = {}
        lock = threading.Lock()
        enough = threading.Event()

        def producer(p: int) -> None:
            client = server.client("kinesis")
            for batch in range(1_000_000):
                records = [{"Data": f"{p}-{batch}-{i}".encode(), "PartitionKey": f"k{i}"} for i in range(100)]
                try:
                    response = client.put_records(StreamName="flood", Records=records)
                except Exception:  # the server died under us: this put was never acknowledged
                    return
                with lock:
                    for record, result in zip(records, response["Records"], strict=True):
                        acked[record["Data"].decode()] = (result["ShardId"], result["SequenceNumber"])
                    if len(acked) >= 20_000:
                        enough.set()

        threads = [threading.Thread(target=producer, args=(p,)) for p in range(4)]
        for t in threads:
            t.start()
        assert enough.wait(60)
        server.kill9()  # mid-flood: puts are in flight right now
        for t in threads:
            t.join(30)
        server.start()
        kinesis = server.client("kinesis")
        stored: dict[str, tuple[str, str]] = {}
        counts: Counter[str] = Counter()
        for shard in kinesis.list_shards(StreamName="flood")["Shards"]:
            it = kinesis.get_shard_iterator(
                StreamName="flood", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while True:
                page = kinesis.get_records(ShardIterator=it)
                for r in page["Records"]:
                    stored[r["Data"].decode()] = (shard["ShardId"], r["SequenceNumber"])
                    counts[r["Data"].decode()] += 1
                it = page["NextShardIterator"]
                if not page["Records"]:
                    break
    finally:
        server.stop()
    assert len(acked) >= 20_000
    assert all(stored.get(data) == where for data, where in acked.items())
    assert max(counts.values()) == 1
