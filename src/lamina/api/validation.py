"""Input validation from the service model, worded as AWS services word it.

AWS's front ends check each request against the model's constraints and answer 400
`ValidationException` listing every violation:

    1 validation error detected: Value 'a b' at 'functionName' failed to satisfy constraint:
    Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?...

(messages seen from real Lambda: reference/aws-lambda.md §1 and, e.g., ryansb/acm-certs-
cloudformation#4, serverless-secrets#39). Paths are member names with a lower-case first letter,
joined by "." (`environment.variables`), list items as `records.1.member` (1-based). Sensitive
values are left out ("Value at 'environment.variables' ..."). Constraints checked: required,
enum, pattern (whole-value match, skipped when Python's `re` cannot compile the Java regex),
min/max as string length (UTF-16 units, as Java counts), numeric value, list/map size, no null
list/map members (`Value null at 'records.2.member'` for structures); blob
minimums but never blob maximums (payload limits belong to the service, with their own errors).
Model ranges wider than the service's real limits (Lambda's Timeout up to 5400) are the service
layer's to narrow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from botocore.model import OperationModel, Shape

from lamina.errors import ValidationError

Check = Callable[[Any, str, list[str]], None]  # (value, path, errors) → appends messages
_NOT_NULL = "Member must not be null"


def _java(value: Any) -> str:
    """A value as Java's toString shows it in Coral messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_java(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes | bytearray | memoryview):
        n = len(value)
        return f"java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]"
    return str(value)


def _utf16_len(text: str) -> int:
    # A lone surrogate is one unit, as in Java. The JSON decoders refuse them as malformed input
    # (jsonshape.py); "surrogatepass" keeps a string that reaches here another way from a 500.
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


