"""`LAMINA_EDGE_WORKERS`: a worker process owns the port, serves PutRecords/PutRecord itself and
forwards everything else to the core (decision 0110). Real servers, real boto3."""

from __future__ import annotations

import base64
import os
import signal
import threading
import time
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from lamina.testing import LocalLamina
from tests.e2e.conftest import create, handler_zip, invoke_json

STREAM_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/{}"


def worker_pids(server: LocalLamina) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")  # noqa: SIM115
        except OSError:
            continue
        if b"lamina.api.edge_worker" in argv and str(server.data_dir).encode() in argv:
            out.append(int(pid))
    return out


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    server = LocalLamina(tmp_path_factory.mktemp("edge") / "data", env={"LAMINA_EDGE_WORKERS": "1"}).start()
    yield server
    server.stop()


def read_all(kinesis, stream: str) -> list[tuple[str, str, bytes]]:
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
        while True:
            page = kinesis.get_records(ShardIterator=it, Limit=10_000)
            out += [(shard["ShardId"], r["SequenceNumber"], r["Data"]) for r in page["Records"]]
            it = page.get("NextShardIterator")
            if not page["Records"] or not it:
                break
    return out


def test_the_worker_owns_the_port_and_the_core_answers_through_it(edge):
    assert len(worker_pids(edge)) == 1
    kinesis, lam = edge.client("kinesis"), edge.client("lambda")
    kinesis.create_stream(StreamName="through", ShardCount=2)  # forwarded
    put = kinesis.put_records(StreamName="through",  # served by the worker
                              Records=[{"Data": b"r%d" % i, "PartitionKey": f"k{i}"} for i in range(50)])  # fmt: skip
    assert put["FailedRecordCount"] == 0
    one = kinesis.put_record(StreamName="through", Data=b"single", PartitionKey="k")
    stored = {(shard, seq): data for shard, seq, data in read_all(kinesis, "through")}
    assert len(stored) == 51
    for i, record in enumerate(put["Records"]):
        assert stored[(record["ShardId"], record["SequenceNumber"])] == b"r%d" % i
    assert stored[(one["ShardId"], one["SequenceNumber"])] == b"single"

    create(lam, "echo", "def handler(event, context):\n    return {'got': event}\n")
    response, body = invoke_json(lam, "echo", {"x": 1}, LogType="Tail")
    assert body == {"got": {"x": 1}} and response["ExecutedVersion"] == "$LATEST"
    assert "REPORT RequestId" in base64.b64decode(response["LogResult"]).decode()
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName="missing")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert edge.health()["status"] == "ok"  # an admin route, forwarded


def test_a_mapping_wakes_for_records_the_worker_committed(edge):
    lam, kinesis = edge.client("lambda"), edge.client("kinesis")
    kinesis.create_stream(StreamName="wake", ShardCount=1)
    create(lam, "stamp", "import time\ndef handler(event, context):\n"
           "    print('T %.6f %d' % (time.time(), len(event['Records'])))\n")  # fmt: skip
    uuid = lam.create_event_source_mapping(FunctionName="stamp", EventSourceArn=STREAM_ARN.format("wake"),
                                           StartingPosition="LATEST")["UUID"]  # fmt: skip
    while lam.get_event_source_mapping(UUID=uuid)["State"] != "Enabled":
        time.sleep(0.01)
    sent = []
    for i in range(10):
        sent.append(time.time())
        kinesis.put_record(StreamName="wake", Data=b"%d" % i, PartitionKey="k")
        time.sleep(0.05)
    deadline = time.monotonic() + 10
    while True:
        seen = [float(e["message"].split()[1]) for e in edge.get_json("/_lamina/logs/stamp?limit=1000")["events"]
                if e["message"].startswith("T ")]  # fmt: skip
        if len(seen) >= 10 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(seen) == 10
    # Woken by the worker's datagram, not by a poll: each record reaches its handler promptly.
    assert max(t - s for s, t in zip(sent, sorted(seen), strict=True)) < 1.0


