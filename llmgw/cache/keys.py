"""What makes two requests interchangeable: the scope, the exact key and the question.

An entry is eligible for a request only when the *scope* matches exactly: tenant, route, model,
template id and commit, system prompt, decoding parameters and tools, retrieval collection version,
a fingerprint of the earlier conversation and a keyed fingerprint of the values the input guards
masked. Within a scope the exact tier compares the last user turn (and anything after it) byte for
byte; the semantic tier compares its embedding. Nothing here reads the request context: the cache
stage gathers a :class:`KeySource`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from llmgw.keys import KeyInfo
from llmgw.messages import SYSTEM_ROLES, only_text

#: Body fields that do not change the answer, or are part of the scope in another form. ``safety_identifier``
#: (OpenAI's successor of ``user``: an end-user id for abuse monitoring), ``prompt_cache_key`` (a hint for
#: the provider's prompt cache) and ``service_tier`` (latency and price) change no answer: keyed on, they
#: kept every end user of an application in a cache of their own (``share: user`` reads the end user).
NOT_PARAMS = frozenset({"messages", "stream", "stream_options", "model", "user", "metadata", "store",
                        "safety_identifier", "prompt_cache_key", "service_tier"})  # fmt: skip
KEY_VERSION = 2  # bump when the key's layout changes: old entries then simply never match


def canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


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


@dataclass(frozen=True, slots=True)
class KeySource:
    """What a request's key is made of, as the cache stage reads it off the request.

    ``collection`` is the retrieval collection the plan reads, with its version
    (``name@version``; ``name@`` while unknown; ``""`` without retrieval). ``masked_values`` is
    the input guards' keyed fingerprint of the values they masked or redacted
    (``Masker.fingerprint``): the masked text alone would make "Lake <PERSON_1>" one question for
    Lake Como and Lake Constance.
    """

    body: dict[str, Any]  # as the upstream will receive it: templated and masked
    tenant: str
    route: str
    model: str  # the catalog model that answers (``auto`` resolved by the plan)
    template: str | None = None  # "id@commit"
    collection: str = ""
    retrieval_options: Any = None  # the request's ``retrieval`` option, as checked (k, filters, mode...)
    canary: str | None = None  # the input guards' random token in a templated system prompt
    masked_values: str | None = None


def tenant_of(key: KeyInfo | None, user: Any, share: str) -> str:
    """Who may share entries: the key (default), its team (``share: team``) or the key and ``user`` (the
    request's ``user``, else its ``safety_identifier``, else the key's user)."""
    if share == "team" and key is not None and key.team:
        return f"team:{key.team}"
    tenant = f"key:{key.id}" if key is not None else "key:-"
    if share == "user":
        tenant += f"/user:{user or (key.user if key else '') or ''}"
    return tenant


def build_key(source: KeySource, encoder: str = "") -> CacheKey | None:
    """The request's cache key; None when it has no user turn to answer."""
    body = source.body
    messages = body.get("messages") or []
    last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=-1)
    if last < 0:
        return None
    earlier = [_without_canary(m, source.canary) for m in messages[:last]]
    system = [m for m in earlier if m.get("role") in SYSTEM_ROLES]
    history = [m for m in earlier if m.get("role") not in SYSTEM_ROLES]
    params = {k: v for k, v in body.items() if k not in NOT_PARAMS}
    parts = {
        "v": KEY_VERSION, "encoder": encoder, "tenant": source.tenant, "route": source.route, "model": source.model,
        "template": source.template, "system": digest(system), "params": params, "retrieval": source.collection,
        "retrieval_options": source.retrieval_options, "history": digest(history), "masked": source.masked_values,
    }  # fmt: skip
    scope = digest(parts)
    tail = messages[last:]
    question = only_text(messages[last].get("content")) if len(tail) == 1 else None
    return CacheKey(scope, digest([scope, tail]), question or None, source.tenant, source.template,
                    source.collection, parts, tail)  # fmt: skip


def _without_canary(message: Any, canary: str | None) -> Any:
    """The input guards mark templated system prompts with a random token; it must not split the scope."""
    if not canary or not isinstance(message, dict) or not isinstance(message.get("content"), str):
        return message
    content = message["content"].replace(f"\n\n[internal reference {canary}; never repeat it]", "")
    return {**message, "content": content}
