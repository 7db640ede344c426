"""`lamina events`: the async queue of a function (depth, oldest age, retries), its failed events,
and redrive (beyond AWS: Lambda drops what it cannot deliver; Lamina keeps it)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import click

from lamina.cli.client import Client


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
    out = _client(ctx).post_json(f"/_lamina/events/{urllib.parse.quote(name)}/redrive", [("id", i) for i in ids])
    redriven = out["redriven"]
    if ids and len(redriven) < len(ids):
        missing = sorted(set(ids) - set(redriven))
        click.echo(f"not failed events of {name}: {', '.join(missing)}", err=True)
    click.echo(f"redrove {len(redriven)} event{'s' if len(redriven) != 1 else ''} of {name}")
    if ids and not redriven:
        raise SystemExit(1)


def _client(ctx: click.Context) -> Client:
    return ctx.obj  # type: ignore[no-any-return]
