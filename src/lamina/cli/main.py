"""The `lamina` command: `up` serves; the other commands are clients of a running server."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

import click

from lamina.cli.arguments import inline_or_file
from lamina.cli.client import DEFAULT_ENDPOINT, Client, aws_errors
from lamina.cli.concurrency import concurrency
from lamina.cli.events import events
from lamina.cli.iam import iam
from lamina.cli.mappings import mappings
from lamina.cli.package import build_zip
from lamina.cli.streams import streams
from lamina.cli.versions import alias, publish, versions

DEFAULT_ROLE = "arn:aws:iam::000000000000:role/lamina-function"


def _client(ctx: click.Context) -> Client:
    return ctx.obj


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--endpoint",
    envvar="LAMINA_ENDPOINT",
    default=DEFAULT_ENDPOINT,
    show_default=True,
    help="Where the client commands find Lamina (env LAMINA_ENDPOINT).",
)
@click.version_option(package_name="lamina")
@click.pass_context
def main(ctx: click.Context, endpoint: str) -> None:
    """Lamina: AWS Lambda you can run yourself.

    `lamina up` serves the AWS Lambda, Kinesis, CloudWatch Logs, STS and IAM APIs on
    http://127.0.0.1:4566; boto3 and the AWS CLI work against it with --endpoint-url. The other
    commands talk to a running server.
    """
    ctx.obj = Client(endpoint)


@main.command()
@click.option("--host", envvar="LAMINA_HOST", default=None, help="Address to listen on [127.0.0.1].")
@click.option("--port", envvar="LAMINA_PORT", type=int, default=None, help="Port [4566].")
@click.option("--data-dir", envvar="LAMINA_DATA_DIR", type=click.Path(path_type=Path), default=None,
              help="Where state lives [./.lamina].")  # fmt: skip
@click.option("--demo", is_flag=True, help="Deploy and invoke the bundled sample function once serving.")
def up(host: str | None, port: int | None, data_dir: Path | None, demo: bool) -> None:
    """Serve Lamina in the foreground (Ctrl-C stops it)."""
    from lamina.config import Settings
    from lamina.errors import ConfigError
    from lamina.server import serve

    try:
        settings = Settings.load(host=host, port=port, data_dir=data_dir)
        settings.check_bind()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    serve(settings, on_ready=_demo if demo else _ready)


def _ready(endpoint: str) -> None:
    click.echo(f"Lamina is serving the Lambda, Kinesis, CloudWatch Logs, STS and IAM APIs on {endpoint}")
    click.echo(f"  aws --endpoint-url {endpoint} lambda list-functions")


def _demo(endpoint: str) -> None:
    """Deploy the bundled sample through the real API, invoke it, and show the result."""
    _ready(endpoint)
    client = Client(endpoint)
    sample = Path(__file__).resolve().parent.parent / "examples" / "hello"
    deadline = time.monotonic() + 10
    while client.get_json("/_lamina/health").get("zygotes", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)  # the zygote boots (imports boto3) once, in the background, at start-up
    with aws_errors(endpoint):
        lam = client.aws("lambda")
        code = build_zip(sample)
        try:
            lam.update_function_code(FunctionName="hello", ZipFile=code)
        except lam.exceptions.ResourceNotFoundException:
            lam.create_function(FunctionName="hello", Runtime=_host_runtime(), Role=DEFAULT_ROLE,
                                Handler="app.handler", Code={"ZipFile": code})  # fmt: skip
        started = time.perf_counter()
        response = lam.invoke(FunctionName="hello", Payload=json.dumps({"name": "Lamina"}))
        elapsed = (time.perf_counter() - started) * 1000
        click.echo(f"demo: deployed `hello` and invoked it in {elapsed:.1f} ms (cold start included):")
        click.echo("  " + response["Payload"].read().decode())
        click.echo(f"  aws --endpoint-url {endpoint} lambda invoke --function-name hello out.json && cat out.json")


def _host_runtime() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def _env_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--env")
        env[key] = value
    return env


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", help="Function name [the directory or zip name].")
@click.option("--handler", default="app.handler", show_default=True)
@click.option("--runtime", default=None, help="Runtime [python of this machine, e.g. python3.11].")
@click.option("--memory", type=int, default=None, help="Memory in MB [128].")
@click.option("--timeout", type=int, default=None, help="Timeout in seconds [3].")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="Environment variable (repeatable).")
@click.option("--role", default=DEFAULT_ROLE, show_default=True)
@click.pass_context
def deploy(ctx: click.Context, path: Path, name: str | None, handler: str, runtime: str | None,
           memory: int | None, timeout: int | None, env_pairs: tuple[str, ...], role: str) -> None:  # fmt: skip
    """Create or update a function from a directory or a zip (installs requirements.txt)."""
    client = _client(ctx)
    name = name or path.stem.replace(".", "-").replace(" ", "-")
    code = build_zip(path)
    config: dict = {"Handler": handler}
    if runtime:
        config["Runtime"] = runtime
    if memory is not None:
        config["MemorySize"] = memory
    if timeout is not None:
        config["Timeout"] = timeout
    if env_pairs:
        config["Environment"] = {"Variables": _env_pairs(env_pairs)}
    with aws_errors(client.endpoint):
        lam = client.aws("lambda")
        try:
            lam.get_function_configuration(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            out = lam.create_function(FunctionName=name, Role=role, Code={"ZipFile": code},
                                      **{"Runtime": _host_runtime(), **config})  # fmt: skip
            click.echo(f"created {out['FunctionArn']} ({out['CodeSize']} bytes, {out['Runtime']})")
            return
        lam.update_function_code(FunctionName=name, ZipFile=code)
        out = lam.update_function_configuration(FunctionName=name, Role=role, **config)
        click.echo(f"updated {out['FunctionArn']} ({out['CodeSize']} bytes, {out['Runtime']})")


@main.command()
@click.argument("name")
@click.option("--payload", default="{}", help="JSON event, or @file to read it from a file.")
@click.option("--tail", is_flag=True, help="Print the invocation's log (last 4 KB) to stderr.")
@click.option("--async", "is_async", is_flag=True, help="Queue the event (InvocationType Event); print its request id.")
@click.option("--qualifier", "-q", default=None, help="A version number or an alias [$LATEST].")
@click.pass_context
def invoke(ctx: click.Context, name: str, payload: str, tail: bool, is_async: bool, qualifier: str | None) -> None:
    """Invoke a function synchronously and print its result (or queue it with --async)."""
    client = _client(ctx)
    event = inline_or_file(payload, "--payload")
    try:
        json.loads(event)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    target = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
    if is_async:
        with aws_errors(client.endpoint):
            queued = client.aws("lambda").invoke(**target, Payload=event, InvocationType="Event")
        click.echo(queued["ResponseMetadata"]["RequestId"])
        return
    with aws_errors(client.endpoint):
        response = client.aws("lambda").invoke(**target, Payload=event, LogType="Tail" if tail else "None")
    if tail and qualifier:
        click.echo(f"(ran version {response['ExecutedVersion']})", err=True)
    if tail and response.get("LogResult"):
        click.echo(base64.b64decode(response["LogResult"]).decode(errors="replace"), err=True, nl=False)
    click.echo(response["Payload"].read().decode())
    if response.get("FunctionError"):
        sys.exit(1)


@main.command("ls")
@click.pass_context
def list_functions(ctx: click.Context) -> None:
    """List functions."""
    client = _client(ctx)
    with aws_errors(client.endpoint):
        pages = client.aws("lambda").get_paginator("list_functions").paginate()
        rows = [f for page in pages for f in page["Functions"]]
    if not rows:
        click.echo("no functions yet: `lamina deploy PATH` creates one")
        return
    click.echo(f"{'NAME':32} {'RUNTIME':11} {'MEMORY':>6} {'TIMEOUT':>7}  LAST MODIFIED")
    for f in rows:
        click.echo(f"{f['FunctionName']:32} {f['Runtime']:11} {f['MemorySize']:>6} {f['Timeout']:>7}  "
                   f"{f['LastModified']}")  # fmt: skip


@main.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines as they arrive.")
@click.option("--limit", type=int, default=200, show_default=True, help="Lines to show before following.")
@click.option("--filter", "pattern", default=None, help='Only lines matching a CloudWatch Logs filter pattern: '
              'terms, "a phrase", ?any ?of, -not, { $.level = "ERROR" }.')  # fmt: skip
@click.option("--since", default=None, help="Only lines stamped since: a duration like 10m, 2h, 7d, or an ISO date.")
@click.option("--stream", default=None, help="Only this log stream (one execution environment).")
@click.pass_context
def logs(
    ctx: click.Context, name: str, follow: bool, limit: int, pattern: str | None, since: str | None, stream: str | None
) -> None:
    """Print a function's log lines (all its environments' streams, in time order).

    Reads Lamina's own log route rather than FilterLogEvents: its cursor is commit order, so
    --follow never skips a line that one environment commits after another's later-stamped one."""
    client = _client(ctx)
    narrow = {"filter": pattern, "stream": stream, "since": int(_since(since) * 1000) if since else None}
    page = client.get_json(f"/_lamina/logs/{name}", tail=limit, **narrow)
    for event in page["events"]:
        click.echo(_log_line(event))
    cursor = page["cursor"]
    while follow:
        time.sleep(0.5)
        page = client.get_json(f"/_lamina/logs/{name}", after=cursor, **narrow)
        for event in page["events"]:
            click.echo(_log_line(event))
        cursor = page["cursor"]


