"""FileCodeStore: code packages on local disk, content-addressed by the SHA-256 of the zip.

Layout under `root`:
    zips/<sha256hex>.zip   the package as uploaded, written durably (temp, fsync, rename, fsync dir)
    tree/<sha256hex>/      the package unpacked once, read-only, shared by every environment

A tree appears atomically: it is extracted into a temp directory beside it, flushed, then renamed
into place, so no reader (and no crash) ever sees half a tree. Extraction keeps each entry's
modification time (a package that ships `__pycache__` silently recompiles if source mtimes
change: an igraph import went from ~50 ms to ~200 ms) and its executable bits (`bootstrap` files
of `provided` runtimes), makes everything read-only and readable by other uids (functions may
run as an unprivileged user), and refuses entries that would land outside the tree.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import hashlib
import io
import os
import re
import shutil
import stat
import struct
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from lamina.config import UNZIPPED_CODE_LIMIT, ZIPPED_CODE_LIMIT, Settings
from lamina.errors import InvalidParameterValue, RequestTooLarge, ResourceNotFound, ServiceError

# AWS's message for anything it cannot unzip; used here for every zip that cannot be unpacked
# safely (corrupt, encrypted, unsupported compression, paths or links leaving the tree).
UNZIP_ERROR = "Could not unzip uploaded file. Please check your file, then try to upload again."

_SHA_HEX = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_DEBRIS_AGE_S = 3600.0  # temp files older than this were left by a crash
_UNIX = 3  # ZipInfo.create_system of zips made on Unix: external_attr carries st_mode


class CodeDigest(NamedTuple):
    sha256_hex: str  # names the package in the store
    sha256_b64: str  # CodeSha256 as Lambda reports it
    size: int  # CodeSize: bytes of the zip


def sha256_hex_from_b64(sha256_b64: str) -> str:
    """FunctionConfig.code_sha256 (base64) -> the hex SHA-256 that names a stored package."""
    return base64.b64decode(sha256_b64).hex()


def validate_zip(
    data: bytes,
    zipped_limit: int = ZIPPED_CODE_LIMIT,
    unzipped_limit: int = UNZIPPED_CODE_LIMIT,
    operation: str = "CreateFunction",
) -> CodeDigest:
    """Check an uploaded package as Lambda does at upload, reading every entry (CRCs included).

    A zip over `zipped_limit` is refused as the request it came in would be: Lambda takes the zip
    base64-encoded in JSON and caps the request at 4/3 of the zipped limit (69905067 bytes for
    50 MB), answering RequestEntityTooLargeException for `operation`.
    """
    if len(data) > zipped_limit:
        raise RequestTooLarge(
            f"Request must be smaller than {-(-zipped_limit * 4 // 3)} bytes for the {operation} operation"
        )
    with _open_zip(io.BytesIO(data)) as zf:
        entries = _plan(zf, unzipped_limit)
        budget = _Budget(unzipped_limit)
        for entry in entries:
            if entry.kind == "file":
                _copy(zf, entry, None, budget)
            elif entry.kind == "symlink":
                _link_target(zf, entry)
    digest = hashlib.sha256(data).digest()
    return CodeDigest(digest.hex(), base64.b64encode(digest).decode(), len(data))


class FileCodeStore:
    """Implements `lamina.store.base.CodeStore`. Thread- and multi-process-safe on one root."""

    def __init__(self, root: Path, zipped_limit: int = ZIPPED_CODE_LIMIT, unzipped_limit: int = UNZIPPED_CODE_LIMIT):
        self.root = Path(root)
        self.zipped_limit = zipped_limit
        self.unzipped_limit = unzipped_limit
        self._zips = self.root / "zips"
        self._trees = self.root / "tree"
        for directory in (self.root, self._zips, self._trees):
            if not directory.is_dir():
                directory.mkdir(parents=True, exist_ok=True)
                _fsync_dir(directory.parent)
        for directory in (self.root, self._trees):  # other uids must reach the trees (not list them)
            directory.chmod(stat.S_IMODE(directory.stat().st_mode) | 0o711)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FileCodeStore:
        return cls(settings.data_dir / "code", settings.zipped_code_limit, settings.unzipped_code_limit)

    def validate_zip(self, data: bytes, operation: str = "CreateFunction") -> CodeDigest:
        return validate_zip(data, self.zipped_limit, self.unzipped_limit, operation)

    def put_zip(self, data: bytes) -> str:
        """Store a zip durably (validate it first: this stores any bytes); returns its hex SHA-256."""
        sha = hashlib.sha256(data).hexdigest()
        path = self._zips / f"{sha}.zip"
        if path.exists():
            os.utime(path)  # young again: delete_unreferenced's grace period starts over
            return sha
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".zip", dir=self._zips)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(Path(tmp))
            raise
        _fsync_dir(self._zips)  # the rename itself must survive a crash
        return sha

    def zip_path(self, sha256_hex: str) -> Path:
        """The stored zip; raises ResourceNotFound if there is none."""
        path = self._zips / f"{_checked(sha256_hex)}.zip"
        if not path.is_file():
            raise ResourceNotFound(f"Code package not found: {sha256_hex}")
        return path

    def unpacked(self, sha256_hex: str) -> Path:
        """The package's read-only tree, extracted on first use. Concurrent callers wait for one."""
        tree = self._trees / _checked(sha256_hex)
        if tree.is_dir():
            return tree
        with self._lock(sha256_hex):
            if tree.is_dir():
                return tree
            source = self.zip_path(sha256_hex)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{sha256_hex[:12]}-", dir=self._trees))
            try:
                _extract(source, tmp, self.unzipped_limit)
                _flush_filesystem(tmp)  # file contents reach the disk before the tree is named
                try:
                    os.rename(tmp, tree)
                except OSError as exc:
                    # Another process won the race: its tree is as good as ours.
                    if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not tree.is_dir():
                        raise
                _fsync_dir(self._trees)
            except OSError as exc:
                raise ServiceError(f"cannot unpack code package {sha256_hex}: {exc}") from exc
            finally:
                if tmp.exists():
                    _remove_tree(tmp)
        return tree

    def delete_unreferenced(self, referenced: set[str], min_age_s: float = 600.0) -> int:
        """Remove packages (zip and tree) whose hex SHA-256 is not in `referenced`; returns how many.

        A zip younger than `min_age_s` is kept: it may have just been put for a function whose
        record is not written yet.
        """
        now = time.time()
        removed: set[str] = set()
        for path in self._zips.iterdir():
            sha = path.name.removesuffix(".zip")
            age = now - path.stat().st_mtime
            if path.name.startswith(".tmp-"):
                if age > _DEBRIS_AGE_S:
                    _unlink_quietly(path)
            elif sha not in referenced and age >= min_age_s:
                _unlink_quietly(path)
                removed.add(sha)
        for path in self._trees.iterdir():
            if path.name.startswith(".tmp-"):
                if now - path.stat().st_mtime > _DEBRIS_AGE_S:
                    _remove_tree(path)
            elif path.name not in referenced and not (self._zips / f"{path.name}.zip").exists():
                # Keep a tree while its zip is kept; a running environment's cwd survives unlinking.
                _remove_tree(path)
                removed.add(path.name)
        return len(removed)

    def _lock(self, sha: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(sha, threading.Lock())


# --- reading zips ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]  # path inside the tree, normalised
    kind: str  # "file" | "dir" | "symlink"
    mode: int  # permission bits to give it
    mtime: float


class _Budget:
    """Bytes left to extract: the central directory's sizes are a claim, this is the check."""

    def __init__(self, limit: int):
        self.limit = limit
        self.left = limit

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise InvalidParameterValue(f"Unzipped size must be smaller than {self.limit} bytes")


@contextlib.contextmanager
def _open_zip(source: BinaryIO | Path) -> Iterator[zipfile.ZipFile]:
    """zipfile.ZipFile, with every way a zip can be unreadable turned into AWS's unzip error."""
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise InvalidParameterValue(UNZIP_ERROR) from None
    with zf:
        try:
            yield zf
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # bad CRC, truncated data...
            raise InvalidParameterValue(UNZIP_ERROR) from exc


def _plan(zf: zipfile.ZipFile, unzipped_limit: int) -> list[_Entry]:
    """Every entry, checked: safe path, supported compression, declared total within the limit."""
    entries = []
    total = 0
    for info in zf.infolist():
        name = info.filename
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if name.startswith("/") or "\0" in name or ".." in parts:
            raise InvalidParameterValue(UNZIP_ERROR)  # would land outside the tree
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # Encrypted, or bzip2/lzma: their decoders have no output bound per read, so a bomb
            # could exhaust memory before the size check sees a byte.
            raise InvalidParameterValue(UNZIP_ERROR)
        if not parts:
            continue
        unix_mode = info.external_attr >> 16 if info.create_system == _UNIX else 0
        if stat.S_ISLNK(unix_mode):
            kind, mode = "symlink", 0o777
        elif info.is_dir() or stat.S_ISDIR(unix_mode):
            kind, mode = "dir", 0o555
        else:
            kind, mode = "file", 0o444 | (unix_mode & 0o111)
        total += info.file_size
        entries.append(_Entry(info, parts, kind, mode, _mtime(info)))
    if total > unzipped_limit:
        raise InvalidParameterValue(f"Unzipped size must be smaller than {unzipped_limit} bytes")
    return entries


def _mtime(info: zipfile.ZipInfo) -> float:
    """The entry's mtime: the exact UTC one from the extended-timestamp field ("UT", written by
    Info-ZIP), else the 2-second DOS time read as local time, as `unzip` does."""
    extra, i = info.extra, 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        if tag == 0x5455 and size >= 5 and extra[i + 4] & 1:
            return float(struct.unpack_from("<I", extra, i + 5)[0])
        i += 4 + size
    try:
        return time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return time.time()


def _copy(zf: zipfile.ZipFile, entry: _Entry, sink: BinaryIO | None, budget: _Budget) -> None:
    """Stream an entry into `sink`, or nowhere (which still checks its CRC)."""
    written = 0
    with zf.open(entry.info) as source:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > entry.info.file_size:  # zipfile stops at the declared size; belt and braces
                raise InvalidParameterValue(UNZIP_ERROR)
            budget.take(len(chunk))
            if sink is not None:
                sink.write(chunk)


# --- extracting --------------------------------------------------------------------------------


def _extract(source: Path, root: Path, unzipped_limit: int) -> None:
    root = Path(os.path.realpath(root))
    budget = _Budget(unzipped_limit)
    with _open_zip(source) as zf:
        entries = _plan(zf, unzipped_limit)
        links = []
        try:
            for entry in entries:
                path = root.joinpath(*entry.parts)
                if entry.kind == "dir":
                    path.mkdir(parents=True, exist_ok=True)
                elif entry.kind == "file":
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with open(path, "wb") as sink:
                        _copy(zf, entry, sink, budget)
                    path.chmod(entry.mode)
                    os.utime(path, (entry.mtime, entry.mtime))
                else:
                    links.append(entry)
            # Links last, so no file is ever written through one; then judged where they lead
            # once all exist (a link may run through one made after it).
            for entry in links:
                _make_link(zf, entry, root)
            for entry in links:
                _check_inside(root, root.joinpath(*entry.parts))
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise InvalidParameterValue(UNZIP_ERROR) from None  # an entry clashes with another
    # Directories last: read-only, and their mtimes set after their content stopped changing.
    times = {entry.parts: entry.mtime for entry in entries if entry.kind == "dir"}
    for directory, _, _ in os.walk(root):
        path = Path(directory)
        parts = path.relative_to(root).parts
        if parts in times:
            os.utime(path, (times[parts], times[parts]))
        path.chmod(0o555)


def _link_target(zf: zipfile.ZipFile, entry: _Entry) -> str:
    """A symlink entry's target, if by its text it stays inside the tree."""
    if entry.info.file_size > 4096:  # PATH_MAX: this is no link target
        raise InvalidParameterValue(UNZIP_ERROR)
    target = zf.read(entry.info).decode("utf-8", "replace")
    lexical = os.path.normpath(os.path.join(*entry.parts[:-1], target)) if target else ".."
    if os.path.isabs(target) or lexical == ".." or lexical.startswith("../") or "\0" in target:
        raise InvalidParameterValue(UNZIP_ERROR)
    return target


def _make_link(zf: zipfile.ZipFile, entry: _Entry, root: Path) -> None:
    target = _link_target(zf, entry)
    path = root.joinpath(*entry.parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.realpath(path.parent) != str(path.parent):  # its directory is reached by a link
        raise InvalidParameterValue(UNZIP_ERROR)
    os.symlink(target, path)
    os.utime(path, (entry.mtime, entry.mtime), follow_symlinks=False)


def _check_inside(root: Path, link: Path) -> None:
    resolved = os.path.realpath(link)
    if resolved != str(root) and not resolved.startswith(str(root) + os.sep):
        raise InvalidParameterValue(UNZIP_ERROR)


# --- files -------------------------------------------------------------------------------------


def _checked(sha256_hex: str) -> str:
    if not _SHA_HEX.fullmatch(sha256_hex):
        raise InvalidParameterValue(f"not a hex SHA-256: {sha256_hex!r}")
    return sha256_hex


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flush_filesystem(path: Path) -> None:
    """Flush the file system holding `path`: one syncfs(2) instead of an fsync per file."""
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:  # not Linux
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    """rmtree for read-only trees: directories get their write bit back first."""
    for directory, _, _ in os.walk(path):
        os.chmod(directory, 0o755)
    shutil.rmtree(path, ignore_errors=True)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
