"""The HTTP face of ingest: POST /v1/events (docs/api.md). A plain Starlette app, so the same
code runs under Ray Serve (deployments/ingest.py) and under uvicorn (the benchmark baseline)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pydantic_core
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from config.settings import Settings
from deployments.errors import handle_nova_error
from ingest.errors import InvalidRequest, NovaError, PayloadTooLarge
from ingest.service import IngestResult, IngestService

# Called once per request with the result (None if the request failed), status and seconds.
Observer = Callable[[IngestResult | None, int, float], None]

# sendBeacon posts text/plain (the only type it can send without a CORS preflight).
_JSON_TYPES = ("application/json", "text/plain")


def build_ingest_app(
    settings: Settings, service: IngestService, observe: Observer | None = None
) -> ASGIApp:
    async def post_events(request: Request) -> Response:
        started = time.perf_counter()
        result: IngestResult | None = None
        response: Response
        try:
            body = await _read_json(request, settings.max_body_bytes)
            key = request.headers.get("x-nova-key") or request.query_params.get("key")
            result = await service.ingest(body, key)
            response = JSONResponse(result.to_json(), status_code=202)
        except NovaError as exc:
            response = await handle_nova_error(request, exc)
        if observe is not None:
            observe(result, response.status_code, time.perf_counter() - started)
        return response

    app = Starlette(
        routes=[Route("/", post_events, methods=["POST"])],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_allow_origins,
                allow_methods=["POST"],
                allow_headers=["Content-Type", "X-Nova-Key"],
                # Without this a browser hides Retry-After from the pixel on 429/503.
                expose_headers=["Retry-After"],
                max_age=86400,
            )
        ],
        exception_handlers={NovaError: handle_nova_error},
    )
    return mounted_at_root(app)


def mounted_at_root(app: ASGIApp) -> ASGIApp:
    """Serve mounts the app at its route prefix (root_path=/v1/events). A request for exactly
    the prefix leaves an empty route path, which Starlette would answer with a 307 redirect
    to the trailing slash; a pixel's POST must not bounce, so serve it as "/"."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == scope.get("root_path", "") != "":
            scope = {**scope, "path": scope["path"] + "/"}
        await app(scope, receive, send)

    return wrapper


async def _read_json(request: Request, limit: int) -> object:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in _JSON_TYPES:
        raise InvalidRequest(f"content type {content_type!r}: send application/json or text/plain")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body over the limit of {limit} bytes")
        chunks.append(chunk)
    try:
        return pydantic_core.from_json(b"".join(chunks))
    except ValueError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None