class Validator:
    """Compiled checks for one service model's shapes; one instance per service."""

    def __init__(self) -> None:
        self._structures: dict[str, Check | None] = {}
        self._compiling: set[str] = set()
        self._patterns: dict[str, re.Pattern[str] | None] = {}

    def validate(self, operation: OperationModel, params: dict[str, Any]) -> None:
        shape = operation.input_shape
        if shape is None:
            return
        check = self.check_for(shape)
        if check is None:
            return
        errors: list[str] = []
        try:
            check(params, "", errors)
        except RecursionError:  # a recursive shape (DynamoDB's AttributeValue) nested past the stack
            raise ValidationError("1 validation error detected: Input is nested too deeply") from None
        if errors:
            n = len(errors)
            raise ValidationError(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors))

    def check_for(self, shape: Shape) -> Check | None:
        kind = shape.type_name
        if kind == "structure":
            if shape.name in self._compiling:  # a recursive shape refers to itself
                return _deferred(self._structures, shape.name)
            if shape.name in self._structures:
                return self._structures[shape.name]
            self._compiling.add(shape.name)
            try:
                check = self._structures[shape.name] = self._structure(shape)
            finally:
                self._compiling.discard(shape.name)
            return check
        if kind == "list":
            return self._collection(shape, shape.member, "list")
        if kind == "map":
            return self._collection(shape, shape.value, "map")
        rules = self._rules(shape)
        if not rules:
            return None
        sensitive = bool(shape.metadata.get("sensitive"))

        def check_scalar(value: Any, path: str, errors: list[str]) -> None:
            for ok, message in rules:
                if not ok(value):
                    errors.append(_failure(value, path, message, sensitive))

        return check_scalar

    # -- compilers ------------------------------------------------------------------------------

    def _structure(self, shape: Shape) -> Check | None:
        if shape.is_document_type:
            return None
        required = [(name, _camel(name)) for name in shape.required_members]
        members: dict[str, tuple[str, Check]] = {}
        for name, member in shape.members.items():
            check = self.check_for(member)
            if check is not None:
                members[name] = (_camel(name), check)
        if not required and not members:
            return None

        def check_structure(value: Any, path: str, errors: list[str]) -> None:
            prefix = path + "." if path else ""
            for name, label in required:
                if value.get(name) is None:
                    errors.append(f"Value null at '{prefix}{label}' failed to satisfy constraint: {_NOT_NULL}")
            for name, item in value.items():
                entry = members.get(name)
                if entry is not None and item is not None:
                    entry[1](item, prefix + entry[0], errors)

        return check_structure

    def _collection(self, shape: Shape, item_shape: Shape, kind: str) -> Check | None:
        size_rules = self._size_rules(shape)
        composite = item_shape.type_name in ("structure", "list", "map")
        item_rules = [] if composite else self._rules(item_shape)
        nested = self.check_for(item_shape) if composite else None
        key_rules = self._rules(shape.key) if kind == "map" else []
        # No early `return None`: every collection refuses null members, as Coral does (a handler
        # given `[None]` for a list of structures would crash into a 500).
        sensitive = bool(shape.metadata.get("sensitive"))
        item_desc = ", ".join([m for _, m in item_rules] + [_NOT_NULL])
        key_desc = ", ".join(m for _, m in key_rules)
        item_label = "Member must satisfy constraint" if kind == "list" else "Map value must satisfy constraint"

        def check_collection(value: Any, path: str, errors: list[str]) -> None:
            for ok, message in size_rules:
                if not ok(value):
                    errors.append(_failure(value, path, message, sensitive))
            items = value.values() if kind == "map" else value
            if key_rules and not all(ok(k) for k in value for ok, _ in key_rules):
                errors.append(_failure(value, path, f"Map keys must satisfy constraint: [{key_desc}]", sensitive))
            if composite:  # each null member named, as AWS does: "Value null at 'records.2.member'"
                pairs = value.items() if kind == "map" else enumerate(value, 1)
                for key, item in pairs:
                    if item is None:
                        errors.append(f"Value null at '{path}.{key}.member' failed to satisfy constraint: {_NOT_NULL}")
                    elif nested is not None:
                        nested(item, f"{path}.{key}.member", errors)
            elif None in items or not all(ok(v) for v in items for ok, _ in item_rules):
                errors.append(_failure(value, path, f"{item_label}: [{item_desc}]", sensitive))

        return check_collection

    def _size_rules(self, shape: Shape) -> list[tuple[Callable[[Any], bool], str]]:
        meta = shape.metadata
        rules: list[tuple[Callable[[Any], bool], str]] = []
        if "max" in meta:
            hi = meta["max"]
            rules.append((lambda v: len(v) <= hi, f"Member must have length less than or equal to {hi}"))
        if "min" in meta:
            lo = meta["min"]
            rules.append((lambda v: len(v) >= lo, f"Member must have length greater than or equal to {lo}"))
        return rules

    def _rules(self, shape: Shape) -> list[tuple[Callable[[Any], bool], str]]:
        """The scalar constraints of `shape`, in the order Coral lists them."""
        meta = shape.metadata
        kind = shape.type_name
        rules: list[tuple[Callable[[Any], bool], str]] = []
        if kind == "string":
            if "max" in meta:
                hi = meta["max"]
                rules.append((lambda v: _utf16_len(v) <= hi, f"Member must have length less than or equal to {hi}"))
            if "min" in meta:
                lo = meta["min"]
                rules.append((lambda v: _utf16_len(v) >= lo, f"Member must have length greater than or equal to {lo}"))
            pattern = meta.get("pattern")
            compiled = self._compile(pattern) if pattern else None
            if compiled is not None:
                rules.append(
                    (
                        lambda v: compiled.fullmatch(v) is not None,
                        f"Member must satisfy regular expression pattern: {pattern}",
                    )
                )
            enum = getattr(shape, "enum", None)
            if enum:
                allowed = frozenset(enum)
                rules.append((lambda v: v in allowed, f"Member must satisfy enum value set: [{', '.join(enum)}]"))
        elif kind in ("integer", "long", "float", "double"):
            if "max" in meta:
                hi = meta["max"]
                rules.append((lambda v: v <= hi, f"Member must have value less than or equal to {hi}"))
            if "min" in meta:
                lo = meta["min"]
                rules.append((lambda v: v >= lo, f"Member must have value greater than or equal to {lo}"))
        elif kind == "blob" and "min" in meta:
            lo = meta["min"]
            rules.append((lambda v: len(v) >= lo, f"Member must have length greater than or equal to {lo}"))
        return rules

    def _compile(self, pattern: str) -> re.Pattern[str] | None:
        if pattern not in self._patterns:
            try:
                # Java's \d, \w, \s are ASCII-only; so are Python's under re.ASCII.
                self._patterns[pattern] = re.compile(pattern, re.ASCII | re.DOTALL)
            except re.error:
                self._patterns[pattern] = None  # e.g. \p{L}: left to the service
        return self._patterns[pattern]


def _deferred(table: dict[str, Check | None], name: str) -> Check:
    """A check for a structure still being compiled (a recursive shape): looked up when run."""

    def check(value: Any, path: str, errors: list[str]) -> None:
        actual = table.get(name)
        if actual is not None:
            actual(value, path, errors)

    return check


def _failure(value: Any, path: str, message: str, sensitive: bool) -> str:
    shown = "Value" if sensitive else f"Value '{_java(value)}'"
    return f"{shown} at '{path}' failed to satisfy constraint: {message}"
