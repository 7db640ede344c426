"""Alias rules: what an alias may point at, and the weighted choice made on every invoke."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping

from lamina.errors import InvalidParameterValue
from lamina.model.function import LATEST, AliasRecord

_ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}")
_VERSION = re.compile(r"[0-9]+")


def is_version(qualifier: str) -> bool:
    return bool(_VERSION.fullmatch(qualifier))


def is_alias(qualifier: str | None) -> bool:
    return qualifier is not None and qualifier != LATEST and not is_version(qualifier)


def check_alias_name(name: str) -> str:
    if not _ALIAS_NAME.fullmatch(name or ""):
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
        )
    return name


def check_routing(primary: str, weights: Mapping[str, float]) -> dict[str, float]:
    """AdditionalVersionWeights: at most one other published version, weight in [0, 1]."""
    routing = {str(version): float(weight) for version, weight in weights.items()}
    if not routing:
        return routing
    if len(routing) > 1:
        raise InvalidParameterValue("Number of items in AdditionalVersionWeights cannot be greater than 1")
    if primary == LATEST:
        raise InvalidParameterValue("$LATEST is not supported for an alias pointing to more than 1 version")
    for version, weight in routing.items():
        if not is_version(version):
            raise InvalidParameterValue(f"Invalid function version {version} in AdditionalVersionWeights")
        if version == primary:
            raise InvalidParameterValue(
                f"Invalid function version {version}. Function version {version} is already included in "
                "routing configuration."
            )
        if not 0.0 <= weight <= 1.0:
            raise InvalidParameterValue(f"Invalid weight {weight} for version {version}: it must be between 0 and 1")
    return routing


def pick_version(alias: AliasRecord, rng: random.Random) -> str:
    """The version one invoke runs: the additional version with its weight, else the primary."""
    draw = rng.random()
    for version, weight in alias.routing.items():
        if draw < weight:
            return version
        draw -= weight
    return alias.function_version
