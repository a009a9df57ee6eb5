"""The HTTP surface: Litestar routes for the OpenAI and Anthropic APIs, health, metrics and administration.

Handlers stay thin: they read the body, hand a :class:`RequestContext` to the pipeline and turn
its answer into a response. Every error leaves in its API's error shape with the right status:
Anthropic's under ``/v1/messages`` and its ``count_tokens`` (:data:`ERROR_SHAPES`), OpenAI's everywhere else.
"""

from __future__ import annotations

import asyncio
import logging
import os
from importlib.metadata import version
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from llmgw import warmup
from llmgw.anthropic.render import error_body as anthropic_error
from llmgw.api import admin, embeddings, feedback, messages, models, responses
from llmgw.api.common import JSON, answer, gateway_of, json_response, open_context, pipeline_of, unless_client_leaves
from llmgw.api.limits import RequestLimits
from llmgw.api.openapi import SchemaPlugin
from llmgw.audit import api as audit_api
from llmgw.cache import api as cache_api
from llmgw.config import Config
from llmgw.errors import GatewayError
from llmgw.gateway import Gateway
from llmgw.pipeline import Pipeline
from llmgw.storage.db import UNAVAILABLE as DATABASE_UNAVAILABLE
from llmgw.storage.db import unavailable as database_unavailable
from llmgw.workers import WORKER_ENV

log = logging.getLogger("llmgw.app")


@post("/v1/chat/completions", status_code=200)
async def chat_completions(request: Request[Any, Any, Any]) -> Response[Any]:
    ctx = await open_context(request, "chat")
    return answer(ctx, await unless_client_leaves(request, pipeline_of(request).chat(ctx)))


#: ``/healthz``'s answer; under ``llmgw serve --workers N`` it names the worker (0..N-1) that answered
_HEALTHY = (
    b'{"status":"ok","worker":%d}' % int(os.environ[WORKER_ENV]) if os.environ.get(WORKER_ENV, "").isdigit()
    else b'{"status":"ok"}'
)  # fmt: skip


@get("/healthz", sync_to_thread=False)
def healthz() -> Response[bytes]:
    """Liveness: the process answers."""
    return Response(_HEALTHY, media_type=JSON)


@get("/readyz")
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Readiness: every provider can take traffic, the storage writer runs and keeps up, Redis answers."""
    checks = await gateway_of(request).readiness()
    ok = all(checks.values())
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks}, {}, 200 if ok else 503)


@get("/metrics")
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway = gateway_of(request)
    dead_letters = await asyncio.to_thread(gateway.writer.dead_letter_counts)  # reads files: off the loop
    return Response(
        gateway.metrics.render(gateway.writer.pending(), dead_letters, gateway.balancer.circuits()),
        media_type="text/plain; version=0.0.4",  # Litestar adds "; charset=utf-8" to text/*
    )


#: paths whose errors take another API's shape than OpenAI's
ERROR_SHAPES = {"/v1/messages": anthropic_error, "/v1/messages/count_tokens": anthropic_error}


def error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Every failure as ``{"error": {...}}``; unexpected ones are logged and become a 500."""
    if isinstance(exc, GatewayError):
        error = exc
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(status, "http_error")
        # Litestar's own headers matter: a 405 carries ``Allow`` (RFC 9110)
        headers = {k: v for k, v in (exc.headers or {}).items() if isinstance(v, str)}
        error = GatewayError(str(exc.detail), status=status, code=code, type="invalid_request_error", headers=headers)
        if status >= 500:
            error.type = "server_error"
    elif isinstance(exc, DATABASE_UNAVAILABLE):
        error = database_unavailable(exc, f"{request.method} {request.url.path}")
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        error = GatewayError("internal error", status=HTTP_500_INTERNAL_SERVER_ERROR)
    headers = {**getattr(request.state, "response_headers", {}), **error.headers}
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        headers["x-llmgw-request-id"] = request_id
    shape = ERROR_SHAPES.get(request.url.path.rstrip("/"))
    if shape is not None:
        return json_response(shape(error, request_id), headers, error.status)
    return Response(error.json(), status_code=error.status, media_type=JSON, headers=headers)


def create_app(config: Config, gateway: Gateway | None = None) -> Litestar:
    gw = gateway or Gateway(config)

    async def on_startup(app: Litestar) -> None:
        if not gw.started:
            await gw.start(warmup.loaders(gw))
        log.info("%s", admin.admin_access_hint(gw.config))

    async def on_shutdown(app: Litestar) -> None:
        await gw.stop()

    app = Litestar(
        route_handlers=[
            chat_completions,
            responses.create_response,
            messages.create_message,
            messages.count_tokens,
            models.list_models,
            models.get_model,
            embeddings.create_embeddings,
            feedback.create_feedback,
            healthz,
            readyz,
            metrics,
            *admin.handlers,
            *audit_api.handlers,
            *cache_api.handlers,
        ],
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        openapi_config=OpenAPIConfig(title="llmgw", version=version("llmgw"), render_plugins=[SchemaPlugin()]),
        middleware=[RequestLimits(config.server.max_headers, config.server.max_header_bytes)],
        exception_handlers={Exception: error_handler},
        request_max_body_size=config.server.max_body_bytes,
        logging_config=None,  # the CLI configures logging; a library must not replace root handlers
        debug=False,
    )
    app.state.gateway = gw
    app.state.pipeline = Pipeline(gw)
    return app
