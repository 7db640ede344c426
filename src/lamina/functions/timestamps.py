"""Lambda's LastModified: a string like 2020-04-10T19:06:32.563+0000 (not an epoch number)."""

from __future__ import annotations

from datetime import UTC, datetime


def now_lambda_timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"
