"""Holding a group-commit writer still, so the writes queued meanwhile land in one batch."""

from __future__ import annotations

import threading

from lamina.store.sqlite.writer import GroupCommitWriter


def hold_writer(writer: GroupCommitWriter) -> threading.Event:
    """Occupy the writer thread with a write that waits; set the returned event to let it go."""
    release, entered = threading.Event(), threading.Event()

    def hold(_):
        entered.set()
        release.wait(10)

    writer.submit(hold)
    entered.wait(10)
    return release
