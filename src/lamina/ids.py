"""Request and trace ids for the hot paths.

`str(uuid.uuid4())` reads 16 bytes from the kernel (a syscall) and builds a UUID object: ~2 µs,
paid several times per invocation (the edge's request id, the invocation's, the trace header's).
These ids name things; they guard nothing, so a fast generator seeded from the kernel once per
process (and again after a fork) serves: ~0.7 µs, the same RFC 4122 version-4 text.
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))

_FIXED = (0xF000 << 64) | (0xC000 << 48)  # the version nibble and the variant bits
_V4 = (0x4000 << 64) | (0x8000 << 48)


def request_id() -> str:
    """A random UUID (version 4) as Lambda prints request ids: 8-4-4-4-12 lowercase hex."""
    h = f"{(_random.getrandbits(128) & ~_FIXED) | _V4:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def hex_id(digits: int) -> str:
    """`digits` random lowercase hex digits (X-Ray trace ids and segment ids)."""
    return f"{_random.getrandbits(digits * 4):0{digits}x}"
