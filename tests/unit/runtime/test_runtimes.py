"""The runtime catalogue: toolchains found, missing ones named, substitutions said out loud."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lamina.config import Settings
from lamina.errors import InvalidParameterValue
from lamina.functions.validation import check_runtime
from lamina.runtime import runtimes


def settings(**toolchains: str) -> Settings:
    return Settings.load(env={}, toolchains=",".join(f"{k}={v}" for k, v in toolchains.items()))


def test_the_catalogue():
    assert {"provided", "provided.al2", "provided.al2023", "nodejs18.x", "nodejs20.x", "nodejs22.x", "ruby3.2",
            "ruby3.3", "ruby3.4", "java17", "java21", "python3.12"} <= set(runtimes.CATALOGUE)  # fmt: skip
    assert runtimes.uses_runtime_api("provided.al2023") and runtimes.uses_runtime_api("nodejs20.x")
    assert not runtimes.uses_runtime_api("python3.12") and not runtimes.uses_runtime_api("cobol1")


def test_a_missing_toolchain_is_named_and_refused_at_create():
    broken = settings(java="/nonexistent/bin/java", node="/nonexistent/bin/node")
    problem = runtimes.missing("java21", broken)
    assert problem is not None and "Java (/nonexistent/bin/java and javac)" in problem and "not installed" in problem
    with pytest.raises(InvalidParameterValue, match=r"Node\.js"):
        check_runtime("nodejs20.x", broken)
    assert runtimes.version_config("nodejs20.x", broken)["Error"]["ErrorCode"] == "RuntimeNotInstalled"
    assert runtimes.missing("provided.al2023", broken) is None  # the package brings its own
    assert check_runtime("provided", broken) == "provided"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed here")
def test_a_runtime_of_another_major_version_runs_on_the_machines_and_says_so():
    found = runtimes.toolchain("node", settings())
    assert found is not None and found.version >= (14,)
    other = "nodejs18.x" if found.version[0] != 18 else "nodejs20.x"
    note = runtimes.substitution_note(other, settings())
    assert note == f"Runtime {other} is not installed here; running on Node.js {found.version_text} ({found.path})"
    error = runtimes.version_config(other, settings())["Error"]
    assert error["ErrorCode"] == "RuntimeNotInstalled" and found.version_text in error["Message"]
    same = f"nodejs{found.version[0]}.x"
    if same in runtimes.CATALOGUE:
        assert runtimes.substitution_note(same, settings()) is None
        assert "Error" not in runtimes.version_config(same, settings())


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed here")
def test_launch_commands(tmp_path):
    provided = runtimes.launch("provided.al2", tmp_path, 128, settings())
    assert provided.command == (str(tmp_path / "bootstrap"),) and provided.note is None
    node = runtimes.launch("nodejs20.x", tmp_path, 512, settings())
    assert node.command[-1] == str(runtimes.NODE_BOOTSTRAP) and "--max-old-space-size=435" in node.command
    assert str(tmp_path) in node.env["NODE_PATH"]


@pytest.mark.skipif(shutil.which("javac") is None, reason="javac is not installed here")
def test_the_java_bootstrap_is_compiled_once(tmp_path):
    found = runtimes.toolchain("java", settings())
    assert found is not None
    first = runtimes.java_classes(found, tmp_path)
    assert (first / "lamina" / "Bootstrap.class").is_file()
    assert (first / "com" / "amazonaws" / "services" / "lambda" / "runtime" / "Context.class").is_file()
    stamp = (first / "lamina" / "Bootstrap.class").stat().st_mtime_ns
    assert runtimes.java_classes(found, tmp_path) == first
    assert (first / "lamina" / "Bootstrap.class").stat().st_mtime_ns == stamp
    assert Path(first).stat().st_mode & 0o005 == 0o005  # other uids read it
