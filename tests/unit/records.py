"""Typed records with plausible defaults, for unit tests of every layer."""

from __future__ import annotations

from lamina.model.function import FunctionConfig, FunctionRecord, frozen_map
from lamina.model.invocation import InvocationRecord, Outcome


def config(name: str = "fn", **changes: object) -> FunctionConfig:
    base = FunctionConfig(
        name=name,
        runtime="python3.12",
        role="arn:aws:iam::000000000000:role/lambda",
        handler="app.handler",
        code_sha256="n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
        code_size=123,
        revision_id="rev-1",
    )
    return base.with_changes(**changes)


def record(name: str = "fn", tags: dict[str, str] | None = None, created: float = 1.0, **changes: object):
    return FunctionRecord(config(name, **changes), frozen_map(tags), created)


def invocation(function: str = "fn", start: float = 100.0, **changes: object) -> InvocationRecord:
    values: dict[str, object] = dict(
        request_id="req",
        function=function,
        version="$LATEST",
        start=start,
        duration_ms=12.5,
        billed_ms=13,
        memory_size=128,
        max_memory_used_mb=40,
        cold=False,
        init_duration_ms=None,
        outcome=Outcome.SUCCESS,
    )
    values.update(changes)
    return InvocationRecord(**values)  # type: ignore[arg-type]
