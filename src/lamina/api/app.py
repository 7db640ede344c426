"""The HTTP edge: a raw ASGI application that turns AWS API requests into handler calls.

One request, in order: plain routes by path prefix (`/_lamina/...`); otherwise find the service
(SigV4 scope, `X-Amz-Target`, or rest routes) and the operation; read the body under a size
ceiling (a `query` operation is named in the body: matched now, and an unsigned one finds its
service by its `Action`); authenticate (SigV4); reject operations with no handler (501
`NotImplemented`); parse params with the service's protocol codec; validate them against the model; call the handler;
serialise its output, or the `LaminaError` it raised, in the service's protocol. Any other
exception is logged and becomes a 500 `ServiceException`, never a traceback on the wire. Every
response carries the request id and goes out as one `http.response.start` + one
`http.response.body`.

Service models load once, at `register_service`, from botocore's bundled data.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.loaders import Loader, create_loader
from botocore.model import ServiceModel

from lamina import ids
from lamina.api.auth import Authenticator, CredentialLookup, parse_signature, payload_hash, static_credentials
from lamina.api.context import Handler, RequestContext, RouteHandler
from lamina.api.protocols import codec_for, protocol_of
from lamina.api.protocols.base import ProtocolCodec
from lamina.api.protocols.rest_json import RestJsonCodec
from lamina.api.routing import Matcher, RestRouter, RouteMatch, Router, detect_service, router_for
from lamina.api.validation import Validator
from lamina.api.wire import HttpRequest, HttpResponse
from lamina.config import CREATE_REQUEST_LIMIT, Settings
from lamina.errors import (
    ConfigError,
    IncompleteSignature,
    LaminaError,
    NotImplementedOperation,
    RequestTooLarge,
    ServiceError,
    UnknownOperation,
)

log = logging.getLogger(__name__)

# Bodies above this are hashed and parsed in a worker thread, so one 50 MB CreateFunction does
# not stall every warm invoke on the event loop.
OFFLOAD_BYTES = 1 << 20

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FastPath:
    """A hand-written wire path for one hot JSON operation (PutRecords: 500 records a call).

    `parse(body)` returns the params the model-driven parse and validation would produce and
    accept, or None for anything else (the generic path then answers, with its exact errors);
    `encode(output)` returns the response body `serialize_response` would, or None likewise.
    Each is tested against the generic path it stands in for."""

    parse: Callable[[bytes], dict[str, Any] | None]
    encode: Callable[[Mapping[str, Any]], bytes | None]


@dataclass(slots=True)
class Service:
    """A registered AWS service: its model, codec, router, validator and handlers."""

    name: str
    model: ServiceModel
    codec: ProtocolCodec
    router: Router
    validator: Validator
    handlers: dict[str, Handler]
    fast_paths: dict[str, FastPath]


@dataclass(frozen=True, slots=True)
class _PlainRoute:
    prefix: str
    methods: frozenset[str] | None
    handler: RouteHandler
    auth: bool


class _Disconnected(Exception):
    """The client went away before its body arrived."""


class EdgeApp:
    """The ASGI application. Register services and plain routes, then hand it to uvicorn."""

    def __init__(
        self,
        settings: Settings,
        credentials: CredentialLookup | None = None,
        *,
        max_body_bytes: int = CREATE_REQUEST_LIMIT,
        loader: Loader | None = None,
    ) -> None:
        """`credentials` maps an access key id to its secret; by default the one key pair in
        `settings`, or open access when settings have none."""
        if max_body_bytes < CREATE_REQUEST_LIMIT:
            raise ConfigError(f"max_body_bytes must allow CreateFunction's {CREATE_REQUEST_LIMIT} bytes")
        if credentials is None and settings.auth_required:
            credentials = static_credentials({settings.access_key_id: settings.secret_access_key})  # type: ignore[dict-item]
        self.settings = settings
        self.authenticator = Authenticator(credentials)
        self.max_body_bytes = max_body_bytes
        self.on_startup: list[Hook] = []
        self.on_shutdown: list[Hook] = []
        self._loader = loader or create_loader()
        self._services: dict[str, Service] = {}
        self._by_signing_name: dict[str, list[tuple[Service, Matcher]]] = {}
        self._by_target_prefix: dict[str, Service] = {}
        self._rest: list[tuple[Service, Matcher]] = []
        self._query: list[tuple[Service, Matcher]] = []
        self._routes: list[_PlainRoute] = []
        self._botocore_services: set[str] | None = None
        self._fallback = _FallbackCodec()

    # -- registration ---------------------------------------------------------------------------

    def load_model(self, name: str, api_version: str | None = None) -> ServiceModel:
        data = self._loader.load_service_model(name, "service-2", api_version)
        return ServiceModel(data, service_name=name)

    def register_service(
        self,
        name: str,
        handlers: Mapping[str, Handler],
        *,
        api_version: str | None = None,
        fast_paths: Mapping[str, FastPath] | None = None,
    ) -> Service:
        """Serve botocore service `name` (e.g. "lambda"), one async handler per operation name.

        Operations in the model without a handler answer 501 `NotImplemented`."""
        if name in self._services:
            raise ConfigError(f"service {name!r} is already registered")
        model = self.load_model(name, api_version)
        unknown = sorted(set(handlers) - set(model.operation_names))
        if unknown:
            raise ConfigError(f"{name} has no operations named {', '.join(unknown)}")
        protocol = protocol_of(model)
        if fast_paths and (protocol != "json" or set(fast_paths) - set(handlers)):
            raise ConfigError(f"{name}: fast paths are for operations of a json-protocol service that it serves")
        router, fast = router_for(model, protocol), dict(fast_paths or {})
        service = Service(name, model, codec_for(model), router, Validator(), dict(handlers), fast)
        self._services[name] = service
        self._by_signing_name.setdefault(model.signing_name, []).append((service, service.router.match))
        if protocol == "json":
            self._by_target_prefix[model.metadata["targetPrefix"]] = service
        elif isinstance(service.router, RestRouter):
            self._rest.append((service, service.router.match))
        else:
            self._query.append((service, service.router.match))
        return service

    def register_route(
        self, prefix: str, handler: RouteHandler, *, methods: Iterable[str] | None = ("GET",), auth: bool = False
    ) -> None:
        """Serve every path starting with `prefix` (longest prefix wins) with a plain handler.

        `auth=True` requires a valid SigV4 signature (header or presigned URL) when credentials
        are configured; otherwise the handler is open to anyone who can reach the port."""
        if not prefix.startswith("/"):
            raise ConfigError(f"route prefix must start with '/': {prefix!r}")
        allowed = frozenset(m.upper() for m in methods) if methods is not None else None
        self._routes.append(_PlainRoute(prefix, allowed, handler, auth))
        self._routes.sort(key=lambda r: -len(r.prefix))

    @property
    def services(self) -> Mapping[str, Service]:
        return self._services

    def authorize(self, request: HttpRequest) -> str | None:
        """Apply the SigV4 rules to a request a plain route serves (its body must be read):
        raises an `AuthError`, or returns the caller's access key (None when unsigned and open)."""
        return self.authenticator.authenticate(request, parse_signature(request))

    # -- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            raw = scope.get("raw_path")
            path = raw.decode("utf-8", "replace") if raw else scope["path"]
            headers: dict[str, str] = {}
            for key, value in scope["headers"]:
                name = key.decode("latin-1").lower()
                text = value.decode("latin-1")
                headers[name] = headers[name] + "," + text if name in headers else text
            request = HttpRequest(scope["method"], path, scope["query_string"].decode("utf-8", "replace"), headers)
            try:
                response = await self.handle(request, receive, scope.get("scheme", "http"), scope.get("server"))
            except _Disconnected:
                return
            out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
            out.append((b"content-length", str(len(response.body)).encode()))
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            await send({"type": "http.response.body", "body": response.body})
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.on_startup:
                        await hook()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    try:
                        await hook()
                    except Exception:
                        log.exception("shut-down hook failed")
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- one request ----------------------------------------------------------------------------

    async def handle(
        self,
        request: HttpRequest,
        receive: Receive | None = None,
        scheme: str = "http",
        server: tuple[str, int] | None = None,
    ) -> HttpResponse:
        """Serve one request. Without `receive`, `request.body` is taken as the whole body
        (in-process callers and tests)."""
        for route in self._routes:
            if request.raw_path.startswith(route.prefix):
                return await self._plain(route, request, receive)
        request_id = ids.request_id()
        codec: ProtocolCodec = self._fallback
        body_read = receive is None
        try:
            signature, malformed = None, None
            try:
                signature = parse_signature(request)
            except IncompleteSignature as exc:  # still answered in its service's error format
                malformed = exc
            scope_service = signature.service if signature is not None else _scope_service(request)
            service, route = detect_service(
                request, scope_service, self._by_signing_name, self._by_target_prefix, self._rest
            )
            if service is not None:
                codec = service.codec
                route = route or service.router.match(request)
            if receive is not None:
                request.body = await self._read_body(request, receive, route)
                body_read = True
            if route is None and service is not None and getattr(service.router, "reads_body", False):
                route = service.router.match(request)  # `query`: the Action is in the body
            elif service is None and scope_service is None:
                for candidate, match in self._query:  # unsigned `query` requests: by their Action
                    route = match(request)
                    if route is not None:
                        service, codec = candidate, candidate.codec
                        break
            if malformed is not None:
                raise malformed
            body_hash = None
            if signature is not None and self.authenticator.required and len(request.body) > OFFLOAD_BYTES:
                body_hash = await asyncio.to_thread(payload_hash, request.body)
            caller = self.authenticator.authenticate(request, signature, body_hash)
            if service is None:
                raise self._no_service(request, scope_service)
            if route is None:
                raise _no_route(service, request)
            ctx = RequestContext(
                request_id=request_id,
                service=service.name,
                operation=route.operation,
                region=signature.region if signature is not None else self.settings.region,
                account_id=self.settings.account_id,
                access_key_id=caller,
                headers=request.headers,
                base_url=_base_url(request, scheme, server),
            )
            response = await self._dispatch(service, route, request, ctx)
        except LaminaError as error:
            response = codec.serialize_error(error)
        except _Disconnected:
            raise
        except Exception:
            log.exception("request %s failed: %s %s", request_id, request.method, request.raw_path)
            response = codec.serialize_error(ServiceError("An internal error occurred in Lamina."))
        codec.finish(response, request_id)
        if not body_read:  # the client may still be sending: do not read it, hang up after
            response.headers["Connection"] = "close"
        return response

    async def _dispatch(
        self, service: Service, route: RouteMatch, request: HttpRequest, ctx: RequestContext
    ) -> HttpResponse:
        """Parse, validate, call the handler, serialise: the part after authentication."""
        handler = service.handlers.get(route.operation)
        if handler is None:
            raise NotImplementedOperation(f"Lamina does not implement {service.name}:{route.operation} yet.")
        operation = service.model.operation_model(route.operation)
        codec = service.codec
        fast = service.fast_paths.get(route.operation)
        params = fast.parse(request.body) if fast is not None and len(request.body) <= OFFLOAD_BYTES else None
        if params is None:
            if len(request.body) > OFFLOAD_BYTES:
                params = await asyncio.to_thread(codec.parse_request, operation, request, route.labels)
            else:
                params = codec.parse_request(operation, request, route.labels)
            service.validator.validate(operation, params)
        output = await handler(ctx, params)
        body = fast.encode(output or {}) if fast is not None else None
        if body is not None:
            response = HttpResponse(200, {"Content-Type": codec.content_type}, body)  # type: ignore[attr-defined]
        else:
            response = codec.serialize_response(operation, output or {})
        if ctx.response_headers:
            response.headers.update(ctx.response_headers)
        return response

    def _no_service(self, request: HttpRequest, scope_service: str | None) -> LaminaError:
        if scope_service is not None and scope_service in self._known_services():
            return NotImplementedOperation(f"Lamina does not implement the {scope_service} service yet.")
        return UnknownOperation(f"Lamina serves no operation at {request.method} {request.raw_path}")

    def _known_services(self) -> set[str]:
        if self._botocore_services is None:
            self._botocore_services = set(self._loader.list_available_services("service-2"))
        return self._botocore_services

    async def _read_body(self, request: HttpRequest, receive: Receive, route: RouteMatch | None) -> bytes:
        limit = self.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit, route)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        body = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > limit:
                raise _too_large(limit, route)
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, route)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _plain(self, route: _PlainRoute, request: HttpRequest, receive: Receive | None) -> HttpResponse:
        try:
            if route.methods is not None and request.method not in route.methods:
                return HttpResponse(405, {"Allow": ", ".join(sorted(route.methods))}, b"")
            if receive is not None:
                request.body = await self._read_body(request, receive, None)
            if route.auth:
                self.authorize(request)
            return await route.handler(request)
        except LaminaError as error:
            return self._fallback.serialize_error(error)
        except _Disconnected:
            raise
        except Exception:
            log.exception("plain route %s failed: %s %s", route.prefix, request.method, request.raw_path)
            return self._fallback.serialize_error(ServiceError("An internal error occurred in Lamina."))


