"""The OpenAI ``user`` field: an end user's id, and often an e-mail address.

It reaches the provider, the cache's per-user scope, the request row and every guard event, so
the policy (``pii.user``) decides it once per request, before any of them sees it:

* ``hash`` (the default): replaced by ``user-`` and a salted hash of it (``guards.hash_salt``).
  The same user is the same id on every request, and with a configured salt on every replica and
  after restarts, so per-user cache scope, experiment stickiness and usage still work; the
  provider and the database never see the raw value.
* ``scan``: analysed like message content: kept when it holds no PII; when it does, a ``block``
  entity refuses the request and anything else hashes it (a placeholder would make every user
  with an address the same ``<EMAIL_ADDRESS_1>``, one per-user cache scope for all of them).
* ``allow``: kept as sent (an opaque id that is no PII).

A request that ends before the input guards decided (refused while parsing, rate-limited, a
template error, a route without input guards) is logged with the hash, never the raw value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from llmgw.context import RequestContext
from llmgw.guards.events import value_hash
from llmgw.guards.runtime import GuardFailure
from llmgw.guards.scan import USER_FIELDS

if TYPE_CHECKING:
    from llmgw.gateway import Gateway


def hashed_user(salt: bytes, value: str) -> str:
    return f"user-{value_hash(salt, value)}"


def settle_user(gateway: Gateway, ctx: RequestContext, mode: Literal["hash", "scan", "allow"]) -> None:
    """Apply ``mode`` to ``body["user"]`` (and the other :data:`USER_FIELDS`) now; ``scan`` is the
    masker's (the input guards mark it settled once the value is masked)."""
    if mode == "scan":
        return
    for name in USER_FIELDS:
        value = ctx.body.get(name)
        if isinstance(value, str) and value and mode == "hash":
            ctx.body[name] = hashed_user(gateway.guards.salt, value)
    if isinstance(ctx.body.get("user"), str) and ctx.body["user"]:
        ctx.guards.user_settled = True


def scanned_user(gateway: Gateway, ctx: RequestContext, sent: dict[str, Any]) -> None:
    """After the masker ran over ``user`` and the other :data:`USER_FIELDS` (``scan``; ``sent``: each
    as the client sent it): a value it changed is hashed instead."""
    for name, value in sent.items():
        if isinstance(value, str) and ctx.body.get(name) != value:
            ctx.body[name] = hashed_user(gateway.guards.salt, value)


def logged_user(gateway: Gateway, ctx: RequestContext) -> str | None:
    """The ``user`` a row or guard event may hold: as the policy left it, else its hash."""
    value = ctx.body.get("user")
    if not isinstance(value, str) or not value:
        return None
    if ctx.guards.user_settled or not gateway.config.guards.enabled:
        return value
    return hashed_user(gateway.guards.salt, value)


def settle_embeddings_user(gateway: Gateway, ctx: RequestContext) -> None:
    """``/v1/embeddings`` runs no input guards: its ``user`` is hashed unless the policy keeps it
    (``scan`` hashes too: there is no masker to scan it with)."""
    if not gateway.config.guards.enabled:
        return
    try:
        key = ctx.key
        pii = gateway.guards.policy_for(key.id if key else None, key.team if key else None, ctx.route_name).pii
    except GuardFailure:  # no such policy: the safe choice
        pii = None
    keep = pii is not None and (not pii.enabled or pii.user == "allow")
    settle_user(gateway, ctx, "allow" if keep else "hash")
