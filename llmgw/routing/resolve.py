"""Which catalog model a requested name means, and whether this caller may use it.

Explicit catalog names where the route and the key allow them; a configured alias
(``routing.aliases``, its first model); ``auto``, ``fast``, ``best`` and ``default`` as the route's
``default_model`` when routing does not choose. The routing domain owns this so that both the
chat plan and ``/v1/embeddings`` resolve names the same way, from plain values (no request context).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from llmgw.errors import InvalidRequest, NotFound, PermissionDenied, clip

if TYPE_CHECKING:
    from llmgw.config import Config, ModelConfig, RouteConfig

#: names that mean "let the gateway choose" (the route's default, or routing's choice when enabled)
ALIASES = frozenset({"auto", "fast", "best", "default"})


def routed(config: Config, requested: str) -> bool:
    """Whether routing chooses the model for ``requested`` (``auto``/``fast``/``best``/``default``
    with ``routing.enabled``, unless a catalog model or an alias has the name): the plan routes it,
    and whatever else resolves a name for the request (``count_tokens``) must not refuse it."""
    routing = config.routing
    return (
        routing.enabled
        and requested in ALIASES
        and requested not in config.models
        and not routing.aliases.get(requested)
    )


class ModelPermissions(Protocol):
    """What resolving needs of an API key (``llmgw.keys.KeyInfo``)."""

    def allows_model(self, model: str) -> bool: ...


def resolve_model(
    config: Config,
    requested: str,
    kind: str,
    route: RouteConfig | None,
    route_name: str | None,
    key: ModelPermissions | None,
) -> tuple[str, ModelConfig]:
    """The catalog name and model ``requested`` means for a caller on ``route`` with ``key``: 404
    for an unknown name, 400 for a model of another ``kind``, 403 where the route or key forbids it."""
    catalog = config.models
    name = requested
    if name not in catalog:
        aliases = config.routing.aliases
        if aliases.get(name):
            name = aliases[name][0]
        elif name in ALIASES and route is not None and route.default_model:
            name = route.default_model
        else:
            raise NotFound(f"The model {clip(requested)} does not exist", param="model")
    model = catalog[name]
    if model.kind != kind:
        raise InvalidRequest(
            f"model {name!r} is a {model.kind} model, not a {kind} model",
            param="model",
            code="wrong_model_kind",
        )
    if route is not None and "*" not in route.models and name not in route.models:
        raise PermissionDenied(f"route {route_name!r} does not allow model {name!r}", code="model_not_allowed")
    if key is not None and not key.allows_model(name):
        raise PermissionDenied(f"this key may not use model {name!r}", code="model_not_allowed")
    return name, model
