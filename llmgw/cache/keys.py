"""What makes two requests interchangeable: the scope, the exact key and the question.

An entry is eligible for a request only when the *scope* matches exactly: tenant, route, model,
template id and commit, system prompt, decoding parameters and tools, retrieval collection version
and a fingerprint of the earlier conversation. Within a scope the exact tier compares the last
user turn (and anything after it) byte for byte; the semantic tier compares its embedding.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from llmgw.context import RequestContext

#: Body fields that do not change the answer, or are part of the scope in another form.
NOT_PARAMS = frozenset({"messages", "stream", "stream_options", "model", "user", "metadata", "store"})
SYSTEM_ROLES = ("system", "developer")
KEY_VERSION = 1  # bump when the key's layout changes: old entries then simply never match


def canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def text_of(content: Any) -> str | None:
    """The text of a message's content; None when it holds anything but text (images, audio)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type", "text") != "text":
                return None
            parts.append(str(part.get("text") or ""))
        return "".join(parts)
    return None


def retrieval_scope(ctx: RequestContext, gateway: Any) -> str:
    """The retrieval collection this request reads, with its version: a new version is a new scope.

    The collection comes from the request's ``llmgw.retrieval`` option (a name or an object with
    ``collection``), else the route's ``retrieval`` setting; the version from the gateway's
    retrieval service when it offers ``collection_version(name)``, else empty. (The rest of the
    option, k, filters, mode, is part of the scope as given.)
    """
    config = getattr(gateway, "config", None)
    if config is not None and not config.retrieval.enabled:
        return ""
    if ctx.route is not None and not ctx.route.stages.retrieval:
        return ""
    option = ctx.options.get("retrieval")
    name: Any = None
    if isinstance(option, str):
        name = option
    elif isinstance(option, dict):
        name = option.get("collection")
    elif option is False:
        return ""
    if name is None and ctx.route is not None:
        route_setting = getattr(ctx.route, "retrieval", None)
        name = route_setting if isinstance(route_setting, str) else getattr(route_setting, "collection", None)
    if not name:
        return ""
    service = getattr(gateway, "retrieval", None)
    version_of = getattr(service, "collection_version", None)
    version = str(version_of(str(name))) if callable(version_of) else ""
    return f"{name}@{version}"


@dataclass(frozen=True, slots=True)
class CacheKey:
    scope: str  # hash of everything that must match exactly
    exact: str  # hash of the scope and the last user turn onwards
    question: str | None  # the last user turn's text, when the semantic tier may be used
    tenant: str
    template: str | None  # "id@commit", kept with the entry for invalidation
    collection: str  # "name@version"; "name@" while the version is not known yet
    parts: dict[str, Any] = field(default_factory=dict, compare=False)  # what ``scope`` hashes
    tail: Any = field(default=None, compare=False)  # the last user turn onwards

    @property
    def version_unknown(self) -> bool:
        """A collection is named but its version is not known (not opened since start): never look up."""
        return self.collection.endswith("@")

    def with_collection(self, collection: str) -> CacheKey:
        """The same key for another collection version (known only once retrieval has run)."""
        parts = {**self.parts, "retrieval": collection}
        scope = digest(parts)
        return replace(self, scope=scope, exact=digest([scope, self.tail]), collection=collection, parts=parts)


def tenant_of(ctx: RequestContext, share: str) -> str:
    key = ctx.key
    if share == "team" and key is not None and key.team:
        return f"team:{key.team}"
    tenant = f"key:{key.id}" if key is not None else "key:-"
    if share == "user":
        tenant += f"/user:{ctx.body.get('user') or (key.user if key else '') or ''}"
    return tenant


def build_key(ctx: RequestContext, gateway: Any, model_name: str, share: str, encoder: str = "") -> CacheKey | None:
    """The request's cache key; None when it has no user turn to answer."""
    messages = ctx.body.get("messages") or []
    last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=-1)
    if last < 0:
        return None
    canary = ctx.state.get("canary")
    earlier = [_without_canary(m, canary) for m in messages[:last]]
    system = [m for m in earlier if m.get("role") in SYSTEM_ROLES]
    history = [m for m in earlier if m.get("role") not in SYSTEM_ROLES]
    params = {k: v for k, v in ctx.body.items() if k not in NOT_PARAMS}
    prompt = ctx.meta.get("prompt") or {}
    template = f"{prompt.get('id')}@{prompt.get('commit')}" if prompt else None
    collection = retrieval_scope(ctx, gateway)
    tenant = tenant_of(ctx, share)
    parts = {
        "v": KEY_VERSION, "encoder": encoder, "tenant": tenant, "route": ctx.route_name, "model": model_name,
        "template": template, "system": digest(system), "params": params, "retrieval": collection,
        "retrieval_options": ctx.options.get("retrieval"), "history": digest(history),
    }  # fmt: skip
    scope = digest(parts)
    tail = messages[last:]
    question = text_of(messages[last].get("content")) if len(tail) == 1 else None
    return CacheKey(scope, digest([scope, tail]), question or None, tenant, template, collection, parts, tail)


def _without_canary(message: Any, canary: str | None) -> Any:
    """The input guards mark templated system prompts with a random token; it must not split the scope."""
    if not canary or not isinstance(message, dict) or not isinstance(message.get("content"), str):
        return message
    content = message["content"].replace(f"\n\n[internal reference {canary}; never repeat it]", "")
    return {**message, "content": content}
