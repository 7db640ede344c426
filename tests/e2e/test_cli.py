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
