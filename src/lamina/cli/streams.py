"""`lamina streams`: Kinesis streams on a running Lamina, through boto3's kinesis client."""

from __future__ import annotations

import base64
import contextlib
import json
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click

from lamina.cli.arguments import inline_or_file
from lamina.cli.client import Client, aws_errors

FOLLOW_POLL_S = 0.25
SHARD_REFRESH_S = 5.0


@click.group()
def streams() -> None:
    """Kinesis streams: ls, create, describe, put, tail."""


def _kinesis(ctx: click.Context) -> tuple[Client, Any]:
    client: Client = ctx.find_root().obj
    return client, client.aws("kinesis")


@streams.command("ls")
@click.pass_context
def ls(ctx: click.Context) -> None:
    """List streams with their mode, open shards and retention."""
    client, kinesis = _kinesis(ctx)
    with aws_errors(client.endpoint):
        names = [n for page in kinesis.get_paginator("list_streams").paginate() for n in page["StreamNames"]]
        summaries = [kinesis.describe_stream_summary(StreamName=n)["StreamDescriptionSummary"] for n in names]
    if not summaries:
        click.echo("no streams yet: `lamina streams create NAME` creates one")
        return
    click.echo(f"{'NAME':32} {'MODE':12} {'STATUS':8} {'SHARDS':>6} {'RETENTION':>9}  CREATED")
    for s in summaries:
        mode = s.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
        created = _stamp(s["StreamCreationTimestamp"])
        click.echo(f"{s['StreamName']:32} {mode:12} {s['StreamStatus']:8} {s['OpenShardCount']:>6} "
                   f"{str(s['RetentionPeriodHours']) + 'h':>9}  {created}")  # fmt: skip


@streams.command()
@click.argument("name")
@click.option("--shards", type=click.IntRange(1), default=None, help="Shard count (provisioned mode) [1].")
@click.option("--on-demand", is_flag=True, help="On-demand capacity mode (Lamina starts it with 4 shards).")
@click.pass_context
def create(ctx: click.Context, name: str, shards: int | None, on_demand: bool) -> None:
    """Create a stream."""
    if on_demand and shards is not None:
        raise click.UsageError("--shards and --on-demand do not go together")
    client, kinesis = _kinesis(ctx)
    with aws_errors(client.endpoint):
        if on_demand:
            kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        else:
            kinesis.create_stream(StreamName=name, ShardCount=shards or 1)
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    mode = "on-demand" if on_demand else "provisioned"
    click.echo(f"created {summary['StreamARN']} ({summary['OpenShardCount']} shards, {mode})")


@streams.command()
@click.argument("name")
@click.pass_context
def describe(ctx: click.Context, name: str) -> None:
    """Show a stream's shards (hash ranges, open/closed) with records, bytes and lag per shard.

    Records and bytes are counted by reading each shard from its oldest retained record; lag is how
    long ago the shard's newest record arrived.
    """
    client, kinesis = _kinesis(ctx)
    with aws_errors(client.endpoint):
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        shards = [s for page in kinesis.get_paginator("list_shards").paginate(StreamName=name) for s in page["Shards"]]
        counts = {s["ShardId"]: _count_shard(kinesis, name, s["ShardId"]) for s in shards}
    mode = summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
    click.echo(f"stream     {summary['StreamName']} ({summary['StreamStatus']}, {mode})")
    click.echo(f"arn        {summary['StreamARN']}")
    click.echo(f"retention  {summary['RetentionPeriodHours']} h")
    click.echo(f"created    {_stamp(summary['StreamCreationTimestamp'])}")
    total_records = sum(c[0] for c in counts.values())
    total_bytes = sum(c[1] for c in counts.values())
    click.echo(f"shards     {len(shards)} ({summary['OpenShardCount']} open), {total_records} records, "
               f"{_size(total_bytes)}")  # fmt: skip
    click.echo("")
    click.echo(f"{'SHARD':22} {'STATE':6} {'RECORDS':>9} {'BYTES':>10} {'LAG':>10}  HASH KEY RANGE")
    now = time.time()
    for s in shards:
        records, size, newest = counts[s["ShardId"]]
        state = "closed" if s["SequenceNumberRange"].get("EndingSequenceNumber") else "open"
        lag = "-" if newest is None else _duration(max(0.0, now - newest))
        hashes = f"{s['HashKeyRange']['StartingHashKey']}..{s['HashKeyRange']['EndingHashKey']}"
        click.echo(f"{s['ShardId']:22} {state:6} {records:>9} {_size(size):>10} {lag:>10}  {hashes}")


