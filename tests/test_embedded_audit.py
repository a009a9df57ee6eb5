"""The embedded defaults as a new user meets them (`llmgw serve` with SmolLM2 in its own
llama-server): what happens when that child process dies, is stopped, or is asked for more than it
can do. Slow: each test starts a real llama-server with the packaged SmolLM2 (about a second)."""

from __future__ import annotations

import asyncio
import time

import pytest

from llmgw.config import LlamaServerProviderConfig
from llmgw.providers import llama_server
from llmgw.providers.base import UpstreamCall
from llmgw.providers.llama_server import LlamaServerProvider

pytestmark = pytest.mark.slow


def smollm2(**overrides: object) -> LlamaServerProvider:
    config = {"type": "llama_server", "model": "smollm2-135m-instruct", "ctx_size": 512, "parallel": 1}
    return LlamaServerProvider("local", LlamaServerProviderConfig.model_validate({**config, **overrides}))


def ask(text: str = "Say hi", **body: object) -> UpstreamCall:
    messages = [{"role": "user", "content": text}]
    return UpstreamCall({"messages": messages, "max_tokens": 4, **body}, "smollm2-135m-instruct", time.monotonic() + 60)


async def until_ready(provider: LlamaServerProvider, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await provider.ready():
        assert time.monotonic() < deadline, "llama-server not ready again"
        await asyncio.sleep(0.1)


def test_a_llama_server_that_dies_is_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    # before: the dead child stayed dead, and its models answered 503 until the gateway restarted
    monkeypatch.setattr(llama_server, "RESTART_DELAY_S", 0.1)

    async def run() -> None:
        provider = smollm2()
        await provider.start()
        try:
            first = provider.process
            assert first is not None
            first.kill()  # a crash, the OOM killer
            await first.wait()
            assert not await provider.ready()  # /readyz is honest meanwhile
            await until_ready(provider)
            assert provider.process is not None and provider.process is not first
            answer = await provider.complete(ask())
            assert answer["choices"][0]["message"]["content"]
        finally:
            await provider.aclose()
        assert provider.process is None and first.returncode is not None

    asyncio.run(run())


def test_stopping_the_provider_does_not_restart_its_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llama_server, "RESTART_DELAY_S", 0.1)

    async def run() -> None:
        provider = smollm2()
        await provider.start()
        process = provider.process
        assert process is not None
        await provider.aclose()
        await asyncio.sleep(0.5)  # a restart would have spawned by now
        assert provider.process is None and process.returncode is not None

    asyncio.run(run())
