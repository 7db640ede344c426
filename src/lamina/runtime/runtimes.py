"""The runtime catalogue: which runtimes exist, which toolchain each needs, how to start them.

Python runtimes run on the fast path (forked from a zygote, framed channel; decision 0010).
Every other runtime runs a *bootstrap* process that speaks the Lambda Runtime API
(runtime_api.py; decision 0100): the package's own executable `bootstrap` for `provided*`, or
Lamina's own small bootstrap for Node.js, Ruby and Java, on the machine's toolchain. A runtime
whose major version the machine lacks runs on the toolchain it has, and says so (as Python
does: RuntimeVersionConfig.Error, and a line at the start of each environment's log). A
runtime whose toolchain is missing altogether is refused at CreateFunction (`missing`).

`LAMINA_TOOLCHAINS` (`node=/opt/node/bin/node,ruby=...,java=...`) overrides where the tools are;
a path that does not exist makes its runtimes unavailable.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from lamina.config import PYTHON_RUNTIMES, Settings

BOOTSTRAP_DIR = Path(__file__).parent / "bootstrap"
NODE_BOOTSTRAP = BOOTSTRAP_DIR / "node.cjs"
RUBY_BOOTSTRAP = BOOTSTRAP_DIR / "ruby.rb"
JAVA_SOURCES = BOOTSTRAP_DIR / "java"
JAVA_MAIN = "lamina.Bootstrap"
SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    family: str  # python | provided | nodejs | ruby | java
    version: str  # the language version it promises ("20", "3.3", "17"); "" for provided*
    tool: str | None  # the toolchain executable it needs (None: the package brings its own)
    label: str  # how people name the language


def _catalogue() -> dict[str, RuntimeInfo]:
    runtimes = [RuntimeInfo(r, "python", r[6:], None, "Python") for r in PYTHON_RUNTIMES]
    provided = ("provided", "provided.al2", "provided.al2023")
    runtimes += [RuntimeInfo(r, "provided", "", None, "custom runtime") for r in provided]
    runtimes += [RuntimeInfo(f"nodejs{v}.x", "nodejs", v, "node", "Node.js") for v in ("18", "20", "22")]
    runtimes += [RuntimeInfo(f"ruby{v}", "ruby", v, "ruby", "Ruby") for v in ("3.2", "3.3", "3.4")]
    runtimes += [RuntimeInfo(f"java{v}", "java", v, "java", "Java") for v in ("17", "21")]
    return {r.name: r for r in runtimes}


CATALOGUE = _catalogue()
# The oldest toolchain Lamina's own bootstraps work on.
MINIMUM = {"node": (14,), "ruby": (2, 7), "java": (17,)}
_PACKAGES = {"node": "nodejs", "ruby": "ruby", "java": "openjdk-17-jdk-headless (java and javac)"}


def info(runtime: str) -> RuntimeInfo | None:
    return CATALOGUE.get(runtime)


def uses_runtime_api(runtime: str) -> bool:
    entry = CATALOGUE.get(runtime)
    return entry is not None and entry.family != "python"


@dataclass(frozen=True)
class Toolchain:
    tool: str
    path: str  # the executable
    version: tuple[int, ...]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


_found: dict[tuple[str, str], Toolchain | None] = {}
_found_lock = threading.Lock()


def _overrides(settings: Settings) -> dict[str, str]:
    out = {}
    for item in (settings.toolchains or "").split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _probe(tool: str, path: str) -> tuple[int, ...] | None:
    command = {
        "node": [path, "-p", "process.versions.node"],
        "ruby": [path, "-e", "print RUBY_VERSION"],
        "java": [path, "-XshowSettings:properties", "-version"],
    }[tool]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    text = done.stdout if tool != "java" else done.stderr
    if tool == "java":
        match = re.search(r"java\.specification\.version = (\d+)", text)
        if match is None or not os.access(Path(path).resolve().parent / "javac", os.X_OK):
            return None  # the bootstrap is compiled at first use: a JRE without javac will not do
        return (int(match.group(1)),)
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text.strip())
    return tuple(int(g) for g in match.groups()) if match else None


def toolchain(tool: str, settings: Settings) -> Toolchain | None:
    """The machine's `tool` (None if missing or unusable); probed once per path."""
    path = _overrides(settings).get(tool) or shutil.which(tool, path=SEARCH_PATH) or ""
    key = (tool, path)
    with _found_lock:
        if key in _found:
            return _found[key]
    found = None
    if path and os.access(path, os.X_OK):
        version = _probe(tool, path)
        if version is not None:
            found = Toolchain(tool, os.path.realpath(path), version)
    if found is not None:  # a missing tool is looked for again next time (it may be installed meanwhile)
        with _found_lock:
            _found[key] = found
    return found


