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


def test_default_data_dir_is_dot_lamina_in_the_working_directory(tmp_path):
    """What `make run` does: no --data-dir, state under ./.lamina, functions still find their code."""
    import os
    import subprocess
    import time
    import urllib.request

    from .conftest import LAMINA, free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "LAMINA_DATA_DIR"}
    proc = subprocess.Popen([LAMINA, "up", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        server = LaminaServer(tmp_path / ".lamina", port=port)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{server.endpoint}/_lamina/health", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        lam = server.client()
        create(lam, "relative", "def handler(e, c):\n    return 'found my code'\n")
        assert invoke_json(lam, "relative")[1] == "found my code"
        assert (tmp_path / ".lamina" / "lamina.db").is_file()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
