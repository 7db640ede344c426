"""FileCodeStore and validate_zip: durable, content-addressed, unpacked once, safely."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import struct
import threading
import time
import zipfile
from pathlib import Path

import pytest

from lamina.config import CREATE_REQUEST_LIMIT
from lamina.errors import InvalidParameterValue, RequestTooLarge, ResourceNotFound
from lamina.store.code import FileCodeStore, sha256_hex_from_b64, validate_zip

UNZIP_ERROR = "Could not unzip uploaded file. Please check your file, then try to upload again."
WHEN = (2021, 6, 15, 10, 30, 44)  # even seconds: exact in DOS time


def entry(name, data=b"", mode=0o644, kind=stat.S_IFREG, date_time=WHEN, unix_mtime=None, method=zipfile.ZIP_DEFLATED):
    info = zipfile.ZipInfo(name, date_time=date_time)
    info.create_system = 3
    info.external_attr = (kind | mode) << 16
    info.compress_type = method
    if unix_mtime is not None:  # Info-ZIP extended timestamp ("UT"), as `zip` writes it
        info.extra = struct.pack("<HHBI", 0x5455, 5, 1, unix_mtime)
    return info, data


def make_zip(*entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


@pytest.fixture
def code(tmp_path):
    return FileCodeStore(tmp_path / "code")


def unzip_error(excinfo):
    return excinfo.value.message == UNZIP_ERROR


# --- validate_zip ------------------------------------------------------------------------------


def test_validate_returns_the_digests_lambda_reports():
    data = make_zip(entry("app.py", b"def handler(e, c): return 1\n"))
    digest = validate_zip(data)
    sha = hashlib.sha256(data).digest()
    assert digest == (sha.hex(), base64.b64encode(sha).decode(), len(data))
    assert sha256_hex_from_b64(digest.sha256_b64) == digest.sha256_hex


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04" + b"\0" * 40])
def test_not_a_zip(data):
    with pytest.raises(InvalidParameterValue) as exc:
        validate_zip(data)
    assert exc.value.message == UNZIP_ERROR


def test_corrupt_data_is_caught_by_its_crc():
    data = bytearray(make_zip(entry("a.txt", b"hello world " * 100, method=zipfile.ZIP_STORED)))
    data[data.index(b"hello") + 3] ^= 0xFF
    with pytest.raises(InvalidParameterValue) as exc:
        validate_zip(bytes(data))
    assert exc.value.message == UNZIP_ERROR


def test_unzipped_limit_from_the_central_directory():
    data = make_zip(entry("a.bin", b"\0" * 1000), entry("b.bin", b"\0" * 1000))
    validate_zip(data, unzipped_limit=2000)
    with pytest.raises(InvalidParameterValue) as exc:
        validate_zip(data, unzipped_limit=1999)
    assert exc.value.message == "Unzipped size must be smaller than 1999 bytes"


def test_a_zip_lying_about_its_sizes_is_refused():
    data = bytearray(make_zip(entry("bomb.bin", b"\0" * 5_000_000)))
    # Claim 100 bytes in the local header and the central directory: zipfile then stops at 100
    # bytes and the CRC no longer matches.
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(sig)
        struct.pack_into("<I", data, at + offset, 100)
    with pytest.raises(InvalidParameterValue) as exc:
        validate_zip(bytes(data), unzipped_limit=1000)
    assert exc.value.message == UNZIP_ERROR


def test_zipped_limit_is_the_request_limit():
    data = make_zip(entry("a.txt", b"x"))
    with pytest.raises(RequestTooLarge) as exc:
        validate_zip(data, zipped_limit=30, operation="UpdateFunctionCode")
    assert exc.value.message == "Request must be smaller than 40 bytes for the UpdateFunctionCode operation"
    assert -(-52_428_800 * 4 // 3) == CREATE_REQUEST_LIMIT == 69905067  # AWS's number for 50 MB


@pytest.mark.parametrize("name", ["../evil.py", "/etc/evil", "a/../../evil", "a/../b"])
def test_paths_leaving_the_tree_are_refused(name):
    with pytest.raises(InvalidParameterValue) as exc:
        validate_zip(make_zip(entry("ok.py", b"1"), entry(name, b"evil")))
    assert exc.value.message == UNZIP_ERROR


def test_unsupported_compression_is_refused():
    data = make_zip(entry("a.txt", b"x" * 100, method=zipfile.ZIP_BZIP2))
    with pytest.raises(InvalidParameterValue):
        validate_zip(data)


# --- put_zip -----------------------------------------------------------------------------------


def test_put_is_content_addressed_durable_and_idempotent(code):
    data = make_zip(entry("app.py", b"x = 1\n"))
    sha = code.put_zip(data)
    assert sha == hashlib.sha256(data).hexdigest()
    path = code.zip_path(sha)
    assert path == code.root / "zips" / f"{sha}.zip" and path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert code.put_zip(data) == sha
    assert [p.name for p in (code.root / "zips").iterdir()] == [f"{sha}.zip"]  # no temp files left


def test_unknown_and_malformed_shas(code):
    with pytest.raises(ResourceNotFound):
        code.zip_path("0" * 64)
    with pytest.raises(ResourceNotFound):
        code.unpacked("0" * 64)
    with pytest.raises(InvalidParameterValue):
        code.unpacked("../../etc")


# --- unpacked ----------------------------------------------------------------------------------


def test_unpacked_tree_keeps_times_and_exec_bits_and_is_read_only(code):
    odd = 1_600_000_001  # odd seconds: only the UT field keeps them exactly
    data = make_zip(
        entry("pkg/", kind=stat.S_IFDIR, mode=0o755),
        entry("pkg/__init__.py", b"", unix_mtime=odd),
        entry("pkg/mod.py", b"X = 1\n"),
        entry("bootstrap", b"#!/bin/sh\necho hi\n", mode=0o755),
        entry("bin/tool", b"#!/bin/sh\n", mode=0o744),
        entry("implicit/dir/file.txt", b"made without a dir entry"),
    )
    tree = code.unpacked(code.put_zip(data))
    assert tree == code.root / "tree" / hashlib.sha256(data).hexdigest()
    assert (tree / "pkg" / "mod.py").read_bytes() == b"X = 1\n"
    assert (tree / "implicit" / "dir" / "file.txt").is_file()
    mode = lambda p: stat.S_IMODE((tree / p).stat().st_mode)  # noqa: E731
    assert mode("pkg/mod.py") == 0o444
    assert mode("bootstrap") == 0o555
    assert mode("bin/tool") == 0o544  # exec bits kept as the zip has them: u+x only
    assert mode("pkg") == mode("implicit/dir") == mode(".") == 0o555
    assert (tree / "pkg" / "__init__.py").stat().st_mtime == odd
    assert (tree / "pkg" / "mod.py").stat().st_mtime == time.mktime((*WHEN, 0, 0, -1))
    assert (tree / "pkg").stat().st_mtime == time.mktime((*WHEN, 0, 0, -1))
    for ancestor in (code.root, code.root / "tree"):  # other uids can reach the tree
        assert ancestor.stat().st_mode & 0o001
    assert code.unpacked(hashlib.sha256(data).hexdigest()) == tree  # once per SHA


def test_pycache_stays_valid(code, tmp_path):
    """A shipped .pyc names its source's mtime; the unpacked source must still have it."""
    import importlib.util
    import py_compile

    src = tmp_path / "mod.py"
    src.write_text("VALUE = 42\n")
    os.utime(src, (1_600_000_003, 1_600_000_003))
    pyc = Path(py_compile.compile(str(src), cfile=str(tmp_path / importlib.util.cache_from_source("mod.py"))))
    data = make_zip(
        entry("mod.py", src.read_bytes(), unix_mtime=1_600_000_003),
        entry(f"__pycache__/{pyc.name}", pyc.read_bytes(), unix_mtime=1_600_000_003),
    )
    tree = code.unpacked(code.put_zip(data))
    header = (tree / "__pycache__" / pyc.name).read_bytes()[8:16]
    mtime, size = struct.unpack("<II", header)
    source = (tree / "mod.py").stat()
    assert (mtime, size) == (int(source.st_mtime), source.st_size)


