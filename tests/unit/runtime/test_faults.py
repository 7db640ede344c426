"""Platform error messages, spelled as AWS spells them (Go's os.ProcessState strings)."""

from __future__ import annotations

import json
import re

from lamina.runtime import faults


def _signaled(signum: int, core: bool = False) -> int:
    return signum | (0x80 if core else 0)


def _exited(code: int) -> int:
    return code << 8


def test_wait_status_strings():
    assert faults.describe_wait_status(_exited(1)) == "exit status 1"
    assert faults.describe_wait_status(_exited(0)) == "exit status 0"
    assert faults.describe_wait_status(_signaled(9)) == "signal: killed"
    assert faults.describe_wait_status(_signaled(15)) == "signal: terminated"
    assert faults.describe_wait_status(_signaled(11, core=True)) == "signal: segmentation fault (core dumped)"
    # RLIMIT_CORE=0 clears the kernel's bit; AWS's sandboxes dump core for these signals.
    assert faults.describe_wait_status(_signaled(6)) == "signal: aborted (core dumped)"
    assert faults.describe_wait_status(_signaled(64)) == "signal: signal 64"


def test_exit_messages():
    assert faults.exit_message("id", _exited(2)) == "RequestId: id Error: Runtime exited with error: exit status 2"
    assert faults.exit_message("id", _exited(0)) == "RequestId: id Error: Runtime exited without providing a reason"
    assert faults.exit_message("id", None) == "RequestId: id Error: Runtime exited without providing a reason"


def test_timeout_texts():
    assert faults.timeout_message("id", 3) == "RequestId: id Error: Task timed out after 3.00 seconds"
    assert faults.timeout_message("id", 0.5) == "RequestId: id Error: Task timed out after 0.50 seconds"
    line = faults.timeout_log_line("id", 3, now=1604987217.874)
    assert line == "2020-11-10T05:46:57.874Z id Task timed out after 3.00 seconds"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", faults.iso_timestamp())


def test_documents():
    message = faults.too_large_message(6300002, 6291556)
    assert message == "Response payload size (6300002 bytes) exceeded maximum allowed payload size (6291556 bytes)."
    doc = json.loads(faults.error_document(faults.RESPONSE_TOO_LARGE, message))
    assert doc == {"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"}
