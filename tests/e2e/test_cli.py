"""The AWS CLI and the `lamina` CLI against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import HOST_RUNTIME, ROLE, LaminaServer, handler_zip

LAMINA = str(Path(sys.executable).with_name("lamina"))


def lamina(server: LaminaServer, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAMINA_ENDPOINT": server.endpoint}
    result = subprocess.run([LAMINA, *args], capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"lamina {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def test_aws_cli_create_invoke_list_delete(server, tmp_path):
    package = tmp_path / "fn.zip"
    package.write_bytes(handler_zip("def handler(event, context):\n    return {'got': event}\n"))
    out = server.aws_cli("lambda", "create-function", "--function-name", "cli-fn", "--runtime", HOST_RUNTIME,
                         "--role", ROLE, "--handler", "app.handler", "--zip-file", f"fileb://{package}")  # fmt: skip
    assert json.loads(out.stdout)["FunctionName"] == "cli-fn"
    result_file = tmp_path / "out.json"
    out = server.aws_cli("lambda", "invoke", "--function-name", "cli-fn",
                         "--payload", '{"a": 1}', "--log-type", "Tail", str(result_file))  # fmt: skip
    meta = json.loads(out.stdout)
    assert meta["StatusCode"] == 200 and meta["ExecutedVersion"] == "$LATEST" and meta["LogResult"]
    assert json.loads(result_file.read_text()) == {"got": {"a": 1}}
    listed = json.loads(server.aws_cli("lambda", "list-functions").stdout)
    assert "cli-fn" in [f["FunctionName"] for f in listed["Functions"]]
    missing = server.aws_cli("lambda", "get-function", "--function-name", "nope", check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    server.aws_cli("lambda", "delete-function", "--function-name", "cli-fn")


def test_lamina_cli_deploy_invoke_ls_logs_cost_rm(server, tmp_path):
    project = tmp_path / "greeter"
    project.mkdir()
    (project / "app.py").write_text(
        "import os\ndef handler(event, context):\n    print('greeting', event.get('who'))\n"
        "    return {'hello': event.get('who'), 'mode': os.environ.get('MODE')}\n"
    )
    out = lamina(server, "deploy", str(project), "--env", "MODE=test", "--memory", "256")
    assert "created" in out.stdout
    out = lamina(server, "deploy", str(project), "--env", "MODE=prod")
    assert "updated" in out.stdout
    out = lamina(server, "invoke", "greeter", "--payload", '{"who": "ada"}', "--tail")
    assert json.loads(out.stdout) == {"hello": "ada", "mode": "prod"}
    assert "REPORT RequestId" in out.stderr
    payload = tmp_path / "event.json"
    payload.write_text('{"who": "bob"}')
    assert json.loads(lamina(server, "invoke", "greeter", "--payload", f"@{payload}").stdout)["hello"] == "bob"
    assert "greeter" in lamina(server, "ls").stdout
    logs = lamina(server, "logs", "greeter").stdout
    assert "greeting ada" in logs and "greeting bob" in logs and "REPORT RequestId" in logs
    cost = lamina(server, "cost").stdout
    greeter = next(line for line in cost.splitlines() if line.startswith("greeter"))
    assert greeter.split()[1] == "2"
    assert "free tier" in cost
    assert "deleted greeter" in lamina(server, "rm", "greeter").stdout


def test_lamina_cli_reports_user_mistakes_without_tracebacks(server, tmp_path):
    bad = lamina(server, "invoke", "no-such-function", check=False)
    assert bad.returncode != 0 and "ResourceNotFoundException" in bad.stderr and "Traceback" not in bad.stderr
    bad = lamina(server, "invoke", "x", "--payload", "{nope", check=False)
    assert bad.returncode != 0 and "not JSON" in bad.stderr and "Traceback" not in bad.stderr
    env = {**os.environ, "LAMINA_ENDPOINT": "http://127.0.0.1:9"}
    down = subprocess.run([LAMINA, "ls"], capture_output=True, text=True, env=env, timeout=60)
    assert down.returncode != 0 and "cannot reach Lamina" in down.stderr and "Traceback" not in down.stderr


def test_lamina_deploy_installs_requirements(server, tmp_path):
    project = tmp_path / "withdeps"
    project.mkdir()
    vendored = tmp_path / "tinydep"
    (vendored / "tinydep").mkdir(parents=True)
    (vendored / "tinydep" / "__init__.py").write_text("VALUE = 'from requirements'\n")
    (vendored / "pyproject.toml").write_text(
        '[project]\nname = "tinydep"\nversion = "1.0"\n[build-system]\nrequires = ["setuptools"]\n'
        'build-backend = "setuptools.build_meta"\n'
    )
    (project / "requirements.txt").write_text(f"{vendored}\n")
    (project / "app.py").write_text("import tinydep\ndef handler(e, c):\n    return tinydep.VALUE\n")
    lamina(server, "deploy", str(project))
    assert json.loads(lamina(server, "invoke", "withdeps").stdout) == "from requirements"


def test_lamina_logs_follow_prints_new_lines(server, tmp_path):
    project = tmp_path / "follower"
    project.mkdir()
    (project / "app.py").write_text("def handler(event, context):\n    print('marker', event['n'])\n    return 1\n")
    lamina(server, "deploy", str(project))
    lamina(server, "invoke", "follower", "--payload", '{"n": 1}')
    env = {**os.environ, "LAMINA_ENDPOINT": server.endpoint, "PYTHONUNBUFFERED": "1"}
    follower = subprocess.Popen([LAMINA, "logs", "follower", "--follow"], stdout=subprocess.PIPE, env=env)
    try:
        assert "marker 1" in _read_until(follower, "marker 1")
        lamina(server, "invoke", "follower", "--payload", '{"n": 2}')  # after the command started
        assert "marker 2" in _read_until(follower, "marker 2")
    finally:
        follower.kill()
        follower.wait()


def _read_until(process: subprocess.Popen, needle: str, timeout: float = 20.0) -> str:
    """Read the process's raw stdout until `needle` shows up (no text-layer buffering to hide it)."""
    import select
    import time

    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while needle.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def test_lamina_cost_since_filters_by_time(server, tmp_path):
    project = tmp_path / "metered"
    project.mkdir()
    (project / "app.py").write_text("def handler(event, context):\n    return 1\n")
    lamina(server, "deploy", str(project), "--memory", "1024")
    lamina(server, "invoke", "metered")
    recent = lamina(server, "cost", "--since", "1h").stdout
    row = next(line for line in recent.splitlines() if line.startswith("metered"))
    requests, billed_ms, gb_s = row.split()[1:4]
    assert requests == "1" and int(billed_ms) >= 1
    assert abs(float(gb_s) - int(billed_ms) / 1000) < 1e-3  # 1024 MB: GB-s = billed s
    future = lamina(server, "cost", "--since", "2999-01-01").stdout
    assert not any(line.startswith("metered") for line in future.splitlines())
    bad = lamina(server, "cost", "--since", "yesterday", check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
