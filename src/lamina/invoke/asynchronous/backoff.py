"""When an event runs again: AWS's two retry schedules, as pure arithmetic.

- A function error (raised, timed out, crashed) is retried after `base`, then `2 * base`
  (AWS: about 1 and 2 minutes), at most MaximumRetryAttempts times.
- A throttle or a system error is not the function's fault: the event goes back on the queue with
  an exponential backoff from 1 s, doubling up to `cap` (AWS: 5 min), until the event is older
  than MaximumEventAgeInSeconds.
"""

from __future__ import annotations


def retry_delay(attempts: int, base: float) -> float:
    """Delay before the next run after the `attempts`-th run failed (attempts ≥ 1)."""
    return base * (2 ** max(0, attempts - 1))


def requeue_delay(throttles: int, cap: float, first: float = 1.0) -> float:
    """Delay after the `throttles`-th consecutive throttle or system error (throttles ≥ 1)."""
    return min(cap, first * (2 ** max(0, min(throttles - 1, 30))))


def expired(enqueued: float, max_age: float, now: float) -> bool:
    """Whether an event enqueued at `enqueued` is too old to run at `now`."""
    return now - enqueued > max_age
