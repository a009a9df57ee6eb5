"""The review page: server-rendered HTML (jinja2, autoescaped), no JavaScript.

``/admin/review`` filters events, ``/admin/review/requests/{id}`` shows one request's decision
trail. A browser signs in with the admin key through ``/admin/login`` (a session cookie, see
:mod:`llmgw.audit.auth`); the admin key as a Bearer header works too.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie

from llmgw.api.common import client_of, gateway_of
from llmgw.audit.auth import COOKIE, COOKIE_PATH, SESSION_S, has_session, require_reviewer, session_token
from llmgw.audit.queries import VERDICTS, EventFilter, entity_counts, page, request_view, tag_list, trail
from llmgw.errors import GatewayError, InvalidRequest

_env = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def score_items(scores: dict[str, Any]) -> list[tuple[str, str]]:
    """``{"hate": 0.0123, ...}`` as (name, value) pairs to show one a line: JSON in a table cell wraps
    into an unreadable column of fragments."""
    return [(str(k), f"{v:.3g}" if isinstance(v, float) else str(v)) for k, v in sorted(scores.items())]


_env.filters["score_items"] = score_items
_env.filters["tags"] = tag_list
_env.filters["counts"] = entity_counts

HTML_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def render(
    name: str, status: int = 200, cookies: list[Cookie] | None = None, headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[str]:  # fmt: skip
    context.setdefault("error", None)
    body = _env.get_template(name).render(**context)
    # Litestar appends "; charset=utf-8" to text/* types itself: naming it here doubled it
    return Response(body, status_code=status, media_type="text/html", headers={**HTML_HEADERS, **(headers or {})},
                    cookies=cookies or [])  # fmt: skip


def redirect(location: str, cookies: list[Cookie] | None = None) -> Response[bytes]:
    return Response(b"", status_code=303, headers={"location": location, "cache-control": "no-store"},
                    cookies=cookies or [])  # fmt: skip


async def signed_in(request: Request[Any, Any, Any]) -> bool:
    """True for a valid session or admin header; a wrong header still raises (401/403)."""
    if has_session(request):
        return True
    try:
        await require_reviewer(request)
    except GatewayError as exc:
        if exc.code == "missing_api_key":
            return False
        raise
    return True


def _safe_next(value: Any) -> str:
    """Where to go after signing in: a review page of this gateway, as printable ASCII (a control
    character or a non-Latin-1 one in the Location header dropped the connection or was a 500)."""
    text = str(value or "")
    plain = text.isascii() and text.isprintable()
    ok = plain and text.startswith("/admin/review") and "//" not in text and "\\" not in text
    return text if ok else "/admin/review"


@get("/admin/login")
async def login_form(request: Request[Any, Any, Any]) -> Response[str]:
    return render("login.html", next=_safe_next(request.query_params.get("next")), error=None)


@post("/admin/login")
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    gateway = gateway_of(request)
    admin_key = gateway.config.auth.admin_key
    presented = str(form.get("admin_key") or "")
    target = _safe_next(form.get("next"))
    # the admin API's failed-authentication limit (per client address) covers this form too: without
    # it, the form was a way to guess the admin key at full speed
    wait = gateway.auth_failures.wait_s(client_of(request))
    if wait > 0:
        return render("login.html", status=429, headers={"retry-after": str(math.ceil(wait))}, next=target,
                      error="too many failed sign-ins from this address; try again later")  # fmt: skip
    if not admin_key or not hmac.compare_digest(presented.encode(), admin_key.encode()):
        error = "invalid admin key" if admin_key else "no admin key is configured (auth.admin_key)"
        if admin_key:
            gateway.auth_failures.record(client_of(request))
        return render("login.html", status=401, next=target, error=error)
    cookie = Cookie(key=COOKIE, value=session_token(admin_key), path=COOKIE_PATH, max_age=SESSION_S,
                    httponly=True, samesite="strict", secure=request.url.scheme == "https")  # fmt: skip
    return redirect(target, [cookie])


@post("/admin/logout")
async def logout(request: Request[Any, Any, Any]) -> Response[bytes]:
    cookie = Cookie(key=COOKIE, value="", path=COOKIE_PATH, max_age=0, httponly=True, samesite="strict")
    return redirect("/admin/login", [cookie])


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


@get("/admin/review")
async def review(request: Request[Any, Any, Any]) -> Response[Any]:
    if not await signed_in(request):
        return redirect("/admin/login?" + _query(next=str(request.url.path) + "?" + request.url.query))
    params = request.query_params
    error = None
    rows: list[dict[str, Any]] = []
    next_cursor = None
    try:
        flt = EventFilter.from_params(params)
        limit = int(params.get("limit") or 50)
        rows, next_cursor = await asyncio.to_thread(
            page, gateway_of(request).engine, flt, limit, params.get("cursor") or None
        )
    except (InvalidRequest, ValueError) as exc:
        flt, limit = EventFilter(), 50
        error = exc.message if isinstance(exc, InvalidRequest) else "limit must be an integer"
    filters = {name: params.get(name) or "" for name in EventFilter.__dataclass_fields__}
    kept = {**flt.params(), "limit": limit}
    return render(
        "review.html",
        status=400 if error else 200,
        rows=rows,
        filters=filters,
        verdicts=VERDICTS,
        error=error,
        limit=limit,
        next_url="/admin/review?" + _query(**kept, cursor=next_cursor) if next_cursor else None,
        csv_url="/admin/guard-events/export?" + _query(**flt.params(), format="csv"),
        jsonl_url="/admin/guard-events/export?" + _query(**flt.params(), format="jsonl"),
        trail_url=lambda rid: "/admin/review/requests/" + _quote(rid),
    )


def _quote(value: str) -> str:
    return quote(value, safe="")


@get("/admin/review/requests/{request_id:str}")
async def review_trail(request: Request[Any, Any, Any], request_id: str) -> Response[Any]:
    if not await signed_in(request):
        return redirect("/admin/login?" + _query(next="/admin/review/requests/" + _quote(request_id)))
    row, events = await asyncio.to_thread(trail, gateway_of(request).engine, request_id)
    return render(
        "trail.html",
        status=200 if row or events else 404,
        request_id=request_id,
        request=request_view(row) if row else None,
        events=events,
        json_url=f"/admin/requests/{_quote(request_id)}/trail",
    )


handlers = [login_form, login, logout, review, review_trail]