def _count_shard(kinesis: Any, name: str, shard_id: str) -> tuple[int, int, float | None]:
    """(records, data bytes, arrival of the newest record as epoch seconds) of one shard."""
    iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records = size = 0
    newest: float | None = None
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
        for record in page["Records"]:
            records += 1
            size += len(record["Data"])
            newest = record["ApproximateArrivalTimestamp"].timestamp()
        iterator = page.get("NextShardIterator")
        if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
            break
    return records, size, newest


@streams.command()
@click.argument("name")
@click.argument("data")
@click.option("--partition-key", "-k", default=None, help="Partition key [a random one].")
@click.pass_context
def put(ctx: click.Context, name: str, data: str, partition_key: str | None) -> None:
    """Put one record: DATA as text, or @file to send a file's bytes. Prints its shard and sequence number."""
    payload = inline_or_file(data, "DATA")
    client, kinesis = _kinesis(ctx)
    with aws_errors(client.endpoint):
        out = kinesis.put_record(StreamName=name, Data=payload, PartitionKey=partition_key or uuid.uuid4().hex)
    click.echo(f"{out['ShardId']} {out['SequenceNumber']}")


@streams.command()
@click.argument("name")
@click.option("--from-start", is_flag=True, help="Start at the oldest retained record (default: new records only).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing records as they arrive (Ctrl-C stops).")
@click.pass_context
def tail(ctx: click.Context, name: str, from_start: bool, follow: bool) -> None:
    """Print a stream's records from every shard as `shardId sequence partitionKey data`.

    Data is shown as JSON (on one line) when it is JSON, else as UTF-8 text, else as base64.
    """
    client, kinesis = _kinesis(ctx)
    with _stop_on_signals(), aws_errors(client.endpoint):
        start = "TRIM_HORIZON" if from_start else "LATEST"
        iterators: dict[str, str | None] = {}
        _add_shards(kinesis, name, iterators, start)
        refreshed = time.monotonic()
        while True:
            caught_up = True
            for shard_id, iterator in list(iterators.items()):
                if iterator is None:
                    continue  # a closed shard read to its end
                page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
                for record in page["Records"]:
                    click.echo(f"{shard_id} {record['SequenceNumber']} {record['PartitionKey']} "
                               f"{render(record['Data'])}")  # fmt: skip
                iterators[shard_id] = page.get("NextShardIterator")
                if page["Records"] or page.get("MillisBehindLatest", 0) > 0:
                    caught_up = False
            if caught_up and not follow:
                return
            if caught_up:
                time.sleep(FOLLOW_POLL_S)
            if follow and time.monotonic() - refreshed > SHARD_REFRESH_S:
                _add_shards(kinesis, name, iterators, "TRIM_HORIZON")  # children of a reshard, from their start
                refreshed = time.monotonic()


def _add_shards(kinesis: Any, name: str, iterators: dict[str, str | None], start: str) -> None:
    for page in kinesis.get_paginator("list_shards").paginate(StreamName=name):
        for shard in page["Shards"]:
            if shard["ShardId"] not in iterators:
                iterators[shard["ShardId"]] = kinesis.get_shard_iterator(
                    StreamName=name, ShardId=shard["ShardId"], ShardIteratorType=start
                )["ShardIterator"]


def render(data: bytes) -> str:
    """A record's data on one line: compact JSON if it is JSON, else UTF-8 text, else base64."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode()
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        pass
    if text.isprintable():
        return text
    if all(c.isprintable() or c in "\t\r\n" for c in text):
        return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return base64.b64encode(data).decode()


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Ctrl-C or SIGTERM ends the command quietly with status 0."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["render", "streams"]
