"""The environment variables a function sees: Lambda's reserved set, then the user's own.

See ../shared/reference/aws-lambda.md §2 "Environment variables".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lamina.config import Settings
from lamina.model.function import FunctionConfig

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/opt/bin"


def client_endpoint(settings: Settings) -> str:
    """Where code inside a function reaches Lamina (a wildcard bind is reached on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}"


@dataclass(frozen=True)
class RoleCredentials:
    """Temporary credentials of the function's execution role (STS, session = function name)."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expires: float  # epoch seconds


def function_env(
    config: FunctionConfig, settings: Settings, code_dir: Path, credentials: RoleCredentials | None = None
) -> dict[str, str]:
    env = {
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": DEFAULT_PATH,
        "LD_LIBRARY_PATH": "/usr/local/lib:/usr/lib:/lib",
    }
    env.update(config.environment)  # users may override the four above, nothing below
    env.update(
        {
            "_HANDLER": config.handler,
            "AWS_REGION": settings.region,
            "AWS_DEFAULT_REGION": settings.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group,
            "LAMBDA_TASK_ROOT": str(code_dir),
            # Credentials: the execution role's temporary ones when Lamina's IAM has the role (as on
            # AWS); otherwise the server's own keys when it has some (so boto3 in a handler can call
            # Lamina), dummies when it has none.
            "AWS_ACCESS_KEY_ID": settings.access_key_id or "test",
            "AWS_ACCESS_KEY": settings.access_key_id or "test",
            "AWS_SECRET_ACCESS_KEY": settings.secret_access_key or "test",
            "AWS_SESSION_TOKEN": "lamina-session-token",
            # boto3 inside the handler talks to Lamina, not to AWS.
            "AWS_ENDPOINT_URL": client_endpoint(settings),
        }
    )
    if credentials is not None:
        env["AWS_ACCESS_KEY_ID"] = env["AWS_ACCESS_KEY"] = credentials.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = credentials.secret_access_key
        env["AWS_SESSION_TOKEN"] = credentials.session_token
    if config.runtime.startswith("provided"):
        del env["AWS_EXECUTION_ENV"]  # AWS sets none for custom runtimes
    return env
