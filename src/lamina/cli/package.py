"""Build a deployment zip from a directory (installing requirements.txt into it) or take a zip as is."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import click

SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", ".lamina", ".pytest_cache", ".mypy_cache"}


def build_zip(path: Path, install_requirements: bool = True) -> bytes:
    if path.is_file():
        data = path.read_bytes()
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise click.ClickException(f"{path} is not a zip file or a directory")
        return data
    if not path.is_dir():
        raise click.ClickException(f"{path} does not exist")
    requirements = path / "requirements.txt"
    with tempfile.TemporaryDirectory(prefix="lamina-build-") as build:
        root = Path(build)
        shutil.copytree(path, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SKIP_DIRS))
        if install_requirements and requirements.is_file():
            click.echo(f"installing {requirements} into the package", err=True)
            result = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--target", str(root), "-r", str(requirements)],
                capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode != 0:
                raise click.ClickException(f"pip install -r {requirements} failed:\n{result.stderr.strip()}")
        return zip_tree(root)


def zip_tree(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for directory, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(files):
                full = Path(directory) / name
                archive.write(full, full.relative_to(root).as_posix())
    return buffer.getvalue()
