"""Runtime packages: boto3 and its dependencies, and nothing else of the server's."""

from __future__ import annotations

import sys

from lamina.runtime.packages import RuntimePackages

from .conftest import PACKAGES_DIR


def test_host_interpreter_gets_links_to_boto3_and_its_dependencies():
    path = RuntimePackages(PACKAGES_DIR).path_for(sys.executable)
    assert path is not None
    names = {entry.name for entry in path.iterdir()}
    assert {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"} <= names
    assert any(name.startswith("boto3-") and name.endswith(".dist-info") for name in names)
    assert not names & {"click", "uvicorn", "lamina", "pytest"}
    assert all((path / name).is_symlink() for name in names - {"__pycache__"})
