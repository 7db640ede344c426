"""Frozen records <-> JSON, for stores that keep a record as one JSON column.

Decoding follows the dataclass's type hints, so a round trip restores the exact record:
StrEnums, MappingProxyType maps and tuples come back as such, not as str, dict and list. Keys
the class no longer has are ignored and missing keys take the field's default, so adding a
field with a default to FunctionConfig needs no migration.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from types import MappingProxyType
from typing import Any, TypeVar

R = TypeVar("R")


def to_json(record: object) -> str:
    """JSON of a flat dataclass whose fields are JSON scalars, tuples, enums or string maps."""
    values = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}  # type: ignore[arg-type]
    return json.dumps(values, default=_plain, separators=(",", ":"), ensure_ascii=False)


def from_json(cls: type[R], text: str) -> R:
    values = json.loads(text)
    hints = _hints(cls)
    known = {name: _decode(hint, values[name]) for name, hint in hints.items() if name in values}
    return cls(**known)


def _plain(value: object) -> object:
    if isinstance(value, MappingProxyType):
        return dict(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    return {name: hint for name, hint in typing.get_type_hints(cls).items() if name in fields}


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):  # `X | None`: decode as X
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode(hint, value)
    if hint is MappingProxyType or origin is MappingProxyType:
        return MappingProxyType(dict(value))
    if origin is tuple:
        return tuple(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    return value
