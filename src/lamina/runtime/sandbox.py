"""Process-level isolation resources: per-environment uids and scratch directories.

When the server runs as root, each environment runs as its own unprivileged uid/gid from a high
range (200000 + n), so RLIMIT_NPROC, file ownership and signals are per environment. That only
works when every path the environment reads (interpreter's standard library, code, layers,
runtime packages) is world-readable; an interpreter under a 0700 home directory (pyenv in
/root, say) is not, and then environments keep the server's uid and rely on the process group,
cgroups and rlimits alone. `can_drop` decides, per set of paths, and caches the answer.

An interpreter whose prefix is world-readable itself but sits under a private ancestor (pyenv's
`/root/.pyenv/versions/3.12.1`, 0755, under `/root`, 0700) still gets unprivileged environments:
its zygotes start in a private mount namespace where the prefix is bind-mounted on
`<scratch root>/python-<hash>` (an empty root-owned 0755 directory on the host, inside this
sandbox's own 0711 root, so nobody else can have made it) and the interpreter is exec'd from
there, so sys.prefix, the standard library and lib-dynload are read through a path every uid can
traverse (`interpreter_mount`). The mount exists only in the zygote's namespace and its
children's; nothing changes on the host. `can_drop` judges a path under such a mount point by the
mount point's ancestors and the prefix's own permissions from the prefix down.

Uids are claimed machine-wide, not per pool: another Lamina server on the same machine must never
hand out a uid in use here, since killing an environment kills every process of its uid. A claim
is an exclusive `flock` on `<tmp>/lamina-uids/<uid>`, held while the uid is in use and dropped by
the kernel if the server dies.

Every environment gets a private scratch directory (its TMPDIR and HOME), mode 0700 and owned by
its uid, under a per-pool root in the system temp dir (mode 0711: traversable, not listable).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("lamina.runtime")

UID_BASE = 200_000
UID_COUNT = 65_536


def world_readable(path: str | os.PathLike[str], listable: bool = True, top: str | None = None) -> bool:
    """Whether an unprivileged stranger can reach and read `path` (symlinks resolved; a
    directory must be listable, or only traversable if not `listable`; its ancestors
    traversable). With `top` (a directory reached another way: a mount's source), ancestors
    are checked only up to `top` itself when `path` resolves inside it. ACLs are not
    considered."""
    try:
        real = Path(os.path.realpath(path))
        st = real.stat()
    except OSError:
        return True  # a missing path is nothing to protect (sys.path may list absent zips)
    need = stat.S_IROTH
    if stat.S_ISDIR(st.st_mode):
        need = (need if listable else 0) | stat.S_IXOTH
    if st.st_mode & need != need:
        return False
    stop = Path(os.path.realpath(top)) if top is not None else None
    if stop is not None and real == stop:
        return True
    if stop is not None and stop not in real.parents:
        stop = None  # resolves outside `top`: reached the usual way
    for parent in real.parents:
        try:
            if not parent.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        if parent == stop:
            break
    return True


SCRATCH_PREFIX = "lamina-scratch-"
OWNER_FILE = ".owner"


def _lock_owner(root: Path) -> int:
    """Lock, then publish: an owner file another server can see is already locked."""
    pending = root / (OWNER_FILE + ".new")
    fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(pending, root / OWNER_FILE)
    return fd


def _sweep_orphans(parent: Path, keep: Path) -> None:
    """Remove the scratch roots of sandboxes whose server died without closing them (kill -9)."""
    for root in parent.glob(SCRATCH_PREFIX + "*"):
        if root == keep:
            continue
        try:
            fd = os.open(root / OWNER_FILE, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue  # no owner file: not ours to judge
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(root, ignore_errors=True)
            log.info("removed the scratch space of a server that is gone: %s", root)
        except BlockingIOError:
            pass  # its server is alive
        finally:
            os.close(fd)


_QUERY = (
    "import json, os, sys; print(json.dumps([sys.base_prefix, sys.base_exec_prefix, os.path.realpath(sys.executable)]))"
)


@dataclass(frozen=True)
class PrivateMount:
    """An interpreter run from a bind mount of its prefix, in a mount namespace of its own."""

    prefix: str  # the installation prefix, as the host sees it
    mountpoint: str  # where the namespace shows it (an empty directory on the host)
    executable: str  # the interpreter, under `mountpoint`
    unshare: str  # util-linux unshare and mount
    mount: str

    def command(self, args: Sequence[str]) -> list[str]:
        """The argv that runs `executable *args` in a new private mount namespace with the
        prefix mounted. unshare and sh exec: the pid is the interpreter's, inherited fds stay."""
        script = self.mount + ' -n --bind "$1" "$2" && shift 2 && exec "$@"'
        return [self.unshare, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
                self.prefix, self.mountpoint, self.executable, *args]  # fmt: skip


class Sandbox:
    def __init__(self, scratch_parent: Path | None = None, drop_privileges: bool | None = None) -> None:
        """`drop_privileges`: None = whenever running as root and the paths allow it."""
        self.root = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=scratch_parent))
        self.root.chmod(0o711)
        # Held while this sandbox lives; the kernel drops it if the server is killed, which is how
        # a later server knows the root is an orphan it may sweep (functions' /tmp data included).
        self._owner = _lock_owner(self.root)
        _sweep_orphans(self.root.parent, keep=self.root)
        self._drop = os.geteuid() == 0 if drop_privileges is None else drop_privileges and os.geteuid() == 0
        self._readable: dict[str, bool] = {}
        self._mounts: dict[str, str] = {}  # mount point -> prefix (see interpreter_mount)
        self._interpreter_mounts: dict[str, PrivateMount | None] = {}
        self._mounts_lock = threading.Lock()  # interpreter_mount runs in worker threads
        self._uids_in_use: dict[int, int] = {}  # uid -> fd of its machine-wide claim
        self._next_uid = 0
        self._claims = Path(tempfile.gettempdir()) / "lamina-uids"
        if self._drop and not world_readable(self.root, listable=False):
            log.warning("scratch root %s is not reachable by other users: environments keep uid 0", self.root)
            self._drop = False

    def can_drop(self, paths: Iterable[str]) -> bool:
        """Whether environments that read `paths` can run under their own unprivileged uid."""
        if not self._drop:
            return False
        for path in paths:
            ok = self._readable.get(path)
            if ok is None:
                ok = self._readable[path] = self._judge(path)
                if not ok:
                    log.info("%s is not world-readable: its environments keep the server's uid", path)
            if not ok:
                return False
        return True

    def _judge(self, path: str) -> bool:
        for mountpoint, prefix in tuple(self._mounts.items()):  # a thread may add one
            if path == mountpoint or path.startswith(mountpoint + os.sep):
                # The zygote's namespace shows the prefix's tree there, reached through the mount
                # point's ancestors: judge those, then the prefix from the prefix down.
                host = prefix + path[len(mountpoint) :]
                return (
                    world_readable(mountpoint, listable=False)
                    and world_readable(host, top=prefix)
                    and self._entries_readable(host, top=prefix)
                )
        return world_readable(path) and self._entries_readable(path)

    @staticmethod
    def _entries_readable(path: str, top: str | None = None) -> bool:
        """Symlinked entries (the runtime packages dir) must be readable where they point."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(path):
                if entry.is_symlink() and not world_readable(entry.path, top=top):
                    return False
        return True

    def interpreter_mount(self, interpreter: str) -> PrivateMount | None:
        """How to start `interpreter`'s zygotes so that unprivileged environments can read its
        installation (see the module docstring), or None to start it as it is: not dropping
        privileges, nothing to gain (its prefix is reachable already, or private itself), or no
        working `unshare` (a container without CAP_SYS_ADMIN, say). Blocking; remembered."""
        with self._mounts_lock:
            if interpreter not in self._interpreter_mounts:
                mount = None
                if self._drop:
                    try:
                        mount = self._make_mount(interpreter)
                    except Exception as exc:  # OSError, ValueError, SubprocessError: run it as it is
                        log.warning("no private mount for %s (%s): its environments keep uid 0", interpreter, exc)
                self._interpreter_mounts[interpreter] = mount
            return self._interpreter_mounts[interpreter]

    def _make_mount(self, interpreter: str) -> PrivateMount | None:
        query = subprocess.run(
            [interpreter, "-I", "-S", "-c", _QUERY], capture_output=True, text=True, timeout=30, check=True
        )
        base_prefix, base_exec_prefix, executable = json.loads(query.stdout)
        prefix = os.path.realpath(base_prefix)
        if world_readable(executable) and world_readable(prefix):
            return None  # reachable as it is (/usr/bin/python3.11)
        if os.path.realpath(base_exec_prefix) != prefix or not executable.startswith(prefix + os.sep):
            raise ValueError(f"its executable {executable} is not inside its prefix {prefix}")
        if not world_readable(prefix, top=prefix):
            return None  # private itself: a mount would not help
        unshare, mount = shutil.which("unshare", path=os.defpath), shutil.which("mount", path=os.defpath)
        if unshare is None or mount is None or not os.path.exists("/bin/sh"):
            raise ValueError("util-linux unshare and mount are needed")
        mountpoint = self.root / f"python-{hashlib.sha256(prefix.encode()).hexdigest()[:16]}"
        mountpoint.mkdir(exist_ok=True)  # the root is ours (mkdtemp): nobody else made it
        mountpoint.chmod(0o755)
        private = PrivateMount(prefix, str(mountpoint), str(mountpoint) + executable[len(prefix) :], unshare, mount)
        probe = subprocess.run(
            private.command(["-I", "-S", "-c", "import sys; print(sys.prefix)"]),
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        if probe.returncode != 0 or probe.stdout.strip() != private.mountpoint:
            raise ValueError(f"unshare/mount failed: {(probe.stderr or probe.stdout).strip()[-300:]}")
        self._mounts[private.mountpoint] = prefix
        log.info("zygotes of %s start in a mount namespace with %s on %s", interpreter, prefix, mountpoint)
        return private

    def allocate_uid(self) -> int:
        for _ in range(UID_COUNT):
            uid = UID_BASE + self._next_uid
            self._next_uid = (self._next_uid + 1) % UID_COUNT
            if uid not in self._uids_in_use:
                claim = self._claim(uid)
                if claim is not None:
                    self._uids_in_use[uid] = claim
                    return uid
        raise RuntimeError("no free environment uid")

    def _claim(self, uid: int) -> int | None:
        """An fd holding the machine-wide claim on `uid`, or None if another server holds it."""
        self._claims.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self._claims / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def release_uid(self, uid: int | None) -> None:
        if uid is not None:
            fd = self._uids_in_use.pop(uid, None)
            if fd is not None:
                os.close(fd)  # closing the only fd drops the flock

    def make_scratch(self, env_id: str, uid: int | None) -> Path:
        path = self.root / env_id
        path.mkdir(mode=0o700)
        if uid is not None:
            os.chown(path, uid, uid)
        return path

    @staticmethod
    def remove_scratch(path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        for uid in list(self._uids_in_use):
            self.release_uid(uid)
        shutil.rmtree(self.root, ignore_errors=True)
        if self._owner is not None:
            os.close(self._owner)
            self._owner = None
