"""End-to-end fixtures: a real `lamina up` process on a free port, real boto3 and AWS CLI clients."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.testing import LAMINA, LocalLamina, free_port

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
HOST_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
__all__ = ["LAMINA", "LaminaServer", "free_port"]


def make_zip(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def handler_zip(source: str, module: str = "app") -> bytes:
    return make_zip({f"{module}.py": source})


class LaminaServer(LocalLamina):
    """A real server process, plus the AWS CLI pointed at it."""

    def aws_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        aws = str(Path(sys.executable).with_name("aws"))
        result = subprocess.run([aws, "--endpoint-url", self.endpoint, *args], capture_output=True, text=True,
                                env=env, timeout=120)  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LaminaServer]:
    instance = LaminaServer(tmp_path_factory.mktemp("lamina") / "data").start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def lam(server):
    return server.client("lambda")


@pytest.fixture
def fresh_name(request) -> str:
    safe = "".join(c if c.isalnum() else "-" for c in request.node.name)[:50]
    return f"{safe}-{int(time.time() * 1000) % 100000}"


def create(lam, name: str, source: str, **config):
    return lam.create_function(
        FunctionName=name,
        Runtime=config.pop("Runtime", HOST_RUNTIME),
        Role=ROLE,
        Handler=config.pop("Handler", "app.handler"),
        Code={"ZipFile": config.pop("ZipFile", None) or handler_zip(source)},
        **config,
    )


def invoke_json(lam, name: str, event=None, **kwargs):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event if event is not None else {}), **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None
