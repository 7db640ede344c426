"""The cyclic garbage collector's settings for Lamina's server processes (decision 0111).

A server allocates container objects in bursts: a tuple per record read, put or answered,
thousands a batch. With CPython's defaults (a young collection every 700 net allocations, an
older one every 10 young ones) that is thousands of collections a second, and the older ones walk
every long-lived object of the platform. Measured with `perf` on a mapping draining a stream:
~10% of the server's CPU in the collector. Here young collections come every 50,000 allocations,
and the objects built at start-up (modules, the platform, caches) are frozen out of every
collection's walk. Reference counting still frees everything that forms no cycle at once; cycles
wait longer, which costs memory only while they wait. Function processes keep the defaults.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # CPython's default: 700
OLDER_THRESHOLDS = (20, 10)  # default: (10, 10)


def tune() -> None:
    """Collect less often; call once, early, in a server process."""
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


def freeze() -> None:
    """Move everything alive now out of the collector's reach; call once start-up is done."""
    gc.collect()
    gc.freeze()
