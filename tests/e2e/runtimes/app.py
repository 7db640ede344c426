# The Python handler run through awslambdaric (provided.al2023, bootstrap = python -m awslambdaric).
import os
import subprocess
import time

COUNT = 0
SEEN = {}
ENV = ("_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_EXECUTION_ENV", "AWS_LAMBDA_RUNTIME_API",
       "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION", "_X_AMZN_TRACE_ID",
       "AWS_LAMBDA_LOG_STREAM_NAME")  # fmt: skip

if os.environ.get("FAIL_AT_LOAD"):
    raise RuntimeError("boom at load")


def handler(event, context):
    global COUNT
    COUNT += 1
    action = event.get("action", "echo")
    if action == "error":
        raise ValueError("boom")
    if action == "crash":
        os._exit(3)
    if action == "sleep":
        child = subprocess.Popen(["sleep", "60"])
        print("CHILD", child.pid, flush=True)
        time.sleep(60)
    if action == "wait":
        time.sleep(event["seconds"])
    if action == "flaky":
        SEEN[context.aws_request_id] = SEEN.get(context.aws_request_id, 0) + 1
        if SEEN[context.aws_request_id] < 2:
            raise RuntimeError(f"attempt {SEEN[context.aws_request_id]} fails")
    print("handling", context.aws_request_id)
    return {
        "event": event,
        "requestId": context.aws_request_id,
        "count": COUNT,
        "remaining": context.get_remaining_time_in_millis(),
        "functionName": context.function_name,
        "arn": context.invoked_function_arn,
        "env": {k: os.environ.get(k) for k in ENV},
        "pid": os.getpid(),
    }
