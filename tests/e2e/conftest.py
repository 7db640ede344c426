"""End-to-end fixtures: a real `lamina up` process on a free port, real boto3 and AWS CLI clients."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
HOST_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
LAMINA = str(Path(sys.executable).with_name("lamina"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_zip(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def handler_zip(source: str, module: str = "app") -> bytes:
    return make_zip({f"{module}.py": source})


class LaminaServer:
    """A real server process; `kill9()` and `restart()` exercise durability."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LaminaServer:
        env = {**os.environ, "LAMINA_KEEP_ALIVE_SECONDS": "60", **self.extra_env}
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [LAMINA, "up", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lamina up exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_lamina/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"lamina up did not become healthy:\n{self.output()}")

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def restart(self) -> LaminaServer:
        self.stop()
        return self.start()

    def client(self, service: str = "lambda", **kwargs):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=kwargs.pop("key", "test"),
            aws_secret_access_key=kwargs.pop("secret", "test"),
            config=Config(retries={"max_attempts": 1}, read_timeout=120, max_pool_connections=64),
            **kwargs,
        )

    def get_json(self, path: str):
        with urllib.request.urlopen(f"{self.endpoint}{path}", timeout=10) as response:
            return json.loads(response.read())

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
