"""Sandbox resources: uid allocation, scratch dirs, the world-readable check."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lamina.runtime.sandbox import UID_BASE, Sandbox, world_readable


def test_world_readable():
    tmp_path = Path(tempfile.mkdtemp())  # pytest's own tmp root is 0700
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    assert world_readable(open_dir)
    tmp_path.chmod(0o700)
    assert not world_readable(open_dir)  # an ancestor blocks the way
    tmp_path.chmod(0o711)
    assert world_readable(open_dir) and not world_readable(tmp_path)
    assert world_readable(tmp_path, listable=False)
    assert world_readable(tmp_path / "missing")
    shutil.rmtree(tmp_path)


def test_uids_and_scratch(tmp_path: Path):
    sandbox = Sandbox(tmp_path, drop_privileges=True)
    try:
        first, second = sandbox.allocate_uid(), sandbox.allocate_uid()
        assert first >= UID_BASE and first != second
        sandbox.release_uid(first)
        scratch = sandbox.make_scratch("env", second if os.geteuid() == 0 else None)
        assert scratch.stat().st_mode & 0o777 == 0o700
        if os.geteuid() == 0:
            assert scratch.stat().st_uid == second
        Sandbox.remove_scratch(scratch)
        assert not scratch.exists()
    finally:
        sandbox.close()
    assert not sandbox.root.exists()


def test_uids_are_claimed_machine_wide(tmp_path: Path):
    """Two servers on one machine never share a uid: killing one's environment kills its uid's processes."""
    import subprocess
    import sys

    here, there = Sandbox(tmp_path, drop_privileges=True), Sandbox(tmp_path, drop_privileges=True)
    try:
        mine = {here.allocate_uid() for _ in range(3)}
        theirs = {there.allocate_uid() for _ in range(3)}
        assert not mine & theirs
        # another process (another server) claims what is free, and not what we hold
        probe = (
            "import sys; sys.path[:0] = sys.argv[1:2]\n"
            "from lamina.runtime.sandbox import Sandbox\n"
            "s = Sandbox(); print(s.allocate_uid()); s.close()\n"
        )
        src = str(Path(__file__).resolve().parents[3] / "src")
        other = int(
            subprocess.run([sys.executable, "-c", probe, src], capture_output=True, text=True, check=True).stdout
        )
        assert other not in mine | theirs
        released = min(mine)
        assert there._claim(released) is None  # held by `here`
        here.release_uid(released)
        claim = there._claim(released)  # free again once released
        assert claim is not None
        os.close(claim)
    finally:
        here.close()
        there.close()


def test_scratch_of_a_killed_server_is_swept_by_the_next(tmp_path: Path):
    import signal
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parents[3] / "src")
    probe = (
        "import sys, time; sys.path[:0] = sys.argv[1:2]\n"
        "from pathlib import Path\n"
        "from lamina.runtime.sandbox import Sandbox\n"
        "s = Sandbox(Path(sys.argv[2])); (s.root / 'env-tmp').mkdir(); print(s.root, flush=True); time.sleep(60)\n"
    )
    alive = subprocess.Popen([sys.executable, "-c", probe, src, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    dead = subprocess.Popen([sys.executable, "-c", probe, src, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert alive.stdout is not None and dead.stdout is not None
        alive_root, dead_root = Path(alive.stdout.readline().strip()), Path(dead.stdout.readline().strip())
        dead.send_signal(signal.SIGKILL)  # no close(): its scratch stays behind
        dead.wait()
        assert (dead_root / "env-tmp").is_dir()
        foreign = tmp_path / "lamina-scratch-not-ours"  # no owner file: left alone
        foreign.mkdir()
        sweeper = Sandbox(tmp_path)
        try:
            assert not dead_root.exists()
            assert (alive_root / "env-tmp").is_dir() and foreign.is_dir()
        finally:
            sweeper.close()
    finally:
        alive.kill()
        alive.wait()
