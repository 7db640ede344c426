"""Billing arithmetic and the REPORT line, exactly as Lambda prints and charges them.

Billed duration is the duration rounded up to the next millisecond. Since 2025-08-01 the INIT phase
of on-demand Zip functions is billed too, so a cold start bills init + invoke
(../shared/reference/aws-lambda.md §6).
"""

from __future__ import annotations

import math

from lamina.model.invocation import InvocationRecord


def billed_ms(duration_ms: float, init_duration_ms: float | None = None) -> int:
    return max(1, math.ceil(duration_ms + (init_duration_ms or 0.0)))


def gb_seconds(memory_mb: int, billed: int) -> float:
    return memory_mb / 1024 * billed / 1000


def report_line(record: InvocationRecord) -> str:
    """`REPORT RequestId: ...\\tDuration: 15.74 ms\\t...\\t` with its trailing tab (§2 Log lines)."""
    parts = [
        f"REPORT RequestId: {record.request_id}",
        f"Duration: {record.duration_ms:.2f} ms",
        f"Billed Duration: {record.billed_ms} ms",
        f"Memory Size: {record.memory_size} MB",
        f"Max Memory Used: {record.max_memory_used_mb} MB",
    ]
    if record.init_duration_ms is not None:
        parts.append(f"Init Duration: {record.init_duration_ms:.2f} ms")
    if record.error_type and record.outcome != "success":
        parts.append("Status: timeout" if record.outcome == "timeout" else "Status: error")
        parts.append(f"Error Type: {record.error_type}")
    return "\t".join(parts) + "\t"


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"
