"""`lamina concurrency NAME`: a function's reserved and provisioned concurrency, through boto3."""

from __future__ import annotations

from typing import Any

import click

from lamina.cli.client import Client, aws_errors


@click.command()
@click.argument("name")
@click.option("--reserved", type=click.IntRange(0), default=None, help="Reserve N concurrent executions (0 throttles).")
@click.option("--clear", is_flag=True, help="Remove the reservation: back to the account's shared pool.")
@click.option(
    "--provisioned", type=click.IntRange(0), default=None, help="Keep N environments initialised (0 removes)."
)
@click.option("--qualifier", default=None, help="The published version or alias --provisioned applies to.")
@click.pass_context
def concurrency(
    ctx: click.Context, name: str, reserved: int | None, clear: bool, provisioned: int | None, qualifier: str | None
) -> None:
    """Show or set a function's concurrency: reserved (--reserved N | --clear) and provisioned
    (--provisioned N --qualifier VERSION_OR_ALIAS). With no option, show the current settings."""
    if reserved is not None and clear:
        raise click.UsageError("--reserved and --clear exclude each other")
    if (provisioned is None) != (qualifier is None):
        raise click.UsageError("--provisioned and --qualifier go together")
    client: Client = ctx.find_root().obj
    with aws_errors(client.endpoint):
        lam = client.aws("lambda")
        if reserved is not None:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
        elif clear:
            lam.delete_function_concurrency(FunctionName=name)
        if provisioned:
            lam.put_provisioned_concurrency_config(
                FunctionName=name, Qualifier=qualifier, ProvisionedConcurrentExecutions=provisioned
            )
        elif provisioned == 0:
            lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        _show(lam, name)


def _show(lam: Any, name: str) -> None:
    current = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    unreserved = lam.get_account_settings()["AccountLimit"].get("UnreservedConcurrentExecutions")
    if current is None:
        click.echo(f"reserved: none (shares the account's unreserved pool of {unreserved})")
    else:
        click.echo(f"reserved: {current}" + (" (every invoke is throttled)" if current == 0 else ""))
    pages = lam.get_paginator("list_provisioned_concurrency_configs").paginate(FunctionName=name)
    configs = [c for page in pages for c in page["ProvisionedConcurrencyConfigs"]]
    if not configs:
        click.echo("provisioned: none")
        return
    click.echo(f"{'QUALIFIER':16} {'REQUESTED':>9} {'ALLOCATED':>9} {'STATUS':12} LAST MODIFIED")
    for c in configs:
        reason = f"  {c['StatusReason']}" if c.get("StatusReason") else ""
        click.echo(
            f"{c['FunctionArn'].rsplit(':', 1)[1]:16} {c['RequestedProvisionedConcurrentExecutions']:>9} "
            f"{c['AllocatedProvisionedConcurrentExecutions']:>9} {c['Status']:12} {c['LastModified']}{reason}"
        )