def test_links_inside_the_tree_are_kept(code):
    data = make_zip(
        entry("real/lib.py", b"A = 1\n"),
        entry("alias.py", b"real/lib.py", kind=stat.S_IFLNK, mode=0o777),
        entry("real/up", b"..", kind=stat.S_IFLNK, mode=0o777),
    )
    tree = code.unpacked(code.put_zip(data))
    assert (tree / "alias.py").is_symlink() and (tree / "alias.py").read_bytes() == b"A = 1\n"
    assert (tree / "real" / "up" / "alias.py").exists()


@pytest.mark.parametrize(
    "links",
    [
        [("evil", b"/etc/passwd")],
        [("evil", b"../outside")],
        [("a/evil", b"../../outside")],
        # Each link looks inside by its text, but "l/.." climbs out of the real root.
        [("l", b"."), ("sub/x", b"../l/../escape")],
        [("l", b"."), ("esc", b"l/../outside")],
    ],
)
def test_links_leaving_the_tree_are_refused(code, tmp_path, links):
    data = make_zip(entry("ok.py", b"1"), *(entry(n, t, kind=stat.S_IFLNK, mode=0o777) for n, t in links))
    sha = code.put_zip(data)
    with pytest.raises(InvalidParameterValue) as exc:
        code.unpacked(sha)
    assert exc.value.message == UNZIP_ERROR
    assert not (code.root / "tree" / sha).exists()
    assert list((code.root / "tree").iterdir()) == []  # the temp tree is gone too


