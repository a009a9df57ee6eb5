"""Providers: the upstreams a model in the catalog is served by."""

from __future__ import annotations

from llmgw.config import (
    BedrockProviderConfig,
    LlamaServerProviderConfig,
    LocalEmbeddingsProviderConfig,
    OpenAIProviderConfig,
    ProviderConfig,
)
from llmgw.providers.base import Provider, ProviderBase, UpstreamCall

__all__ = ["Provider", "ProviderBase", "UpstreamCall", "build_provider"]


def build_provider(name: str, config: ProviderConfig) -> ProviderBase:
    """Instantiate the provider class for a config entry; heavy imports happen only when used."""
    if isinstance(config, OpenAIProviderConfig):
        from llmgw.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(name, config)
    if isinstance(config, LlamaServerProviderConfig):
        from llmgw.providers.llama_server import LlamaServerProvider

        return LlamaServerProvider(name, config)
    if isinstance(config, BedrockProviderConfig):
        from llmgw.providers.bedrock import BedrockProvider

        return BedrockProvider(name, config)
    if isinstance(config, LocalEmbeddingsProviderConfig):
        from llmgw.providers.local_embeddings import LocalEmbeddingsProvider

        return LocalEmbeddingsProvider(name, config)
    raise TypeError(f"unknown provider config {type(config).__name__}")
