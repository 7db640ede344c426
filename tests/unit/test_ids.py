"""The hot paths' ids: RFC 4122 version-4 text, and no repeats."""

from __future__ import annotations

import os
import re
import uuid

from lamina import ids


def test_request_ids_are_version_4_uuids_and_do_not_repeat():
    made = [ids.request_id() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    for text in made[:500]:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", text)
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_hex_ids_have_their_width():
    assert all(re.fullmatch(r"[0-9a-f]{24}", ids.hex_id(24)) for _ in range(1000))
    assert len({ids.hex_id(16) for _ in range(1000)}) == 1000


def test_a_forked_child_does_not_repeat_its_parent(tmp_path):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, ids.request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child != ids.request_id()
