"""Function names and ARNs: every form Lambda accepts, resolved to (name, qualifier)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lamina.errors import InvalidParameterValue

# FunctionName in the Lambda model: bare name, partial ARN (acct:function:name) or full ARN,
# each with an optional :qualifier.
_FUNCTION_REF = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?"
)
_QUALIFIER = re.compile(r"\$LATEST|[a-zA-Z0-9_-]{1,128}")


@dataclass(frozen=True)
class FunctionRef:
    name: str
    qualifier: str | None = None
    account: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Arns:
    """Builds ARNs for one account and region."""

    region: str
    account_id: str

    def function(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn


def parse_function_ref(text: str, qualifier: str | None = None) -> FunctionRef:
    """Resolve a FunctionName parameter, reconciling a qualifier in the ARN with `Qualifier`."""
    match = _FUNCTION_REF.fullmatch(text or "")
    if not match:
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{text}' at 'functionName' failed "
            "to satisfy constraint: Member must satisfy regular expression pattern: "
            "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?"
            "(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
        )
    name = match["name"]
    if len(name) > 64:
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{name}' at 'functionName' failed "
            "to satisfy constraint: Member must have length less than or equal to 64"
        )
    derived = match["qualifier"]
    if qualifier is not None and qualifier != "":
        if not _QUALIFIER.fullmatch(qualifier):
            raise InvalidParameterValue(f"Invalid qualifier: {qualifier}")
        if derived is not None and derived != qualifier:
            raise InvalidParameterValue(
                "The derived qualifier from the function name does not match the specified qualifier."
            )
        derived = qualifier
    return FunctionRef(name=name, qualifier=derived, account=match["account"], region=match["region"])
