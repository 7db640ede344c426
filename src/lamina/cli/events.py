"""`lamina events`: the async queue of a function (depth, oldest age, retries), its failed events,
and redrive (beyond AWS: Lambda drops what it cannot deliver; Lamina keeps it)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import click

from lamina.cli.client import Client, unreachable


class _EventsGroup(click.Group):
    """`lamina events NAME` shows the queue; `lamina events failed|redrive NAME` act on it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_EventsGroup)
def events() -> None:
    """A function's asynchronous invocations: `lamina events NAME`, `failed NAME`, `redrive NAME`."""


@events.command("show")
@click.argument("name")
@click.pass_context
def show(ctx: click.Context, name: str) -> None:
    """Queue depth, events running, events waiting for a retry, oldest age, failed events."""
    stats = _client(ctx).get_json(f"/_lamina/events/{urllib.parse.quote(name)}")
    oldest = stats.get("oldest_age_s")
    click.echo(f"function   {stats['function']}")
    click.echo(f"queued     {stats['depth']}")
    click.echo(f"in flight  {stats['in_flight']}")
    click.echo(f"in retry   {stats['in_retry']}")
    click.echo(f"oldest     {'-' if oldest is None else f'{oldest:.1f} s'}")
    click.echo(f"failed     {stats['failed']}")


@events.command("failed")
@click.argument("name")
@click.option("--limit", default=100, show_default=True, help="Most events to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON (payloads included).")
@click.pass_context
def failed(ctx: click.Context, name: str, limit: int, as_json: bool) -> None:
    """List the events that ended in failure (kept for redrive)."""
    out = _client(ctx).get_json(f"/_lamina/events/{urllib.parse.quote(name)}/failed", limit=limit)
    if as_json:
        click.echo(json.dumps(out["events"], indent=2))
        return
    if not out["events"]:
        click.echo(f"no failed events for {name}")
        return
    for event in out["events"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event["enqueued"]))
        error = (event.get("last_error") or "").replace("\n", " ")[:120]
        click.echo(f"{event['id']}  {when}  attempts={event['attempts']}  {event.get('condition') or '-'}  {error}")


@events.command("redrive")
@click.argument("name")
@click.option("--id", "ids", multiple=True, help="Redrive only this event (repeatable); default: all failed.")
@click.pass_context
def redrive(ctx: click.Context, name: str, ids: tuple[str, ...]) -> None:
    """Queue failed events again (attempts and age start over; the request id stays)."""
    query = urllib.parse.urlencode([("id", i) for i in ids])
    path = f"/_lamina/events/{urllib.parse.quote(name)}/redrive" + (f"?{query}" if query else "")
    out = _post_json(_client(ctx), path)
    redriven = out["redriven"]
    if ids and len(redriven) < len(ids):
        missing = sorted(set(ids) - set(redriven))
        click.echo(f"not failed events of {name}: {', '.join(missing)}", err=True)
    click.echo(f"redrove {len(redriven)} event{'s' if len(redriven) != 1 else ''} of {name}")
    if ids and not redriven:
        raise SystemExit(1)


def _client(ctx: click.Context) -> Client:
    return ctx.obj  # type: ignore[no-any-return]


def _post_json(client: Client, path: str) -> Any:
    url = f"{client.endpoint.rstrip('/')}{path}"
    request = urllib.request.Request(url, data=b"", method="POST")
    key, secret = os.environ.get("LAMINA_ACCESS_KEY_ID"), os.environ.get("LAMINA_SECRET_ACCESS_KEY")
    if key and secret:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        signed = AWSRequest(method="POST", url=url, data=b"")
        SigV4Auth(Credentials(key, secret), "lamina", os.environ.get("LAMINA_REGION", "us-east-1")).add_auth(signed)
        for header, value in signed.headers.items():
            request.add_header(header, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{exc.code} from Lamina: {exc.read().decode(errors='replace')}") from None
    except urllib.error.URLError as exc:
        raise unreachable(client.endpoint, exc.reason) from None
