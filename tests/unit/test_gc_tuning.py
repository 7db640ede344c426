"""The server processes' collector settings (gc_tuning): fewer collections, start-up frozen."""

from __future__ import annotations

import gc

from lamina import gc_tuning


def test_tune_and_freeze():
    before = gc.get_threshold()
    try:
        gc_tuning.tune()
        assert gc.get_threshold() == (gc_tuning.YOUNG_THRESHOLD, *gc_tuning.OLDER_THRESHOLDS)
        survivor = [object()]  # a container alive at start-up
        gc_tuning.freeze()
        assert gc.get_freeze_count() > 0
        assert not any(o is survivor for o in gc.get_objects())  # no collection walks it any more
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
