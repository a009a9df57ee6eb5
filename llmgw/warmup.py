"""Everything a request would otherwise load on its way, loaded at start-up instead.

A cold model is seconds to tens of seconds of a request's time (the task classifier trains on its
exemplars; MiniLM, spaCy and ONNX sessions load from disk), paid by whichever request comes
first, and once per model. ``Gateway.start`` runs every loader here, off the event loop, before
the server takes requests, and records each in ``Gateway.loaded``; ``/readyz`` is ready only when
all of them succeeded (``checks.models``). Loaders, each only when its part is on:

* ``tokenizer``: the local tokenizer that counts tokens for limits and usage;
* ``guards``: the PII analyzer of every policy, the injection detector, the moderator
  (``guards.preload``; off, they load on first use);
* ``guard_judge_templates``: the templates of the policies' LLM judges, from the working tree
  (with ``templates.enabled`` they come from the prompt store, and may arrive later);
* ``cache_encoder``: the semantic cache's question encoder (``cache.preload``);
* ``task_classifier``: the routing task classifier (trained on its exemplars) and its encoder;
* ``collection:NAME``: each ``retrieval.preload`` collection's store and (local) query embedder, and with
  guards on the retrieval guard's detector fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmgw.config import RoutingConfig
    from llmgw.gateway import Gateway

Loader = tuple[str, Callable[[], None]]
WARM_TEXT = "warm up"


def loaders(gateway: Gateway) -> list[Loader]:
    """The named loaders this gateway's configuration needs, in the order they run."""
    config = gateway.config
    out: list[Loader] = [("tokenizer", _tokenizer)]
    if config.guards.enabled and config.guards.preload:
        out.append(("guards", gateway.guards.warm))
    if config.guards.enabled and not config.templates.enabled and _judge_prompts(gateway):
        out.append(("guard_judge_templates", partial(_judge_templates, gateway)))
    if gateway.cache is not None and config.cache.preload and gateway.cache.semantic_somewhere():
        out.append(("cache_encoder", lambda: _cache_encoder(config.cache.encoder)))
    if config.routing.enabled:
        out.append(
            (
                "task_classifier",
                lambda: _task_classifier(config.routing),
            )
        )
    if config.retrieval.enabled:
        for name in config.retrieval.preload:
            out.append((f"collection:{name}", partial(_collection, gateway, name)))
    return out


def _judge_prompts(gateway: Gateway) -> list[str]:
    """The templates of the ``llm_judge`` providers of the policies a request can get."""
    from llmgw.guards.policy import LlmJudge

    policies = [gateway.guards.policies[name] for name in gateway.guards.selectable]
    specs = [s for p in policies for s in p.providers.values() if isinstance(s, LlmJudge)]
    return sorted({s.prompt for s in specs})


def _judge_templates(gateway: Gateway) -> None:
    """Every judge's template from the working tree (a prompt store's templates may arrive later)."""
    from llmgw.stages.guarding import working_tree_judge_template

    for prompt in _judge_prompts(gateway):
        working_tree_judge_template(gateway, prompt)


def _tokenizer() -> None:
    from llmgw import tokens

    tokens.count(WARM_TEXT)


def _cache_encoder(encoder: str) -> None:
    from llmgw.cache import embed

    embed.warm(encoder)


def _task_classifier(routing: RoutingConfig) -> None:
    from llmgw.routing.tasks import classifier_for

    classifier_for(routing.tasks, routing.replace_tasks, routing.task_view, routing.task_encoder).classify(WARM_TEXT)


def _collection(gateway: Gateway, name: str) -> None:
    from llmgw.retrieval.embeddings import LocalBackend

    collection = gateway.retrieval.collection(name)
    if isinstance(collection.embedder.backend, LocalBackend):  # a provider's embeddings load nothing here
        collection.embedder.backend.embed([WARM_TEXT])  # the backend: no warm-up text in the query cache
    if gateway.config.guards.enabled:
        from llmgw.guards.runtime import injection_detector
        from llmgw.retrieval.screening import fingerprint

        fingerprint(injection_detector())
