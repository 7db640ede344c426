"""`lamina streams` against a real server: create, put, describe, tail (once and following), ls, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from .test_cli import LAMINA, _read_until, lamina


def test_streams_create_put_describe_tail_ls(server, tmp_path):
    out = lamina(server, "streams", "create", "orders", "--shards", "2")
    assert "created arn:aws:kinesis:" in out.stdout and "stream/orders" in out.stdout and "2 shards" in out.stdout

    text = lamina(server, "streams", "put", "orders", "hello world", "--partition-key", "alice").stdout.split()
    assert text[0].startswith("shardId-") and text[1].isdigit()
    doc = lamina(server, "streams", "put", "orders", '{"order": 7,  "items": ["a", "b"]}', "-k", "bob").stdout.split()
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\xff\x00\xfebinary")
    lamina(server, "streams", "put", "orders", f"@{blob}", "-k", "carol")
    note = tmp_path / "note.json"
    note.write_text('{"from": "file"}\n')
    lamina(server, "streams", "put", "orders", f"@{note}", "-k", "dave")

    described = lamina(server, "streams", "describe", "orders").stdout
    assert "retention  24 h" in described and "2 (2 open), 4 records" in described
    rows = [line.split() for line in described.splitlines() if line.startswith("shardId-")]
    assert len(rows) == 2 and all(row[1] == "open" for row in rows)
    assert sum(int(row[2]) for row in rows) == 4
    assert rows[0][-1].startswith("0..") and rows[1][-1].endswith(f"..{2**128 - 1}")
    assert text[0] in {row[0] for row in rows}

    lines = lamina(server, "streams", "tail", "orders", "--from-start").stdout.splitlines()
    assert len(lines) == 4
    by_key = {line.split(" ", 3)[2]: line.split(" ", 3) for line in lines}
    assert by_key["alice"][3] == "hello world" and by_key["alice"][:2] == text
    assert json.loads(by_key["bob"][3]) == {"order": 7, "items": ["a", "b"]}
    assert by_key["bob"][1] == doc[1] and by_key["bob"][3] == '{"order": 7, "items": ["a", "b"]}'
    assert by_key["carol"][3] == "/wD+YmluYXJ5"  # not UTF-8: base64
    assert by_key["dave"][3] == '{"from": "file"}'

    assert lamina(server, "streams", "tail", "orders").stdout == ""  # LATEST, not following: nothing new

    listed = lamina(server, "streams", "ls").stdout
    row = next(line for line in listed.splitlines() if line.startswith("orders"))
    assert row.split()[1:5] == ["PROVISIONED", "ACTIVE", "2", "24h"]


def test_streams_tail_follow_prints_new_records_and_stops_on_sigterm(server):
    lamina(server, "streams", "create", "live", "--on-demand")
    assert "ON_DEMAND" in lamina(server, "streams", "ls").stdout
    lamina(server, "streams", "put", "live", "before", "-k", "k0")
    env = {**os.environ, "LAMINA_ENDPOINT": server.endpoint, "PYTHONUNBUFFERED": "1"}
    follower = subprocess.Popen(
        [LAMINA, "streams", "tail", "live", "--from-start", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert " k0 before" in _read_until(follower, "before")
        lamina(server, "streams", "put", "live", '{"n": 2}', "-k", "k2")  # after the command started
        assert ' k2 {"n": 2}' in _read_until(follower, '{"n": 2}')
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=20) == 0
        assert follower.stderr is not None and b"Traceback" not in follower.stderr.read()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_streams_errors_are_one_line(server):
    for args in (["describe", "missing"], ["put", "missing", "x"], ["tail", "missing"]):
        bad = lamina(server, "streams", *args, check=False)
        assert bad.returncode != 0, args
        assert "ResourceNotFoundException" in bad.stderr and "missing" in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    lamina(server, "streams", "create", "twice")
    bad = lamina(server, "streams", "create", "twice", check=False)
    assert bad.returncode != 0 and "ResourceInUseException" in bad.stderr and "Traceback" not in bad.stderr
    bad = lamina(server, "streams", "put", "twice", "@/no/such/file", check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    bad = lamina(server, "streams", "create", "x", "--shards", "2", "--on-demand", check=False)
    assert bad.returncode != 0 and "do not go together" in bad.stderr
