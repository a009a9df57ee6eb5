"""Providers: the upstreams a model in the catalog is served by."""

from __future__ import annotations

import importlib

from llmgw.config import PROVIDER_TYPES, ProviderConfig
from llmgw.providers.base import Provider, ProviderBase, UpstreamCall

__all__ = ["Provider", "ProviderBase", "UpstreamCall", "build_provider"]


def build_provider(name: str, config: ProviderConfig) -> ProviderBase:
    """Instantiate the class registered for the config's ``type`` (:func:`llmgw.config.provider_type`);
    its module is imported here, so heavy imports happen only for the providers in use."""
    module, _, cls = PROVIDER_TYPES[config.type].implementation.partition(":")
    provider: ProviderBase = getattr(importlib.import_module(module), cls)(name, config)
    return provider