def test_a_bad_stored_zip_fails_to_unpack_with_the_unzip_error(code):
    sha = code.put_zip(b"garbage")
    with pytest.raises(InvalidParameterValue) as exc:
        code.unpacked(sha)
    assert exc.value.message == UNZIP_ERROR


def test_unpack_enforces_the_unzipped_limit(tmp_path):
    small = FileCodeStore(tmp_path / "code", unzipped_limit=100)
    sha = small.put_zip(make_zip(entry("big.bin", b"\0" * 101)))
    with pytest.raises(InvalidParameterValue) as exc:
        small.unpacked(sha)
    assert exc.value.message == "Unzipped size must be smaller than 100 bytes"


def test_concurrent_unpack_of_one_sha_extracts_one_whole_tree(tmp_path):
    files = {f"pkg/m{i}.py": os.urandom(20_000) for i in range(40)}
    data = make_zip(*(entry(name, body) for name, body in files.items()))
    stores = [FileCodeStore(tmp_path / "code") for _ in range(2)]  # two "processes" on one root
    sha = stores[0].put_zip(data)
    results, errors = [], []
    barrier = threading.Barrier(12)

    def unpack(i):
        barrier.wait()
        try:
            tree = stores[i % 2].unpacked(sha)
            # Whoever returns sees the whole tree, never a half one.
            results.append(all((tree / n).read_bytes() == b for n, b in files.items()))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=unpack, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [True] * 12
    assert [p.name for p in (tmp_path / "code" / "tree").iterdir()] == [sha]


# --- delete_unreferenced ----------------------------------------------------------------------


def test_delete_unreferenced(code):
    keep = code.put_zip(make_zip(entry("keep.py", b"1")))
    drop = code.put_zip(make_zip(entry("drop.py", b"2")))
    young = code.put_zip(make_zip(entry("young.py", b"3")))
    code.unpacked(keep)
    code.unpacked(drop)
    old = time.time() - 3600
    for sha in (keep, drop):
        os.utime(code.root / "zips" / f"{sha}.zip", (old, old))
    assert code.delete_unreferenced({keep}, min_age_s=600) == 1
    assert code.unpacked(keep).is_dir()
    assert code.zip_path(young)  # too young to collect: its function may not be written yet
    with pytest.raises(ResourceNotFound):
        code.zip_path(drop)
    assert not (code.root / "tree" / drop).exists()
    assert code.delete_unreferenced(set(), min_age_s=0) == 2
    assert list((code.root / "zips").iterdir()) == [] and list((code.root / "tree").iterdir()) == []
