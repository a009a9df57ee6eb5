"""Who may read the guardrail log: the admin key as a Bearer header, or a browser review session.

A session is an HTTP-only, SameSite=Strict cookie holding ``expiry.hmac(admin_key, expiry)``: it
never contains the admin key, needs no server-side state (works across replicas), expires after
:data:`SESSION_S`, and every session ends when the admin key changes.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from litestar import Request

from llmgw.api.admin import missing_admin_key, require_admin
from llmgw.api.common import gateway_of
from llmgw.errors import AuthenticationFailed
from llmgw.stages.auth import presented_key

COOKIE = "llmgw_review"
COOKIE_PATH = "/admin"
SESSION_S = 8 * 3600


def _mac(admin_key: str, expires: int) -> str:
    return hmac.new(admin_key.encode(), f"llmgw-review-session:{expires}".encode(), hashlib.sha256).hexdigest()


def session_token(admin_key: str, now: float | None = None) -> str:
    expires = int(now if now is not None else time.time()) + SESSION_S
    return f"{expires}.{_mac(admin_key, expires)}"


def session_valid(admin_key: str | None, token: str | None, now: float | None = None) -> bool:
    if not admin_key or not token:
        return False
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit():
        return False
    expires = int(expires_text)
    if expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(mac.encode(), _mac(admin_key, expires).encode())


def has_session(request: Request[Any, Any, Any]) -> bool:
    return session_valid(gateway_of(request).config.auth.admin_key, request.cookies.get(COOKIE))


async def require_reviewer(request: Request[Any, Any, Any]) -> None:
    """The admin key in a header (checked as the rest of the admin API does), else a valid session."""
    if presented_key(dict(request.headers)) is not None:
        await require_admin(request)
        return
    if not has_session(request):
        config = gateway_of(request).config
        raise AuthenticationFailed(f"{missing_admin_key(config)}, or a review session", code="missing_api_key")
