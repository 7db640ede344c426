"""Durable before acknowledged: what Lamina answered survives a restart and `kill -9`."""

from __future__ import annotations

import pytest

from .conftest import LaminaServer, create, invoke_json


@pytest.fixture
def own_server(tmp_path):
    instance = LaminaServer(tmp_path / "data").start()
    yield instance
    instance.stop()


def test_functions_and_invocations_survive_kill_9(own_server):
    lam = own_server.client()
    create(lam, "durable", "def handler(e, c):\n    return e['n']\n")
    for n in range(5):
        assert invoke_json(lam, "durable", {"n": n})[1] == n
    own_server.kill9()  # no chance to flush anything: only committed state survives
    own_server.start()
    lam = own_server.client()
    assert lam.get_function(FunctionName="durable")["Configuration"]["FunctionName"] == "durable"
    cost = own_server.get_json("/_lamina/cost")
    rows = {row["function"]: row for row in cost["functions"]}
    assert rows["durable"]["requests"] == 5
    logs = own_server.get_json("/_lamina/logs/durable?tail=1000")["events"]
    assert sum(1 for e in logs if e["message"].startswith("REPORT RequestId: ")) == 5
    assert invoke_json(lam, "durable", {"n": 9})[1] == 9  # and it still runs


def test_graceful_restart_keeps_everything(own_server):
    lam = own_server.client()
    create(lam, "kept", "def handler(e, c):\n    return 'ok'\n", Tags={"k": "v"})
    lam.update_function_configuration(FunctionName="kept", MemorySize=512)
    own_server.restart()
    lam = own_server.client()
    got = lam.get_function(FunctionName="kept")
    assert got["Configuration"]["MemorySize"] == 512 and got["Tags"] == {"k": "v"}
    assert invoke_json(lam, "kept")[1] == "ok"
