"""Which service and which operation a request is for.

Operations: rest protocols address them by `http.method` + `http.requestUri`
(`/2015-03-31/functions/{FunctionName}/invocations`, greedy `{Key+}`, literal query parts such as
`?List=ALL` or `?versioning`); `json` by `X-Amz-Target: <targetPrefix>.<Operation>`; `query` by
its `Action` parameter, in the form body or the query string.
`RestRouter` compiles every template of a service once, per method, into one alternation regex
ordered most specific first (fewest greedy labels, then most literal characters), matched against
the *raw* path so that an encoded "/" inside a label stays inside it; labels are percent-decoded
after the match (function names may be URL-encoded ARNs). Operations sharing one method and
path are told apart by their literal query parts, then by their required querystring and header
members (S3's UploadPart is PutObject plus `partNumber` and `uploadId`; CopyObject is PutObject plus
`x-amz-copy-source`), most demanding first.

Services: `detect_service` looks at the SigV4 credential scope's service name first, then the
`X-Amz-Target` prefix, then tries the routes of each registered rest service in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, unquote_to_bytes

from botocore.model import ServiceModel

from lamina.api.wire import HttpRequest

_LABEL = re.compile(r"\{([^}]+)\}")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class RouteMatch:
    operation: str
    labels: dict[str, str]  # percent-decoded


@dataclass(frozen=True, slots=True)
class _Template:
    operation: str
    labels: tuple[str, ...]  # label names in group order
    query: tuple[tuple[str, str | None], ...]  # literal query parts: (name, value or None)
    required: tuple[tuple[str, str], ...]  # required ("querystring" | "header", wire name) members
    deprecated: bool  # loses ties: S3's GetBucketLifecycle has GetBucketLifecycleConfiguration's URL

    @property
    def demands(self) -> tuple[int, int, bool]:
        return (len(self.query), len(self.required), not self.deprecated)

    def accepts(self, request: HttpRequest, *, shared: bool) -> bool:
        """Whether the request has this template's literal query parts, and, when other
        operations share the path, its required querystring and header members."""
        if not self.query and not (shared and self.required):
            return True
        pairs = request.query_pairs
        if not all(any(k == name and (value is None or v == value) for k, v in pairs) for name, value in self.query):
            return False
        if not shared:
            return True
        for location, name in self.required:
            if location == "header":
                if name not in request.headers:
                    return False
            elif not any(k == name for k, _ in pairs):
                return False
        return True


def _compile_path(template: str) -> tuple[str, tuple[str, ...], tuple[int, int, int]]:
    """Regex source (no groups of its own besides labels), label names, specificity key."""
    parts: list[str] = []
    labels: list[str] = []
    pos = literal = greedy = 0
    for m in _LABEL.finditer(template):
        text = template[pos : m.start()]
        parts.append(re.escape(text))
        literal += len(text)
        name = m.group(1)
        if name.endswith("+"):
            labels.append(name[:-1])
            parts.append("(.+)")
            greedy += 1
        else:
            labels.append(name)
            parts.append("([^/]+)")
        pos = m.end()
    tail = template[pos:]
    literal += len(tail)
    parts.append(re.escape(tail.rstrip("/")) + "/?")
    return "".join(parts), tuple(labels), (greedy, -literal, len(labels))


class RestRouter:
    """Maps (method, raw path, query) to an operation of one rest-protocol service."""

    def __init__(self, model: ServiceModel) -> None:
        # method -> path regex source -> templates (most query literals first)
        grouped: dict[str, dict[str, list[_Template]]] = {}
        keys: dict[str, tuple[int, int, int]] = {}
        for name in model.operation_names:
            operation = model.operation_model(name)
            http = operation.http
            path, _, query = http["requestUri"].partition("?")
            source, labels, key = _compile_path(path)
            literals = tuple(
                (k, v if sep else None) for k, sep, v in (part.partition("=") for part in query.split("&") if part)
            )
            shape = operation.input_shape
            required = tuple(
                (location, wire.lower() if location == "header" else wire)
                for m in (shape.required_members if shape is not None else ())
                for location, wire in [
                    (shape.members[m].serialization.get("location"), shape.members[m].serialization.get("name", m))
                ]
                if location in ("querystring", "header")
            )
            grouped.setdefault(http.get("method", "POST"), {}).setdefault(source, []).append(
                _Template(name, labels, literals, required, operation.deprecated)
            )
            keys[source] = key
        self._tables: dict[str, tuple[re.Pattern[str], list[tuple[int, list[_Template]]]]] = {}
        for method, by_source in grouped.items():
            ordered = sorted(by_source, key=lambda s: keys[s])
            alternatives: list[str] = []
            groups: list[tuple[int, list[_Template]]] = []
            index = 1
            for source in ordered:
                templates = sorted(by_source[source], key=lambda t: t.demands, reverse=True)
                alternatives.append(f"({source})")
                groups.append((index, templates))
                index += 1 + len(templates[0].labels)
            regex = re.compile("(?:" + "|".join(alternatives) + r")\Z")
            self._tables[method] = (regex, groups)

    def match(self, request: HttpRequest) -> RouteMatch | None:
        table = self._tables.get(request.method)
        if table is None:
            return None
        regex, groups = table
        m = regex.match(request.raw_path)
        if m is None:
            return None
        outer = m.lastindex
        for start, templates in groups:
            if start == outer:
                shared = len(templates) > 1
                for template in templates:
                    if template.accepts(request, shared=shared):
                        values = m.groups()[start : start + len(template.labels)]
                        return RouteMatch(
                            template.operation, dict(zip(template.labels, map(unquote, values), strict=True))
                        )
                return None
        return None  # pragma: no cover - lastindex always names an outer group


class TargetRouter:
    """Maps `X-Amz-Target: <targetPrefix>.<Operation>` to an operation (the `json` protocol)."""

    def __init__(self, model: ServiceModel) -> None:
        self.prefix = model.metadata.get("targetPrefix", "")
        self._operations = frozenset(model.operation_names)

    def match(self, request: HttpRequest) -> RouteMatch | None:
        prefix, _, operation = request.headers.get("x-amz-target", "").rpartition(".")
        if prefix == self.prefix and operation in self._operations:
            return RouteMatch(operation, {})
        return None


class QueryRouter:
    """Maps the `Action` parameter to an operation (the `query` protocol). The parameter may sit
    in the form body, so the app matches again once the body is read (`reads_body`)."""

    reads_body = True

    def __init__(self, model: ServiceModel) -> None:
        self._operations = frozenset(model.operation_names)

    def match(self, request: HttpRequest) -> RouteMatch | None:
        if request.method not in ("POST", "GET"):
            return None
        action = None
        if request.body and request.method == "POST":
            action = _form_value(request.body, b"Action")
        if action is None:
            action = next((v for k, v in request.query_pairs if k == "Action"), None)
        if action in self._operations:
            return RouteMatch(action, {})
        return None


def _form_value(body: bytes, name: bytes) -> str | None:
    """One field of a form body, without decoding the rest (bodies may be large)."""
    for part in body.split(b"&"):
        key, sep, value = part.partition(b"=")
        if sep and unquote_to_bytes(key.replace(b"+", b" ")) == name:
            return unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8", "replace")
    return None


Router = RestRouter | TargetRouter | QueryRouter


def router_for(model: ServiceModel, protocol: str) -> Router:
    if protocol == "json":
        return TargetRouter(model)
    if protocol == "query":
        return QueryRouter(model)
    return RestRouter(model)


Matcher = Callable[[HttpRequest], RouteMatch | None]


def detect_service(
    request: HttpRequest,
    scope_service: str | None,
    by_signing_name: Mapping[str, list[tuple[S, Matcher]]],
    by_target_prefix: Mapping[str, S],
    rest_services: Iterable[tuple[S, Matcher]],
) -> tuple[S | None, RouteMatch | None]:
    """The service a request is for, and its route when finding the service required one.

    Services sharing a signing name (dynamodb and dynamodbstreams, s3 and s3control) are told
    apart by whose router matches; if none does, the first registered one answers."""
    if scope_service is not None:
        candidates = by_signing_name.get(scope_service)
        if candidates:
            if len(candidates) == 1:
                return candidates[0][0], None
            for service, match in candidates:
                route = match(request)
                if route is not None:
                    return service, route
            return candidates[0][0], None
    target = request.headers.get("x-amz-target")
    if target is not None:
        found = by_target_prefix.get(target.rpartition(".")[0])
        if found is not None:
            return found, None
    for service, match in rest_services:
        route = match(request)
        if route is not None:
            return service, route
    return None, None
