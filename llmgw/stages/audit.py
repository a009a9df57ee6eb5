"""Usage and audit log: cost the request and queue its row; never writes on the request path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llmgw.context import RequestContext
from llmgw.stages.base import Stage
from llmgw.stages.client_user import logged_user
from llmgw.usage import cost_usd


def request_row(ctx: RequestContext, user: str | None = None) -> dict[str, Any]:
    """The request's row; ``user``: the client's ``user`` field as it may be stored (client_user)."""
    key = ctx.key
    ms = 1000.0
    if not isinstance(user, str):  # a request refused for a malformed body still gets its row
        user = None
    return {
        "id": ctx.request_id,
        "created_at": datetime.now(UTC),
        "endpoint": ctx.endpoint,
        "api": ctx.api,
        "key_id": key.id if key else None,
        "team": key.team if key else None,
        "user": (key.user if key else None) or user,
        "route": ctx.route_name,
        "model_requested": ctx.model_requested,
        "model_used": ctx.model_name,
        "provider": ctx.provider_name,
        "stream": ctx.stream,
        "status": ctx.status,
        "http_status": ctx.http_status,
        "error_code": ctx.error_code,
        "error_message": (ctx.error_message or None) and ctx.error_message[:2000],
        "prompt_tokens": ctx.prompt_tokens,
        "completion_tokens": ctx.completion_tokens,
        "cached_tokens": ctx.cached_tokens,
        "cache_write_tokens": ctx.cache_write_tokens,
        "reasoning_tokens": ctx.reasoning_tokens,
        "usage_estimated": ctx.usage_estimated,
        "cost_usd": ctx.cost_usd,
        "attempts": ctx.attempts,
        "total_ms": ctx.elapsed_ms(),
        "ttft_ms": (ctx.first_token_at - ctx.started) * ms if ctx.first_token_at else None,
        "upstream_ms": (
            (ctx.upstream_ended - ctx.upstream_started) * ms if ctx.upstream_started and ctx.upstream_ended else None
        ),
        "prompt_id": (ctx.meta.get("prompt") or {}).get("id"),
        "prompt_commit": (ctx.meta.get("prompt") or {}).get("commit"),
        "experiment": (ctx.meta.get("experiment") or {}).get("name"),
        "experiment_arm": (ctx.meta.get("experiment") or {}).get("arm"),
        "meta": ctx.meta,
        "feedback_sha256": ctx.feedback_sha256,
    }


class AuditLog(Stage):
    name = "audit_log"

    def done(self, ctx: RequestContext) -> None:
        ctx.cost_usd = cost_usd(ctx.model, ctx.usage())
        if not ctx.error_code:  # a non-streamed answer's headers are built after this: tell the client what it cost
            ctx.response_headers["x-llmgw-cost-usd"] = f"{ctx.cost_usd:.8f}"
        # first: the row never depends on metrics
        self.gateway.writer.put("requests", request_row(ctx, logged_user(self.gateway, ctx)))
        self.gateway.metrics.observe(ctx)
