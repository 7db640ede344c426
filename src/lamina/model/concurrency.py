"""Concurrency settings of a function: the records the control plane stores."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProvisionedConfig:
    """A provisioned concurrency configuration: `requested` environments kept initialised for a
    published version or an alias (`qualifier`) of `function`. What is allocated is runtime
    state (invoke/provisioning.py), not stored."""

    function: str
    qualifier: str
    requested: int
    last_modified: str  # Lambda's timestamp string, e.g. 2020-04-10T19:06:32.563+0000
