"""`lamina mappings`: event source mappings at a glance, per shard (checkpoint, lag, last result,
retries in progress), and replay of the batches that went to OnFailure (beyond AWS)."""

from __future__ import annotations

import json
import time
import urllib.parse

import click

from lamina.cli.client import Client, aws_errors


@click.group()
def mappings() -> None:
    """Event source mappings: `ls`, `show UUID`, `failed UUID`, `replay UUID`."""


@mappings.command("ls")
@click.option("--function", "function", default=None, help="Only this function's mappings.")
@click.pass_context
def ls(ctx: click.Context, function: str | None) -> None:
    """List mappings: UUID, state, function, source, batch size, last processing result."""
    client: Client = ctx.obj
    with aws_errors(client.endpoint):
        lam = client.aws("lambda")
        found = []
        for page in lam.get_paginator("list_event_source_mappings").paginate(
            **({"FunctionName": function} if function else {})
        ):
            found += page["EventSourceMappings"]
    if not found:
        click.echo("no event source mappings")
        return
    for m in found:
        function_name = m["FunctionArn"].split(":function:", 1)[-1]
        source = m.get("EventSourceArn", "").rsplit(":", 1)[-1]
        click.echo(f"{m['UUID']}  {m['State']:<9} {function_name:<24} {source:<24} batch={m.get('BatchSize')}"
                   f"  {m.get('LastProcessingResult', '')}")  # fmt: skip


@mappings.command("show")
@click.argument("uuid")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
@click.pass_context
def show(ctx: click.Context, uuid: str, as_json: bool) -> None:
    """A mapping's settings and, per shard, checkpoint, lag, last result and retries in progress."""
    out = ctx.obj.get_json(f"/_lamina/mappings/{urllib.parse.quote(uuid)}")
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    m = out["mapping"]
    click.echo(f"mapping    {m['UUID']}  ({m['State']}, {m['LastProcessingResult']})")
    click.echo(f"function   {m['FunctionArn']}")
    click.echo(f"source     {m['EventSourceArn']}")
    click.echo(f"batch      {m['BatchSize']} records, window {m['MaximumBatchingWindowInSeconds']} s,"
               f" parallelization {m['ParallelizationFactor']}")  # fmt: skip
    click.echo(f"failed     {out['failedBatches']} kept batches ({out['notReplayed']} not replayed)")
    for s in out["shards"]:
        state = "finished" if s["finished"] else f"lag {s['lagRecords']} records / {s['lagMs']} ms"
        click.echo(f"  {s['shard']}  checkpoint {s['checkpoint']}  {state}  retries {s['retries']}"
                   f"  {s['lastResult']}")  # fmt: skip


@mappings.command("failed")
@click.argument("uuid")
@click.option("--json", "as_json", is_flag=True, help="Print the kept batches with their on-failure records.")
@click.pass_context
def failed(ctx: click.Context, uuid: str, as_json: bool) -> None:
    """The batches that went to OnFailure, kept with their records for replay."""
    out = ctx.obj.get_json(f"/_lamina/mappings/{urllib.parse.quote(uuid)}/failed")
    if as_json:
        click.echo(json.dumps(out["batches"], indent=2))
        return
    if not out["batches"]:
        click.echo("no failed batches")
        return
    for b in out["batches"]:
        info = next((v for k, v in b["record"].items() if k.endswith("BatchInfo")), {})
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(b["failed"]))
        replayed = "replayed" if b["replayed"] else "not replayed"
        span = f"{info.get('startSequenceNumber', '')}..{info.get('endSequenceNumber', '')}"
        records = f"{info.get('batchSize', '?')} records"
        click.echo(f"{b['id']}  {when}  {b['shard']}  {b['condition']}  {records}  {span}  {replayed}")


@mappings.command("replay")
@click.argument("uuid")
@click.option(
    "--id", "ids", multiple=True, type=int, help="Replay only this batch (repeatable); default: all not replayed."
)
@click.pass_context
def replay(ctx: click.Context, uuid: str, ids: tuple[int, ...]) -> None:
    """Invoke the mapping's function (its current version) again with kept batches."""
    out = ctx.obj.post_json(f"/_lamina/mappings/{urllib.parse.quote(uuid)}/replay", [("id", i) for i in ids])
    for r in out["replayed"]:
        click.echo(f"batch {r['id']}: {'ok' if r['ok'] else 'failed again (' + (r['functionError'] or '') + ')'}")
    click.echo(f"replayed {len(out['replayed'])} batch{'es' if len(out['replayed']) != 1 else ''}")
    if any(not r["ok"] for r in out["replayed"]):
        raise SystemExit(1)
