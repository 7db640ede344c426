"""The platform's own error documents and log lines, as AWS writes them.

Function errors (a handler raising, an import failing) are built inside the sandbox by the
bootstrap, as awslambdaric builds them. The faults here are the ones the *platform* reports about
an environment: it timed out, its process exited or was killed, it ran out of memory, its response
was too large. See ../shared/reference/aws-lambda.md §1.1.
"""

from __future__ import annotations

import json
import os
import signal
import time

TIMEOUT = "Sandbox.Timedout"
EXIT_ERROR = "Runtime.ExitError"
OUT_OF_MEMORY = "Runtime.OutOfMemory"
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"

# Go's syscall signal names: AWS's runtime supervisor is Go and prints os.ProcessState.String().
_GO_SIGNAL_NAMES = {
    1: "hangup",
    2: "interrupt",
    3: "quit",
    4: "illegal instruction",
    5: "trace/breakpoint trap",
    6: "aborted",
    7: "bus error",
    8: "floating point exception",
    9: "killed",
    10: "user defined signal 1",
    11: "segmentation fault",
    12: "user defined signal 2",
    13: "broken pipe",
    14: "alarm clock",
    15: "terminated",
    16: "stack fault",
    17: "child exited",
    18: "continued",
    19: "stopped (signal)",
    20: "stopped",
    21: "stopped (tty input)",
    22: "stopped (tty output)",
    23: "urgent I/O condition",
    24: "CPU time limit exceeded",
    25: "file size limit exceeded",
    26: "virtual timer expired",
    27: "profiling timer expired",
    28: "window changed",
    29: "I/O possible",
    30: "power failure",
    31: "bad system call",
}

# Signals whose default action dumps core (signal(7)). Environments run with RLIMIT_CORE=0 so no
# core file lands in the code directory, which also clears the kernel's "core dumped" bit; AWS's
# sandboxes do dump core for these, and its messages say so, so we report what AWS would.
_CORE_SIGNALS = frozenset(
    int(s)
    for s in (
        signal.SIGQUIT,
        signal.SIGILL,
        signal.SIGTRAP,
        signal.SIGABRT,
        signal.SIGBUS,
        signal.SIGFPE,
        signal.SIGSEGV,
        signal.SIGXCPU,
        signal.SIGXFSZ,
        signal.SIGSYS,
    )
)


def describe_wait_status(status: int) -> str:
    """A wait(2) status as Go's os.ProcessState.String() spells it: "exit status 1",
    "signal: segmentation fault (core dumped)", "signal: killed"."""
    if os.WIFEXITED(status):
        return f"exit status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        text = "signal: " + _GO_SIGNAL_NAMES.get(signum, f"signal {signum}")
        if os.WCOREDUMP(status) or signum in _CORE_SIGNALS:
            text += " (core dumped)"
        return text
    return f"unknown wait status {status}"


def exit_message(request_id: str, status: int | None) -> str:
    """The errorMessage of Runtime.ExitError / Runtime.OutOfMemory."""
    if status is None or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        return f"RequestId: {request_id} Error: Runtime exited without providing a reason"
    return f"RequestId: {request_id} Error: Runtime exited with error: {describe_wait_status(status)}"


def timeout_message(request_id: str, timeout_s: float) -> str:
    return f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"


def timeout_log_line(request_id: str, timeout_s: float, now: float | None = None) -> str:
    """`2020-11-10T05:46:57.874Z <id> Task timed out after 3.00 seconds`."""
    return f"{iso_timestamp(now)} {request_id} Task timed out after {timeout_s:.2f} seconds"


def too_large_message(size: int, limit: int) -> str:
    return f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes)."


def error_document(error_type: str, message: str) -> bytes:
    """A platform error payload: `{"errorMessage": ..., "errorType": ...}` (no requestId, no
    stackTrace: those belong to errors the runtime client reports)."""
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def iso_timestamp(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
