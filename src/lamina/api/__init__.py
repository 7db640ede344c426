"""The HTTP edge: AWS wire protocols in, plain handler calls out (decision 0020).

- `app.EdgeApp`      the ASGI application; `register_service`, `register_route`
- `server`           uvicorn glue: `serve`, `BackgroundServer`
- `context`          `RequestContext` and the handler contract
- `auth`             SigV4 verification
- `routing`          service detection and operation routing from the models' request URIs
- `validation`       model constraints with AWS's ValidationException wording
- `protocols/`       one codec per AWS protocol (rest-json, json)
- `services/`        one module per AWS service, mapping params onto the core
- `wire`             `HttpRequest` / `HttpResponse`
"""
