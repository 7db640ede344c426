"""Process-level isolation resources: per-environment uids and scratch directories.

When the server runs as root, each environment runs as its own unprivileged uid/gid from a high
range (200000 + n), so RLIMIT_NPROC, file ownership and signals are per environment. That only
works when every path the environment reads (interpreter's standard library, code, layers,
runtime packages) is world-readable; an interpreter under a 0700 home directory (pyenv in
/root, say) is not, and then environments keep the server's uid and rely on the process group,
cgroups and rlimits alone. `can_drop` decides, per set of paths, and caches the answer.

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
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("lamina.runtime")

UID_BASE = 200_000
UID_COUNT = 65_536


def world_readable(path: str | os.PathLike[str], listable: bool = True) -> bool:
    """Whether an unprivileged stranger can reach and read `path` (symlinks resolved; a
    directory must be listable, or only traversable if not `listable`; its ancestors
    traversable). ACLs are not considered."""
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
    for parent in real.parents:
        try:
            if not parent.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


class Sandbox:
    def __init__(self, scratch_parent: Path | None = None, drop_privileges: bool | None = None) -> None:
        """`drop_privileges`: None = whenever running as root and the paths allow it."""
        self.root = Path(tempfile.mkdtemp(prefix="lamina-scratch-", dir=scratch_parent))
        self.root.chmod(0o711)
        self._drop = os.geteuid() == 0 if drop_privileges is None else drop_privileges and os.geteuid() == 0
        self._readable: dict[str, bool] = {}
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
                ok = self._readable[path] = world_readable(path) and self._entries_readable(path)
                if not ok:
                    log.info("%s is not world-readable: its environments keep the server's uid", path)
            if not ok:
                return False
        return True

    @staticmethod
    def _entries_readable(path: str) -> bool:
        """Symlinked entries (the runtime packages dir) must be readable where they point."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(path):
                if entry.is_symlink() and not world_readable(entry.path):
                    return False
        return True

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
