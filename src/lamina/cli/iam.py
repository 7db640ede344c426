"""`lamina iam roles`: the account's IAM roles, through boto3's iam client."""

from __future__ import annotations

from typing import Any

import click

from lamina.cli.client import Client, aws_errors


@click.group()
def iam() -> None:
    """IAM: roles."""


@iam.command("roles")
@click.option("--path-prefix", default=None, help="Only roles whose path starts with this (e.g. /service-role/).")
@click.pass_context
def roles(ctx: click.Context, path_prefix: str | None) -> None:
    """List roles with who may assume them and the policies they carry (inline ones marked)."""
    client: Client = ctx.find_root().obj
    with aws_errors(client.endpoint):
        api = client.aws("iam")
        pages = api.get_paginator("list_roles").paginate(**({"PathPrefix": path_prefix} if path_prefix else {}))
        found = [role for page in pages for role in page["Roles"]]
        if not found:
            click.echo("no roles")
            return
        rows = []
        for role in found:
            name = role["RoleName"]
            attached = [p["PolicyName"] for page in api.get_paginator("list_attached_role_policies").paginate(
                RoleName=name) for p in page["AttachedPolicies"]]  # fmt: skip
            inline = [f"{p} (inline)" for page in api.get_paginator("list_role_policies").paginate(
                RoleName=name) for p in page["PolicyNames"]]  # fmt: skip
            rows.append((name, ", ".join(principals(role.get("AssumeRolePolicyDocument"))) or "-",
                         ", ".join(attached + inline) or "-"))  # fmt: skip
    width = max(4, *(len(r[0]) for r in rows))
    trusts = max(6, *(len(r[1]) for r in rows))
    click.echo(f"{'NAME':{width}}  {'TRUSTS':{trusts}}  POLICIES")
    for name, trusted, policies in rows:
        click.echo(f"{name:{width}}  {trusted:{trusts}}  {policies}")


def principals(document: Any) -> list[str]:
    """Who a trust policy lets assume the role: service, account and federated principals of its
    Allow statements (boto3 hands the document over decoded)."""
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement", [])
    found: list[str] = []
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if principal == "*":
            values: list[Any] = ["*"]
        elif isinstance(principal, dict):
            values = [v for value in principal.values() for v in (value if isinstance(value, list) else [value])]
        else:
            values = []
        found += [str(v) for v in values if str(v) not in found]
    return found