def missing(runtime: str, settings: Settings) -> str | None:
    """Why `runtime` cannot run on this machine (None: it can). Blocking (probes once)."""
    entry = CATALOGUE.get(runtime)
    if entry is None or entry.tool is None:
        return None
    found = toolchain(entry.tool, settings)
    path = _overrides(settings).get(entry.tool) or entry.tool
    if found is None:
        return (
            f"Runtime {runtime} needs {entry.label} ({path}"
            f"{' and javac' if entry.tool == 'java' else ''}), which is not installed on this machine "
            f"(Debian: apt-get install {_PACKAGES[entry.tool]})."
        )
    minimum = MINIMUM[entry.tool]
    if found.version[: len(minimum)] < minimum:
        want = ".".join(map(str, minimum))
        return (
            f"Runtime {runtime} needs {entry.label} {want} or newer; this machine has {found.version_text} "
            f"({found.path})."
        )
    return None


def exact(entry: RuntimeInfo, found: Toolchain) -> bool:
    want = tuple(int(p) for p in entry.version.split("."))
    return found.version[: len(want)] == want


def substitution_note(runtime: str, settings: Settings) -> str | None:
    """Said out loud when the toolchain is not the runtime's version (never silently)."""
    entry = CATALOGUE.get(runtime)
    if entry is None or entry.tool is None:
        return None
    found = toolchain(entry.tool, settings)
    if found is None or exact(entry, found):
        return None
    return f"Runtime {runtime} is not installed here; running on {entry.label} {found.version_text} ({found.path})"


def version_config(runtime: str, settings: Settings) -> dict[str, object]:
    """RuntimeVersionConfig for a Runtime API runtime."""
    arn = f"arn:aws:lambda:{settings.region}::runtime:lamina-{runtime}"
    entry = CATALOGUE.get(runtime)
    if entry is None or entry.tool is None:
        return {"RuntimeVersionArn": arn}
    found = toolchain(entry.tool, settings)
    if found is None:
        message = missing(runtime, settings) or f"{runtime} is not available"
        return {"RuntimeVersionArn": arn, "Error": {"ErrorCode": "RuntimeNotInstalled", "Message": message}}
    if exact(entry, found):
        return {"RuntimeVersionArn": arn}
    return {
        "RuntimeVersionArn": arn,
        "Error": {
            "ErrorCode": "RuntimeNotInstalled",
            "Message": f"{runtime} is not installed on this machine; the function runs on {entry.label} "
            f"{found.version_text} ({found.path}).",
        },
    }


# How to start a bootstrap ------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """What an environment of a Runtime API runtime execs, and what else it needs."""

    command: tuple[str, ...]
    env: dict[str, str]  # runtime variables (before the function's own)
    paths: tuple[str, ...]  # what its process reads (every one must be world-readable to drop the uid)
    note: str | None


