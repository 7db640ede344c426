"""Command-line values given inline or, as `@path`, read from a file (the AWS CLI's convention)."""

from __future__ import annotations

from pathlib import Path

import click


def inline_or_file(value: str, param_hint: str) -> bytes:
    """`value` itself, or the bytes of the file it names after `@`; a file error is a usage error."""
    if not value.startswith("@"):
        return value.encode()
    try:
        return Path(value[1:]).read_bytes()
    except OSError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None