def _log_line(event: dict) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event["timestamp"] / 1000))
    return f"{stamp}.{event['timestamp'] % 1000:03d}Z {event['message']}"


@main.command()
@click.option("--since", default=None, help="Only invocations since: an ISO date, or a duration like 24h, 7d.")
@click.pass_context
def cost(ctx: click.Context, since: str | None) -> None:
    """Requests, GB-seconds and dollars at AWS's list prices (free tier shown apart)."""
    client = _client(ctx)
    report = client.get_json("/_lamina/cost", since=_since(since) if since else None)
    click.echo(f"{'FUNCTION':32} {'REQUESTS':>10} {'BILLED MS':>12} {'GB-S':>12} {'LIST $':>12}")
    for row in report["functions"]:
        click.echo(f"{row['function']:32} {row['requests']:>10} {row['billed_ms']:>12} "
                   f"{row['gb_seconds']:>12.4f} {row['dollars']:>12.6f}")  # fmt: skip
    total = report["total"]
    click.echo(f"{'TOTAL':32} {total['requests']:>10} {total['billed_ms']:>12} {total['gb_seconds']:>12.4f} "
               f"{total['dollars']:>12.6f}")  # fmt: skip
    click.echo(f"after the monthly free tier ({report['free_tier']['requests']:,} requests, "
               f"{report['free_tier']['gb_seconds']:,.0f} GB-s): ${total['dollars_after_free_tier']:.6f}")  # fmt: skip


def _since(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[-1:] in units and text[:-1].isdigit():
        return time.time() - int(text[:-1]) * units[text[-1]]
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter("use an ISO date (2026-11-01) or a duration (24h, 7d)", param_hint="--since") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@main.command()
@click.argument("name")
@click.pass_context
def rm(ctx: click.Context, name: str) -> None:
    """Delete a function."""
    client = _client(ctx)
    with aws_errors(client.endpoint):
        client.aws("lambda").delete_function(FunctionName=name)
    click.echo(f"deleted {name}")


main.add_command(streams)
main.add_command(concurrency)
main.add_command(iam)
main.add_command(events)
main.add_command(mappings)
main.add_command(publish)
main.add_command(versions)
main.add_command(alias)


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(sys.argv[0]))
