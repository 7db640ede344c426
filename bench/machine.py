"""What the numbers were measured on: CPU, cores, RAM, kernel, Python, and the code's revision."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def python_version(executable: str) -> str:
    if executable == sys.executable:
        return platform.python_version()
    try:
        completed = subprocess.run(
            [executable, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return completed.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def git_revision() -> str:
    """The commit, and how many files under src/ differ from it (others edit while we measure)."""

    def git(*args: str) -> str:
        completed = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)
        return completed.stdout.strip() if completed.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    changed = [line for line in git("status", "--porcelain", "--", "src").splitlines() if line]
    return f"{commit}" + (f" + uncommitted changes in {len(changed)} file(s) under src/" if changed else "")


def describe() -> dict[str, str]:
    uname = os.uname()
    return {
        "CPU": cpu_model(),
        "Cores": str(os.cpu_count()),
        "RAM": f"{ram_gib():.1f} GiB",
        "Kernel": f"{uname.sysname} {uname.release} ({uname.machine})",
        "Python (driver, peers)": f"{platform.python_version()} ({sys.executable})",
    }
