"""The runtime packages: boto3 and its dependencies, importable by every Python function.

AWS's Python runtimes ship boto3; functions import it without bundling it. Lamina exposes a
read-only directory that goes on each environment's sys.path after the code and the layers (so a
bundled copy always wins) and never the rest of the server's site-packages:

- For an interpreter of the server's own Python version, the directory holds symlinks to the
  server venv's pure-Python boto3, botocore, s3transfer, jmespath, dateutil, urllib3 and six
  (plus their .dist-info, so importlib.metadata works).
- For another version the same links are tried first (one probe import, remembered). When the
  server's copies do not support that version (boto3 >= 1.43 needs Python 3.10), a compatible set
  is installed once with that interpreter's own pip (`pip install --target`), into
  `<root>/pip-py3.9/`; pip resolves the newest release that supports it.

Everything lives under `root` (default `<data_dir>/runtime/packages`) and is built once; the
functions here block (subprocesses, pip), so async callers run them in a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("lamina.runtime")

MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "urllib3", "six")
PIP_REQUIREMENT = "boto3"


def interpreter_version(interpreter: str) -> tuple[int, int, int]:
    out = subprocess.run(
        [interpreter, "-I", "-S", "-c", "import sys; print('%d %d %d' % sys.version_info[:3])"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1]), int(out[2])


def _host_targets() -> list[Path]:
    targets: list[Path] = []
    for name in MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            location = Path(next(iter(spec.submodule_search_locations)))
        elif spec.origin:
            location = Path(spec.origin)
        else:
            continue
        targets.append(location)
    parents = {t.parent for t in targets}
    for dist in DISTRIBUTIONS:
        for parent in parents:
            targets.extend(sorted(parent.glob(f"{dist}-*.dist-info")))
    return targets


class RuntimePackages:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._paths: dict[str, Path | None] = {}

    def path_for(self, interpreter: str) -> Path | None:
        """The runtime packages directory for `interpreter`, or None when none can be had."""
        if interpreter not in self._paths:
            self._paths[interpreter] = self._resolve(interpreter)
        return self._paths[interpreter]

    def _resolve(self, interpreter: str) -> Path | None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        links = self._host_links()
        version = interpreter_version(interpreter)[:2]
        if version == sys.version_info[:2] or self._probe(interpreter, version, links):
            return links
        return self._pip_install(interpreter, version)

    def _host_links(self) -> Path:
        targets = _host_targets()
        digest = hashlib.sha256("\n".join(map(str, targets)).encode()).hexdigest()[:12]
        path = self.root / f"host-py{sys.version_info[0]}.{sys.version_info[1]}-{digest}"
        if path.is_dir():
            return path
        tmp = Path(tempfile.mkdtemp(prefix=".links-", dir=self.root))
        for target in targets:
            (tmp / target.name).symlink_to(target)
        tmp.chmod(0o755)
        try:
            tmp.rename(path)
        except OSError:  # another process made it first
            for entry in tmp.iterdir():
                entry.unlink()
            tmp.rmdir()
        return path

    def _probe(self, interpreter: str, version: tuple[int, int], links: Path) -> bool:
        """Whether `interpreter` can import boto3 from the server's copies (remembered on disk)."""
        stem = f"probe-py{version[0]}.{version[1]}-{links.name}"
        ok_marker, fail_marker = self.root / f"{stem}.ok", self.root / f"{stem}.fail"
        if ok_marker.exists() or fail_marker.exists():
            return ok_marker.exists()
        code = f"import sys; sys.path.insert(0, {str(links)!r}); import boto3"
        ok = (
            subprocess.run([interpreter, "-I", "-S", "-B", "-c", code], capture_output=True, timeout=120).returncode
            == 0
        )
        (ok_marker if ok else fail_marker).touch()
        return ok

    def _pip_install(self, interpreter: str, version: tuple[int, int]) -> Path | None:
        target = self.root / f"pip-py{version[0]}.{version[1]}"
        done = target / ".lamina-complete"
        if done.exists():
            return target
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one pip per target, across servers and tests
            if done.exists():
                return target
            log.info("installing %s for Python %d.%d into %s", PIP_REQUIREMENT, *version, target)
            result = subprocess.run(
                [interpreter, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-warn-script-location", "--upgrade", "--target", str(target), PIP_REQUIREMENT],
                capture_output=True,
                text=True,
                timeout=600,
            )  # fmt: skip
            if result.returncode != 0:
                log.warning(
                    "Python %d.%d functions will have no boto3: pip failed: %s",
                    *version,
                    result.stderr.strip()[-2000:],
                )
                return None
            with contextlib.suppress(OSError):
                for dirpath, dirnames, filenames in os.walk(target):
                    for name in dirnames:
                        os.chmod(os.path.join(dirpath, name), 0o755)
                    for name in filenames:
                        os.chmod(os.path.join(dirpath, name), 0o644)
            done.touch()
        return target
