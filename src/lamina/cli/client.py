"""How the client commands reach a running Lamina: boto3 for AWS APIs, plain HTTP for Lamina's own."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import click

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"


@dataclass(frozen=True)
class Client:
    endpoint: str

    def aws(self, service: str) -> Any:
        import boto3  # deferred: importing boto3 costs ~300 ms, and `lamina up` does not need it
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=os.environ.get("LAMINA_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            aws_access_key_id=os.environ.get("LAMINA_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY_ID") or "test",
            aws_secret_access_key=(
                os.environ.get("LAMINA_SECRET_ACCESS_KEY") or os.environ.get("AWS_SECRET_ACCESS_KEY") or "test"
            ),
            config=Config(retries={"max_attempts": 1}, read_timeout=960, connect_timeout=5),
        )

    def get_json(self, path: str, **query: Any) -> Any:
        """GET one of Lamina's own `/_lamina/...` routes."""
        params = {k: v for k, v in query.items() if v is not None}
        return self._call("GET", path, urllib.parse.urlencode(params))

    def post_json(self, path: str, query: Sequence[tuple[str, Any]] = ()) -> Any:
        """POST (no body) to one of Lamina's own `/_lamina/...` routes; `query` may repeat a name."""
        return self._call("POST", path, urllib.parse.urlencode(list(query)))

    def _call(self, method: str, path: str, query: str) -> Any:
        url = f"{self.endpoint.rstrip('/')}{path}" + (f"?{query}" if query else "")
        body = b"" if method == "POST" else None
        request = urllib.request.Request(url, data=body, method=method)
        key = os.environ.get("LAMINA_ACCESS_KEY_ID")
        secret = os.environ.get("LAMINA_SECRET_ACCESS_KEY")
        if key and secret:
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials

            signed = AWSRequest(method=method, url=url, data=body)
            SigV4Auth(Credentials(key, secret), "lamina", os.environ.get("LAMINA_REGION", "us-east-1")).add_auth(signed)
            for name, value in signed.headers.items():
                request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body_text = exc.read().decode(errors="replace")
            raise click.ClickException(f"{exc.code} from Lamina: {body_text}") from None
        except urllib.error.URLError as exc:
            raise unreachable(self.endpoint, exc.reason) from None


def unreachable(endpoint: str, reason: object) -> click.ClickException:
    return click.ClickException(
        f"cannot reach Lamina at {endpoint} ({reason}). Start it with `lamina up`, or point --endpoint / "
        "LAMINA_ENDPOINT at a running server."
    )


@contextlib.contextmanager
def aws_errors(endpoint: str) -> Iterator[None]:
    """Turn boto3 errors into one-line messages: no tracebacks for user mistakes."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise click.ClickException(f"{error.get('Code')}: {error.get('Message')}") from None
    except EndpointConnectionError as exc:
        raise unreachable(endpoint, exc) from None
