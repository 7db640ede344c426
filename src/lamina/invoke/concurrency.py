"""Concurrency leases: how many invocations run at once, per function and account-wide.

Lambda's pools (../shared/reference/aws-lambda.md §1 "Reserved concurrency", §6):
- the account has `limit` executions (Settings.max_concurrency, AWS's 1,000);
- a function with reserved concurrency R gets a pool of its own of R, for all its versions; it can
  never use more, and nobody else can use it; R = 0 throttles every invoke;
- every other function shares what is left, `limit - Σ reserved`, minus the provisioned
  concurrency of unreserved functions, which is set aside for them (`set_provisioned`): up to its
  provisioned amount a function runs on its own set-aside, beyond it on the shared pool.

Over a limit → TooManyRequests("Rate Exceeded.") with Lambda's Reason:
ReservedFunctionConcurrentInvocationLimitExceeded for a reserved pool, ConcurrentInvocationLimitExceeded
for the shared one. One lock, a few dict lookups: it sits on every invoke.

The control plane (functions/concurrency.py) keeps this view current; nothing here is durable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lamina.errors import TooManyRequests

RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"

# Which pool a lease was counted in (a reservation may change while an invocation runs).
_RESERVED, _SET_ASIDE, _SHARED = 0, 1, 2


class ConcurrencyLimiter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._in_use = 0
        self._running: dict[str, int] = {}  # per function, every pool
        self._reserved: dict[str, int] = {}
        self._reserved_total = 0
        self._provisioned: dict[str, int] = {}  # set aside for unreserved functions
        self._provisioned_total = 0  # of functions without a reservation
        self._set_aside_in_use: dict[str, int] = {}
        self._shared_in_use = 0

    # -- the view the control plane keeps current ---------------------------------------------

    def set_reserved(self, function: str, reserved: int | None) -> None:
        """Give `function` a pool of its own of `reserved` (None: back to the shared pool)."""
        with self._lock:
            provisioned = self._provisioned.get(function, 0)
            if function in self._reserved:
                self._reserved_total -= self._reserved.pop(function)
            else:
                self._provisioned_total -= provisioned
            if reserved is None:
                self._provisioned_total += provisioned
            else:
                self._reserved[function] = reserved
                self._reserved_total += reserved

    def set_provisioned(self, function: str, provisioned: int) -> None:
        """The provisioned concurrency configured across `function`'s versions and aliases."""
        with self._lock:
            old = self._provisioned.pop(function, 0)
            if provisioned > 0:
                self._provisioned[function] = provisioned
            if function not in self._reserved:
                self._provisioned_total += provisioned - old

    def forget(self, function: str) -> None:
        """The function is gone: drop its reservation and provisioned amount."""
        self.set_reserved(function, None)
        self.set_provisioned(function, 0)

    # -- reads ---------------------------------------------------------------------------------

    @property
    def in_use(self) -> int:
        return self._in_use

    def reserved(self, function: str) -> int | None:
        """The function's reserved concurrency, or None when it has none."""
        return self._reserved.get(function)

    def unreserved(self) -> int:
        """The account's executions not reserved by any function (GetAccountSettings'
        UnreservedConcurrentExecutions)."""
        return max(0, self.limit - self._reserved_total)

    def running(self, function: str) -> int:
        return self._running.get(function, 0)

    def available(self, function: str) -> int:
        """How many more invocations of `function` could start now without a throttle."""
        with self._lock:
            reserved = self._reserved.get(function)
            if reserved is not None:
                return max(0, reserved - self._running.get(function, 0))
            set_aside = max(0, self._provisioned.get(function, 0) - self._set_aside_in_use.get(function, 0))
            return set_aside + max(0, self._shared_capacity() - self._shared_in_use)

    def _shared_capacity(self) -> int:
        return self.limit - self._reserved_total - self._provisioned_total

    # -- leases --------------------------------------------------------------------------------

    @contextmanager
    def lease(self, function: str) -> Iterator[None]:
        """Hold one slot of `function`'s pool for the duration of an invocation; over the
        limit → 429 TooManyRequests with Lambda's Reason."""
        pool = self._acquire(function)
        try:
            yield
        finally:
            self._release(function, pool)

    def _acquire(self, function: str) -> int:
        with self._lock:
            running = self._running.get(function, 0)
            reserved = self._reserved.get(function)
            if reserved is not None:
                if running >= reserved:
                    raise TooManyRequests("Rate Exceeded.", reason=RESERVED_LIMIT)
                pool = _RESERVED
            elif self._set_aside_in_use.get(function, 0) < self._provisioned.get(function, 0):
                self._set_aside_in_use[function] = self._set_aside_in_use.get(function, 0) + 1
                pool = _SET_ASIDE
            else:
                if self._shared_in_use >= self._shared_capacity():
                    raise TooManyRequests("Rate Exceeded.", reason=ACCOUNT_LIMIT)
                self._shared_in_use += 1
                pool = _SHARED
            self._running[function] = running + 1
            self._in_use += 1
            return pool

    def _release(self, function: str, pool: int) -> None:
        with self._lock:
            self._in_use -= 1
            left = self._running[function] - 1
            if left:
                self._running[function] = left
            else:
                del self._running[function]
            if pool == _SHARED:
                self._shared_in_use -= 1
            elif pool == _SET_ASIDE:
                left = self._set_aside_in_use[function] - 1
                if left:
                    self._set_aside_in_use[function] = left
                else:
                    del self._set_aside_in_use[function]
