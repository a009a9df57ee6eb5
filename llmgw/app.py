"""The HTTP surface: the OpenAI and Anthropic APIs, health, metrics and administration.

A POST to one of the chat pipeline's APIs (chat completions, responses, messages) is answered by
:mod:`llmgw.api.front` before Litestar routes it (:class:`GatewayApp`; the module says why); every
other route is an ordinary Litestar handler, thin: it reads the body, hands a
:class:`RequestContext` to the pipeline and turns its answer into a response. Every error leaves
in its API's error shape with the right status: Anthropic's under ``/v1/messages`` and its
``count_tokens`` (:data:`llmgw.api.common.ERROR_SHAPES`), OpenAI's everywhere else.
"""

from __future__ import annotations

import asyncio
import logging
import os
from importlib.metadata import version
from typing import Any, cast

from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.types import HTTPScope, Receive, Scope, Send

from llmgw import warmup
from llmgw.api import admin, embeddings, feedback, messages, models, responses
from llmgw.api.common import JSON, as_gateway_error, error_reply, gateway_of, json_response, not_reached
from llmgw.api.front import Front, route_path
from llmgw.api.limits import RequestLimits
from llmgw.api.openapi import SchemaPlugin
from llmgw.audit import api as audit_api
from llmgw.cache import api as cache_api
from llmgw.config import Config
from llmgw.errors import GatewayError
from llmgw.gateway import Gateway
from llmgw.pipeline import Pipeline
from llmgw.workers import WORKER_ENV

log = logging.getLogger("llmgw.app")


@post("/v1/chat/completions", status_code=200)
async def chat_completions(request: Request[Any, Any, Any]) -> Response[Any]:
    """Declared for the OpenAPI document and the 405 of other methods: a POST is answered by
    :mod:`llmgw.api.front` before Litestar routes it."""
    raise not_reached(request)


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


def error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Every failure on a Litestar route as ``{"error": {...}}`` in its API's shape (as
    :mod:`llmgw.api.front` answers its own); unexpected ones are logged and become a 500."""
    path = request.url.path
    if isinstance(exc, HTTPException):
        status = exc.status_code
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(status, "http_error")
        # Litestar's own headers matter: a 405 carries ``Allow`` (RFC 9110)
        headers = {k: v for k, v in (exc.headers or {}).items() if isinstance(v, str)}
        error = GatewayError(str(exc.detail), status=status, code=code, type="invalid_request_error", headers=headers)
        if status >= 500:
            error.type = "server_error"
    else:
        error = as_gateway_error(exc, f"{request.method} {path}")
    state = request.state
    shape_path = route_path(request.scope)  # as routed: under a root path, with "//"
    request_id, pipeline_headers = getattr(state, "request_id", None), getattr(state, "response_headers", {})
    body, headers = error_reply(error, shape_path, request_id, pipeline_headers)
    return Response(body, status_code=error.status, media_type=JSON, headers=headers)


class GatewayApp(Litestar):
    """Litestar, with the chat pipeline's POSTs handed to :class:`~llmgw.api.front.Front` first."""

    front: Front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] == "http" and scope["method"] == "POST":  # type: ignore[typeddict-item]
            http = cast("HTTPScope", scope)
            endpoint = self.front.endpoint(http)
            if endpoint is not None:
                await self.front(endpoint, http, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(config: Config, gateway: Gateway | None = None) -> GatewayApp:
    gw = gateway or Gateway(config)

    async def on_startup(app: Litestar) -> None:
        if not gw.started:
            await gw.start(warmup.loaders(gw))
        log.info("%s", admin.admin_access_hint(gw.config))

    async def on_shutdown(app: Litestar) -> None:
        await gw.stop()

    limits = RequestLimits(config.server.max_headers, config.server.max_header_bytes)
    app = GatewayApp(
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
        middleware=[limits],
        exception_handlers={Exception: error_handler},
        request_max_body_size=config.server.max_body_bytes,
        logging_config=None,  # the CLI configures logging; a library must not replace root handlers
        debug=False,
    )
    app.state.gateway = gw
    app.state.pipeline = pipeline = Pipeline(gw)
    app.front = Front(gw, pipeline, limits)
    return app
