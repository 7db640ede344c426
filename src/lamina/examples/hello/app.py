"""The sample function `lamina up --demo` deploys: greets, counts warm invocations, reports context."""

import os

INVOCATIONS = 0  # module state survives between warm invocations of one environment


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    name = (event or {}).get("name", "world")
    print(f"greeting {name}")
    return {
        "message": f"Hello, {name}!",
        "warm_invocations": INVOCATIONS,
        "request_id": context.aws_request_id,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "runtime": os.environ.get("AWS_EXECUTION_ENV"),
    }