class _FallbackCodec(RestJsonCodec):
    """Errors for requests no registered service claims: readable by both JSON parsers."""

    def __init__(self) -> None:
        super().__init__(ServiceModel({"metadata": {"protocol": "rest-json"}, "operations": {}, "shapes": {}}))

    def serialize_error(self, error: LaminaError) -> HttpResponse:
        response = super().serialize_error(error)
        document = json.loads(response.body)
        document["__type"] = error.code
        response.body = json.dumps(document, separators=(",", ":")).encode()
        return response


def _no_route(service: Service, request: HttpRequest) -> UnknownOperation:
    target = request.headers.get("x-amz-target")
    where = f"{request.method} {request.raw_path}" + (f" (X-Amz-Target: {target})" if target else "")
    return UnknownOperation(f"No {service.name} operation matches {where}")


def _too_large(limit: int, route: RouteMatch | None) -> RequestTooLarge:
    where = f" for the {route.operation} operation" if route is not None else ""
    return RequestTooLarge(f"Request must be smaller than {limit} bytes{where}")


def _scope_service(request: HttpRequest) -> str | None:
    """The credential scope's service from a malformed-but-present signature, if readable."""
    header = request.headers.get("authorization", "")
    start = header.find("Credential=")
    if start < 0:
        return None
    scope = header[start + 11 :].split(",", 1)[0].split("/")
    return scope[3] if len(scope) >= 4 else None


def _base_url(request: HttpRequest, scheme: str, server: tuple[str, int] | None) -> str:
    host = request.headers.get("host")
    if not host and server is not None:
        host = f"{server[0]}:{server[1]}"
    return f"{scheme}://{host or 'localhost'}"
