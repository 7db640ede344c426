"""What an invoke of a batch decided: success, a partial failure (ReportBatchItemFailures), or a
failure of the whole batch. AWS's rules (../shared/reference/aws-lambda.md §4):
- a function error (raised, timed out, crashed) fails the batch;
- with ReportBatchItemFailures, `{"batchItemFailures": [{"itemIdentifier": "<sequenceNumber>"}]}`
  fails the batch from the lowest reported record on; an empty or null list, or an empty or null
  response, is full success; an identifier that is empty, null, under the wrong key, or not a record
  of the batch fails the whole batch;
- with a tumbling window the response must carry `state` (else: failure), passed to the next invoke.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lamina.model.invocation import InvokeResult


class Kind(enum.Enum):
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILURE = "failure"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    failed_at: int = 0  # PARTIAL: index (in the invoked records) of the lowest reported failure
    state: Any = None  # the returned tumbling-window state
    reason: str = ""


def judge(result: InvokeResult, positions: Sequence[str], item_failures: bool, window: bool = False) -> Verdict:
    if result.function_error:
        return Verdict(Kind.FAILURE, reason="function error")
    body: Any = None
    if result.payload.strip():
        try:
            body = json.loads(result.payload)
        except (ValueError, UnicodeDecodeError):
            body = _UNPARSEABLE
    state = None
    if window:
        if not isinstance(body, dict) or "state" not in body:
            return Verdict(Kind.FAILURE, reason="a tumbling-window response must carry state")
        state = body["state"]
    if not item_failures or body is None:
        return Verdict(Kind.SUCCESS, state=state)
    if body is _UNPARSEABLE or not isinstance(body, dict):
        return Verdict(Kind.SUCCESS, state=state)  # not a batch-item-failures response: success
    failures = body.get("batchItemFailures")
    if not failures:
        return Verdict(Kind.SUCCESS, state=state)
    if not isinstance(failures, list):
        return Verdict(Kind.FAILURE, reason="malformed batchItemFailures")
    index = {p: i for i, p in enumerate(positions)}
    lowest = None
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in index:
            return Verdict(Kind.FAILURE, reason=f"invalid itemIdentifier {identifier!r}")
        lowest = index[identifier] if lowest is None else min(lowest, index[identifier])
    return Verdict(Kind.PARTIAL, failed_at=lowest or 0, state=state, reason="batch item failures")


_UNPARSEABLE = object()
