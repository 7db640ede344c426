"""`lamina publish`, `lamina versions`, `lamina alias`: versions and aliases on a running Lamina."""

from __future__ import annotations

from typing import Any

import click

from lamina.cli.client import Client, aws_errors


def _lambda(ctx: click.Context) -> tuple[Client, Any]:
    client: Client = ctx.find_root().obj
    return client, client.aws("lambda")


def _weights(pairs: tuple[str, ...]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for pair in pairs:
        version, sep, weight = pair.partition("=")
        try:
            weights[version] = float(weight)
        except ValueError:
            sep = ""
        if not sep or not version.isdigit():
            raise click.BadParameter(f"expected VERSION=WEIGHT such as 2=0.1, got {pair!r}", param_hint="--weight")
    return weights


def _describe(alias: dict[str, Any]) -> str:
    weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
    primary = 1 - sum(weights.values())
    routes = f"{alias['FunctionVersion']} ({primary:.0%})" if weights else alias["FunctionVersion"]
    for version, weight in weights.items():
        routes += f" + {version} ({weight:.0%})"
    return f"{alias['Name']:20} → {routes}"


@click.command()
@click.argument("name")
@click.option("--description", default=None, help="The version's description [the function's].")
@click.pass_context
def publish(ctx: click.Context, name: str, description: str | None) -> None:
    """Publish $LATEST as a new immutable version (none when nothing changed since the last one)."""
    client, lam = _lambda(ctx)
    kwargs = {"Description": description} if description is not None else {}
    with aws_errors(client.endpoint):
        version = lam.publish_version(FunctionName=name, **kwargs)
    click.echo(f"{name}: version {version['Version']} (CodeSha256 {version['CodeSha256']})")


@click.command()
@click.argument("name")
@click.pass_context
def versions(ctx: click.Context, name: str) -> None:
    """List a function's versions and the aliases pointing at them."""
    client, lam = _lambda(ctx)
    with aws_errors(client.endpoint):
        listed = [v for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name)
                  for v in page["Versions"]]  # fmt: skip
        aliases = [a for page in lam.get_paginator("list_aliases").paginate(FunctionName=name) for a in page["Aliases"]]
    click.echo(f"{'VERSION':8} {'MEMORY':>6} {'TIMEOUT':>7}  {'LAST MODIFIED':28} {'ALIASES':20} DESCRIPTION")
    for v in listed:
        names = ",".join(a["Name"] for a in aliases if v["Version"] == a["FunctionVersion"]
                         or v["Version"] in a.get("RoutingConfig", {}).get("AdditionalVersionWeights", {}))  # fmt: skip
        click.echo(f"{v['Version']:8} {v['MemorySize']:>6} {v['Timeout']:>7}  {v['LastModified']:28} "
                   f"{names or '-':20} {v.get('Description', '')}")  # fmt: skip


@click.group()
def alias() -> None:
    """Aliases: ls, create, update, rm (with weighted routing between two versions)."""


@alias.command("ls")
@click.argument("name")
@click.pass_context
def alias_ls(ctx: click.Context, name: str) -> None:
    """List a function's aliases and where their traffic goes."""
    client, lam = _lambda(ctx)
    with aws_errors(client.endpoint):
        aliases = [a for page in lam.get_paginator("list_aliases").paginate(FunctionName=name) for a in page["Aliases"]]
    if not aliases:
        click.echo(f"{name} has no aliases: `lamina alias create {name} ALIAS VERSION` makes one")
    for a in aliases:
        click.echo(_describe(a))


@alias.command("create")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version")
@click.option("--weight", "weights", multiple=True, metavar="VERSION=WEIGHT",
              help="Send this share (0-1) of the traffic to another version, e.g. 2=0.1.")  # fmt: skip
@click.option("--description", default="")
@click.pass_context
def alias_create(
    ctx: click.Context, name: str, alias_name: str, version: str, weights: tuple[str, ...], description: str
) -> None:
    """Point a new alias at VERSION."""
    client, lam = _lambda(ctx)
    routing = {"RoutingConfig": {"AdditionalVersionWeights": _weights(weights)}} if weights else {}
    with aws_errors(client.endpoint):
        created = lam.create_alias(
            FunctionName=name, Name=alias_name, FunctionVersion=version, Description=description, **routing
        )
    click.echo(_describe(created))


@alias.command("update")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--version", default=None, help="Move the alias to this version.")
@click.option("--weight", "weights", multiple=True, metavar="VERSION=WEIGHT", help="Weighted routing, e.g. 2=0.1.")
@click.option("--no-weights", is_flag=True, help="Send all traffic to the alias's version.")
@click.pass_context
def alias_update(
    ctx: click.Context, name: str, alias_name: str, version: str | None, weights: tuple[str, ...], no_weights: bool
) -> None:
    """Move an alias or change its weights."""
    if weights and no_weights:
        raise click.UsageError("--weight and --no-weights exclude each other")
    client, lam = _lambda(ctx)
    kwargs: dict[str, Any] = {}
    if version is not None:
        kwargs["FunctionVersion"] = version
    if weights or no_weights:
        kwargs["RoutingConfig"] = {"AdditionalVersionWeights": _weights(weights)}
    with aws_errors(client.endpoint):
        updated = lam.update_alias(FunctionName=name, Name=alias_name, **kwargs)
    click.echo(_describe(updated))


@alias.command("rm")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.pass_context
def alias_rm(ctx: click.Context, name: str, alias_name: str) -> None:
    """Delete an alias (its versions stay)."""
    client, lam = _lambda(ctx)
    with aws_errors(client.endpoint):
        lam.delete_alias(FunctionName=name, Name=alias_name)
    click.echo(f"deleted alias {alias_name} of {name}")
