"""Authenticate: who is calling, and may they use the route they asked for."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from typing import TYPE_CHECKING, Any

from llmgw.context import RequestContext
from llmgw.errors import AuthenticationFailed, RateLimited, clip
from llmgw.keys import KEY_PREFIX, UNSEEN, KeyInfo, admin_matches
from llmgw.stages.base import Stage

if TYPE_CHECKING:
    from llmgw.gateway import Gateway

ANONYMOUS_ID = "anonymous"
#: the response header carrying an anonymous answer's feedback token (``POST /v1/feedback`` wants it back)
FEEDBACK_TOKEN_HEADER = "x-llmgw-feedback-token"
_TOKEN_KEY = os.urandom(32)  # per process: a token is checked against its stored digest, never re-derived


def feedback_token(request_id: str) -> str:
    """The proof that a caller received request ``request_id``'s answer.

    Every anonymous caller is the one identity ``anonymous``, and request ids are time-ordered
    (guessable), so the id alone cannot say who may give feedback on a request. The token is a
    keyed hash of the id under a random per-process key: unguessable, and no system call per
    request (``os.urandom`` per id showed in profiles). Only its SHA-256 (:func:`token_digest`)
    is stored on the request row, so verification needs the row, not this process's key: any
    worker or replica can check it.
    """
    return hashlib.blake2b(request_id.encode(), key=_TOKEN_KEY, digest_size=16).hexdigest()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(presented: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(token_digest(presented), stored)


def check_failures(gateway: Gateway, client: str | None) -> None:
    """429 while ``client`` is past ``auth.max_failed_auth_per_minute`` failed authentications."""
    wait = gateway.auth_failures.wait_s(client)
    if wait > 0:
        raise RateLimited(
            "too many failed authentications from this address; try again later",
            code="too_many_failed_authentications",
            headers={"retry-after": str(math.ceil(wait))},
        )


def presented_key(headers: dict[str, str]) -> str | None:
    """The key from ``Authorization: Bearer ...``, Anthropic-style ``x-api-key`` or Azure-style
    ``api-key``; ``None`` when there is none.

    Any other ``Authorization`` scheme (``Basic``, ``Token``...) is refused rather than read as
    "no key": with anonymous access on, a revoked key sent as ``Token sk-llmgw-…`` would otherwise
    be served as the anonymous caller.
    """
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        # a value without a space is no scheme but a bare credential ("Authorization: <key>"): never
        # echo it (the message reaches the client, the request row and the logs)
        if token.strip():
            named = f"scheme {clip(scheme, 24)}"
        else:
            named = "Bearer without a key" if scheme.lower() == "bearer" else "no scheme"
        raise AuthenticationFailed(f"unsupported Authorization header ({named}): send 'Authorization: Bearer <key>'")
    return headers.get("x-api-key") or headers.get("api-key") or None


def anonymous(auth: Any) -> KeyInfo:
    return KeyInfo(ANONYMOUS_ID, ANONYMOUS_ID, auth.anonymous_team, None, ("*",), ("*",))


class Authenticate(Stage):
    name = "authenticate"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        ctx.key = key = await authenticate(self.gateway, ctx.headers, ctx.client)
        if key.id == ANONYMOUS_ID:  # anonymous callers only: a keyed caller's key owns its requests
            token = feedback_token(ctx.request_id)
            ctx.response_headers[FEEDBACK_TOKEN_HEADER] = token
            ctx.feedback_sha256 = token_digest(token)
        return None


async def authenticate(gateway: Gateway, headers: dict[str, str], client: str | None = None) -> KeyInfo:
    """Resolve the caller's key or raise 401; anonymous callers get a key-less identity.

    Where anonymous calls are allowed, a key that is not an llmgw key (SDKs insist on sending
    *some* key: ``api_key="unused"``) counts as no key. An llmgw key (``sk-llmgw-…``) is always
    checked, so a revoked or mistyped one is refused rather than silently downgraded.

    A key this replica has not seen costs a database read; ``client`` (the peer's address) is
    refused those with 429 once it has failed ``auth.max_failed_auth_per_minute`` times, and so
    every key but the virtual and static keys this replica knows (the admin key too: it is not
    guessed at full speed). No key at all (anonymous) is never refused for it.
    """
    auth = gateway.config.auth
    secret = presented_key(headers)
    if secret is None:
        if auth.allow_anonymous:
            return anonymous(auth)
        raise AuthenticationFailed(
            "missing API key: send 'Authorization: Bearer <key>' (or 'x-api-key: <key>')", code="missing_api_key"
        )
    is_admin = admin_matches(secret, auth.admin_key)
    info = gateway.keys.cached(secret)
    if is_admin or info is UNSEEN or (info is None and not secret.startswith(KEY_PREFIX)):
        # an unseen key, the admin key or a guess at it (an sk-llmgw- key known to be unknown is
        # answered 401 for free). Past the limit all are refused alike (whether the admin key matched
        # must not show), else the admin key could be guessed at full speed: a guess costs no read
        check_failures(gateway, client)
    if is_admin:
        return KeyInfo("admin", "admin", None, None, ("*",), ("*",), admin=True)
    if info is UNSEEN:
        info = await gateway.keys.load(secret)
    if isinstance(info, KeyInfo):
        return info
    if auth.allow_anonymous and not secret.startswith(KEY_PREFIX):
        return anonymous(auth)
    gateway.auth_failures.record(client)
    raise AuthenticationFailed("invalid or revoked API key")
