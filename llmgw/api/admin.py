"""Admin API (admin key only): virtual keys, recent requests and usage.

One rule for every ``/admin/*`` route (this module's, the guardrail log's, the cache's): a caller
who presented no admin-capable credentials at all (no key, or served as ``anonymous``) gets 401
``missing_api_key``; a caller with a valid key that is not the admin key gets 403
``admin_required``. Anonymous access is for the OpenAI API only, never a reason to answer 403.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from sqlmodel import Session, col, select

from llmgw.api.common import client_of, gateway_of, json_response, read_body_as
from llmgw.config import Config
from llmgw.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied, clip
from llmgw.keys import KeyInfo
from llmgw.schemas import NoNul
from llmgw.stages.auth import ANONYMOUS_ID, authenticate, presented_key
from llmgw.storage.models import ApiKey, RequestRow, UsageRow

if TYPE_CHECKING:
    from llmgw.gateway import Gateway


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    """A key to create; the bounds are those of the ``api_keys`` columns."""

    name: Annotated[str, NoNul, msgspec.Meta(min_length=1, max_length=200)]
    team: Annotated[str, NoNul, msgspec.Meta(max_length=200)] | None = None
    user: Annotated[str, NoNul, msgspec.Meta(max_length=200)] | None = None
    #: null: every model (route); an empty list is refused rather than read as "every" (a script's unset
    #: variable must not grant everything)
    models: Annotated[list[str], msgspec.Meta(min_length=1)] | None = None
    routes: Annotated[list[str], msgspec.Meta(min_length=1)] | None = None
    #: tool names (shell-style patterns) the key's requests may offer; null or ``["*"]``: any
    tools: list[Annotated[str, NoNul, msgspec.Meta(min_length=1, max_length=200)]] | None = None


DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: every admin answer (a new key's secret, keys, requests, usage) is for the admin's eyes only: never
#: kept by a browser's or a proxy's cache, and never sniffed as anything but JSON (it holds client text)
ADMIN_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


def key_view(row: ApiKey) -> dict[str, Any]:
    """A key as listed: never its hash."""
    return {
        "id": row.id, "name": row.name, "prefix": row.prefix, "team": row.team, "user": row.user,
        "models": row.models, "routes": row.routes, "tools": row.tools if row.tools is not None else ["*"],
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }  # fmt: skip


def missing_admin_key(config: Config) -> str:
    """What a caller without the admin key must do: send it, or first have one configured."""
    if not config.auth.admin_key:
        return (
            "the admin API needs the admin key, and none is configured: restart the gateway with "
            "LLMGW_ADMIN_KEY set (the embedded defaults read it) or set auth.admin_key in the config"
        )
    return "the admin API needs the admin key: send 'Authorization: Bearer <admin key>'"


def admin_access_hint(config: Config) -> str:
    """Logged at start-up: where the admin API and the review page are, and how to get in."""
    base = f"http://{config.server.host}:{config.server.port}"
    where = f"admin API under {base}/admin/, guardrail review page {base}/admin/review"
    if not config.auth.admin_key:
        return (
            f"{where}: closed, no admin key is configured. To open them, restart with "
            "LLMGW_ADMIN_KEY=<a long random secret> (the embedded defaults read it; in a config of your own: "
            "auth.admin_key: ${LLMGW_ADMIN_KEY}), then send 'Authorization: Bearer <key>' or sign in on the page"
        )
    return f"{where}: send 'Authorization: Bearer <admin key>' (auth.admin_key) or sign in on the page with it"


async def require_admin(request: Request[Any, Any, Any]) -> KeyInfo:
    gateway = gateway_of(request)
    headers = dict(request.headers)
    key = await authenticate(gateway, headers, client_of(request)) if presented_key(headers) is not None else None
    if key is not None and key.admin:
        return key
    if key is not None and key.id == ANONYMOUS_ID:
        # a key was sent and served as anonymous (allow_anonymous): a wrong guess at the admin key,
        # counted as authenticate counts one when anonymous calls are off
        gateway.auth_failures.record(client_of(request))
    if key is None or key.id == ANONYMOUS_ID:  # no credentials at all, anonymous access on or off
        raise AuthenticationFailed(missing_admin_key(gateway.config), code="missing_api_key")
    raise PermissionDenied("the admin API needs the admin key, not an API key", code="admin_required")


@post("/admin/keys", status_code=201)
async def create_key(request: Request[Any, Any, Any]) -> Response[bytes]:
    await require_admin(request)
    gateway = gateway_of(request)
    spec, _ = await read_body_as(request, NewKey, "invalid key spec")
    unknown = [m for m in spec.models or [] if m != "*" and m not in gateway.config.models]
    if unknown:
        raise InvalidRequest(f"unknown model {clip(unknown[0])}", param="models", code="invalid_value")
    unknown = [r for r in spec.routes or [] if r != "*" and r not in gateway.config.routes]
    if unknown:
        raise InvalidRequest(f"unknown route {clip(unknown[0])}", param="routes", code="invalid_value")
    secret, row = await asyncio.to_thread(
        gateway.keys.create,
        spec.name,
        team=spec.team,
        user=spec.user,
        models=spec.models,
        routes=spec.routes,
        tools=spec.tools,
    )
    return json_response({**key_view(row), "key": secret}, ADMIN_HEADERS, 201)


@get("/admin/keys")
async def list_keys(request: Request[Any, Any, Any], include_revoked: bool = False) -> Response[bytes]:
    await require_admin(request)
    rows = await asyncio.to_thread(gateway_of(request).keys.list, include_revoked)
    return json_response({"data": [key_view(r) for r in rows]}, ADMIN_HEADERS)


@delete("/admin/keys/{key_id:str}", status_code=200)
async def revoke_key(request: Request[Any, Any, Any], key_id: str) -> Response[bytes]:
    await require_admin(request)
    row = await asyncio.to_thread(gateway_of(request).keys.revoke, key_id)
    if row is None:
        raise NotFound(f"no key {clip(key_id)}", code="key_not_found")
    return json_response(key_view(row), ADMIN_HEADERS)


def _recent_requests(gateway: Gateway, limit: int, key_id: str | None) -> list[dict[str, Any]]:
    with Session(gateway.engine) as session:
        query = select(RequestRow).order_by(col(RequestRow.created_at).desc()).limit(limit)
        if key_id:
            query = query.where(RequestRow.key_id == key_id)
        return [row.model_dump(mode="json") for row in session.exec(query)]


@get("/admin/requests")
async def recent_requests(
    request: Request[Any, Any, Any], limit: int = 100, key_id: str | None = None
) -> Response[bytes]:
    await require_admin(request)
    if key_id is not None and len(key_id) > 40:
        raise InvalidRequest("key_id: at most 40 characters", param="key_id", code="invalid_value")
    rows = await asyncio.to_thread(_recent_requests, gateway_of(request), min(max(limit, 1), 1000), key_id)
    return json_response({"data": rows}, ADMIN_HEADERS)


def _usage(gateway: Gateway, day: str | None) -> list[dict[str, Any]]:
    with Session(gateway.engine) as session:
        query = select(UsageRow).order_by(col(UsageRow.day).desc())
        if day:
            query = query.where(UsageRow.day == day)
        return [row.model_dump(mode="json") for row in session.exec(query.limit(1000))]


@get("/admin/usage")
async def usage(request: Request[Any, Any, Any], day: str | None = None) -> Response[bytes]:
    await require_admin(request)
    if day and not DAY.fullmatch(day):
        raise InvalidRequest("day must be a date, YYYY-MM-DD", param="day", code="invalid_value")
    return json_response({"data": await asyncio.to_thread(_usage, gateway_of(request), day)}, ADMIN_HEADERS)


handlers = [create_key, list_keys, revoke_key, recent_requests, usage]
