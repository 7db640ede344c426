"""A real Lamina in a child process: what Lamina's end-to-end tests and benchmarks run against, and
what your own tests can use (`with LocalLamina(tmp_path) as lamina: boto3.client(..., endpoint_url=lamina.endpoint)`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LAMINA = str(Path(sys.executable).with_name("lamina"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalLamina:
    """`lamina up` on a free port with its own data dir; `kill9()` and `restart()` test durability."""

    def __init__(
        self,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.env = dict(env or {})
        self.log_path = log_path or self.data_dir.parent / f"lamina-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self, timeout: float = 30.0, wait_for_zygote: bool = False) -> LocalLamina:
        """Start and wait until healthy (and, if asked, until a zygote has booted)."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [LAMINA, "up", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lamina up exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if not wait_for_zygote or self.health().get("zygotes", 0) >= 1:
                    self.health()
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"lamina up did not become ready in {timeout} s:\n{self.output()}")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_lamina/health", timeout=5) as response:
            return dict(json.loads(response.read()))

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.endpoint}{path}", timeout=10) as response:
            return json.loads(response.read())

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (graceful: environments are stopped), then SIGKILL if it hangs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def kill9(self) -> None:
        """`kill -9` the server: nothing gets a chance to flush."""
        os.killpg(self.pid, signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait()

    def restart(self) -> LocalLamina:
        self.stop()
        return self.start()

    def client(self, service: str = "lambda", key: str = "test", secret: str = "test", **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        options = {"retries": {"max_attempts": 1}, "read_timeout": 120, "max_pool_connections": 64, **config}
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(**options),
        )

    def __enter__(self) -> LocalLamina:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def function_zip(files: Mapping[str, str | bytes], executable: tuple[str, ...] = ()) -> bytes:
    """A deployment package; the names in `executable` get mode 0755 (a `bootstrap`, say)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def awslambdaric_files(python: str) -> dict[str, str | bytes]:
    """AWS's Python runtime interface client (awslambdaric, installed here) and its dependencies
    vendored as `pip install --target` lays them out, with a `bootstrap` that runs it on `python`:
    add an `app.py` and it is a `provided.*` function speaking the Runtime API."""
    import awslambdaric
    import simplejson
    import snapshot_restore_py

    files: dict[str, str | bytes] = {
        "bootstrap": f'#!/bin/sh\nexec {python} -m awslambdaric "$_HANDLER"\n',
        "snapshot_restore_py.py": Path(snapshot_restore_py.__file__).read_bytes(),
    }
    site = Path(awslambdaric.__file__).parent.parent
    for package_dir in (Path(awslambdaric.__file__).parent, Path(simplejson.__file__).parent):
        for path in package_dir.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                files[str(path.relative_to(site))] = path.read_bytes()
    for extension in site.glob("runtime_client*.so"):
        files[extension.name] = extension.read_bytes()
    return files