def test_puts_through_the_worker_and_a_reshard_by_the_core_lose_nothing(edge):
    kinesis = edge.client("kinesis")
    kinesis.create_stream(StreamName="reshard", ShardCount=2)
    acked: dict[bytes, tuple[str, str]] = {}
    done = threading.Event()

    def produce(p: int) -> None:
        client = edge.client("kinesis")
        for n in range(10_000):
            if done.is_set() and n > 20:
                return
            records = [{"Data": b"%d-%d-%d" % (p, n, i), "PartitionKey": f"{p}{n}{i}"} for i in range(50)]
            try:
                out = client.put_records(StreamName="reshard", Records=records)
            except ClientError as exc:  # refused whole (the stream was UPDATING): not acknowledged
                assert exc.response["Error"]["Code"] in ("ResourceInUseException", "LimitExceededException")
                continue
            for record, result in zip(records, out["Records"], strict=True):
                if "SequenceNumber" in result:
                    acked[record["Data"]] = (result["ShardId"], result["SequenceNumber"])

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    kinesis.update_shard_count(StreamName="reshard", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    time.sleep(0.3)
    done.set()
    for t in threads:
        t.join(60)
    stored = read_all(kinesis, "reshard")
    counts = Counter(data for _, _, data in stored)
    assert not [d for d, c in counts.items() if c > 1]
    where = {data: (shard, seq) for shard, seq, data in stored}
    assert {d: where.get(d) for d in acked} == acked  # every acknowledged record, where its ack said
    # A closed parent holds nothing at or past its children's first sequence number.
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName="reshard")["Shards"]}
    for shard, seq, _ in stored:
        end = shards[shard]["SequenceNumberRange"].get("EndingSequenceNumber")
        assert end is None or int(seq) <= int(end)


def test_signatures_are_checked_by_the_worker_and_by_the_core(tmp_path):
    env = {"LAMINA_EDGE_WORKERS": "1", "LAMINA_ACCESS_KEY_ID": "AKIDEDGE", "LAMINA_SECRET_ACCESS_KEY": "s3cret"}
    server = LocalLamina(tmp_path / "data", env=env).start()
    try:
        good = server.client("kinesis", key="AKIDEDGE", secret="s3cret")
        good.create_stream(StreamName="signed", ShardCount=1)
        assert good.put_records(StreamName="signed", Records=[{"Data": b"x", "PartitionKey": "k"}])[
            "FailedRecordCount"] == 0  # fmt: skip
        for service, call in (("kinesis", lambda c: c.put_records(StreamName="signed",
                                                                  Records=[{"Data": b"x", "PartitionKey": "k"}])),
                              ("lambda", lambda c: c.list_functions())):  # fmt: skip
            bad = server.client(service, key="AKIDEDGE", secret="wrong")
            with pytest.raises(ClientError) as exc:
                call(bad)
            assert exc.value.response["Error"]["Code"] == "InvalidSignatureException", service
            assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    finally:
        server.stop()


def test_acknowledged_puts_survive_kill_9_and_the_worker_goes_with_the_core(tmp_path):
    server = LocalLamina(tmp_path / "data", env={"LAMINA_EDGE_WORKERS": "1", "LAMINA_PRELOAD": ""}).start()
    try:
        kinesis = server.client("kinesis")
        kinesis.create_stream(StreamName="flood", ShardCount=2)
        acked: dict[bytes, tuple[str, str]] = {}
        enough = threading.Event()

        def produce(p: int) -> None:
            client = server.client("kinesis", retries={"max_attempts": 1})
            for n in range(1_000_000):
                records = [{"Data": b"%d-%d-%d" % (p, n, i), "PartitionKey": f"k{i}"} for i in range(100)]
                try:
                    out = client.put_records(StreamName="flood", Records=records)
                except Exception:  # the server died under us: not acknowledged
                    return
                for record, result in zip(records, out["Records"], strict=True):
                    acked[record["Data"]] = (result["ShardId"], result["SequenceNumber"])
                if len(acked) >= 5_000:
                    enough.set()

        threads = [threading.Thread(target=produce, args=(p,)) for p in range(2)]
        for t in threads:
            t.start()
        assert enough.wait(60)
        workers = worker_pids(server)
        assert len(workers) == 1
        os.kill(server.pid, signal.SIGKILL)  # the core only: its worker must notice and go
        server.proc.wait()
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "the edge worker outlived the core"
            time.sleep(0.05)
        for t in threads:
            t.join(30)
        server.env.pop("LAMINA_EDGE_WORKERS")  # read back through a plain server
        server.start()
        stored = read_all(server.client("kinesis"), "flood")
        counts = Counter(data for _, _, data in stored)
        assert max(counts.values()) == 1
        where = {data: (shard, seq) for shard, seq, data in stored}
        assert {d: where.get(d) for d in acked} == acked
    finally:
        server.stop()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_lambda_and_its_admin_routes_work_unchanged_through_the_worker(edge):
    lam = edge.client("lambda")
    create(lam, "big", "def handler(event, context):\n    return 'x' * 200000\n")
    _, body = invoke_json(lam, "big")
    assert body == "x" * 200000  # a large answer, relayed whole
    lam.update_function_code(FunctionName="big", ZipFile=handler_zip("def handler(e, c):\n    return 7\n"))
    assert invoke_json(lam, "big")[1] == 7
    events = edge.get_json("/_lamina/logs/big?limit=1000")["events"]
    assert any(e["message"].startswith("REPORT") for e in events)
    assert lam.invoke(FunctionName="big", InvocationType="DryRun")["StatusCode"] == 204