def launch(runtime: str, code_dir: Path, memory_mb: int, settings: Settings) -> Launch:
    """Blocking (may probe a toolchain or compile the Java bootstrap once)."""
    entry = CATALOGUE[runtime]
    note = substitution_note(runtime, settings)
    if entry.family == "provided":
        return Launch((str(code_dir / "bootstrap"),), {}, (str(code_dir),), None)
    problem = missing(runtime, settings)
    found = toolchain(entry.tool or "", settings)
    if problem is not None or found is None:
        raise RuntimeError(problem or f"{runtime}: toolchain missing")
    bin_dir = os.path.dirname(found.path)
    path_var = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:/opt/bin"
    if entry.family == "nodejs":
        heap = max(32, memory_mb * 85 // 100)  # as AWS's Node.js runtime sizes the old space
        env = {"PATH": path_var, "NODE_PATH": f"/opt/nodejs/node_modules:{code_dir}/node_modules:{code_dir}"}
        command = (found.path, f"--max-old-space-size={heap}", "--max-http-header-size=81920", str(NODE_BOOTSTRAP))
        return Launch(command, env, (found.path, str(NODE_BOOTSTRAP), str(code_dir)), note)
    if entry.family == "ruby":
        # where `bundle install --path vendor/bundle` puts gems
        gems = f"{code_dir}/vendor/bundle/ruby/{found.version[0]}.{found.version[1]}.0"
        env = {"PATH": path_var, "RUBYLIB": f"{code_dir}/lib:{code_dir}", "GEM_PATH": gems}
        command = (found.path, str(RUBY_BOOTSTRAP))
        return Launch(command, env, (found.path, str(RUBY_BOOTSTRAP), str(code_dir)), note)
    if entry.family == "java":
        classes = java_classes(found, Path(settings.data_dir))
        heap = max(32, memory_mb * 85 // 100)  # AWS's Java runtime: -XX:MaxHeapSize = 85% of memory
        classpath = f"{classes}:{code_dir}:{code_dir}/lib/*"
        command = (
            found.path,
            f"-XX:MaxHeapSize={heap}m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Xshare:auto",
            "-XX:-UsePerfData",
            "-cp",
            classpath,
            JAVA_MAIN,
        )
        return Launch(command, {"PATH": path_var}, (found.path, str(classes), str(code_dir)), note)
    raise RuntimeError(f"no launcher for {runtime}")


def prepare(runtime: str, settings: Settings) -> None:
    """What a first cold start would do once (probe the toolchain, compile the Java bootstrap),
    done ahead at server start. Blocking; a runtime that cannot run here is left alone."""
    entry = CATALOGUE.get(runtime)
    if entry is None or entry.tool is None or missing(runtime, settings) is not None:
        return
    found = toolchain(entry.tool, settings)
    if entry.family == "java" and found is not None:
        java_classes(found, Path(settings.data_dir))


_java_lock = threading.Lock()


def java_classes(found: Toolchain, data_dir: Path) -> Path:
    """Lamina's Java bootstrap, compiled once per (source, JDK) into the data directory."""
    sources = sorted(JAVA_SOURCES.rglob("*.java"))
    digest = hashlib.sha256(found.path.encode())
    for source in sources:
        digest.update(source.read_bytes())
    target = data_dir / "runtime" / "java" / digest.hexdigest()[:16]
    if (target / "lamina" / "Bootstrap.class").exists():
        return target
    with _java_lock:
        if (target / "lamina" / "Bootstrap.class").exists():
            return target
        staging = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        javac = str(Path(found.path).resolve().parent / "javac")
        done = subprocess.run(
            [javac, "-nowarn", "-encoding", "UTF-8", "-d", str(staging), *map(str, sources)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"cannot compile the Java bootstrap: {done.stderr.strip()[-500:]}")
        for root, _dirs, files in os.walk(staging):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        with contextlib.suppress(OSError):
            for parent in (target.parent, target.parent.parent):
                os.chmod(parent, 0o755)
        try:
            staging.rename(target)
        except OSError:  # another server compiled it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
        return target
