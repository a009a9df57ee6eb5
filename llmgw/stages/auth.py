"""Authenticate: who is calling, and may they use the route they asked for."""

from __future__ import annotations

from typing import Any

from llmgw.context import RequestContext
from llmgw.errors import AuthenticationFailed
from llmgw.keys import KEY_PREFIX, KeyInfo, admin_matches
from llmgw.stages.base import Stage

ANONYMOUS_ID = "anonymous"


def presented_key(headers: dict[str, str]) -> str | None:
    """The key from ``Authorization: Bearer ...`` or Azure-style ``api-key``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return headers.get("api-key") or None


class Authenticate(Stage):
    name = "authenticate"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        ctx.key = await authenticate(self.gateway, ctx.headers)
        return None


async def authenticate(gateway: Any, headers: dict[str, str]) -> KeyInfo:
    """Resolve the caller's key or raise 401; anonymous callers get a key-less identity.

    Where anonymous calls are allowed, a key that is not an llmgw key (SDKs insist on sending
    *some* key: ``api_key="unused"``) counts as no key. An llmgw key (``sk-llmgw-…``) is always
    checked, so a revoked or mistyped one is refused rather than silently downgraded.
    """
    auth = gateway.config.auth
    secret = presented_key(headers)
    if (
        auth.allow_anonymous
        and secret is not None
        and not secret.startswith(KEY_PREFIX)
        and not admin_matches(secret, auth.admin_key)
        and await gateway.keys.lookup(secret) is None  # a static key from the config may look like anything
    ):
        secret = None
    if secret is None:
        if auth.allow_anonymous:
            return KeyInfo(ANONYMOUS_ID, ANONYMOUS_ID, auth.anonymous_team, None, ("*",), ("*",))
        raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key")
    if admin_matches(secret, auth.admin_key):
        return KeyInfo("admin", "admin", None, None, ("*",), ("*",), admin=True)
    info = await gateway.keys.lookup(secret)
    if info is None:
        raise AuthenticationFailed("invalid or revoked API key")
    return info
