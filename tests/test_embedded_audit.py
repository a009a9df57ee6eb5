"""The embedded defaults as a new user meets them (`llmgw serve` with SmolLM2 in its own
llama-server): what happens when that child process dies, is stopped, or is asked for more than it
can do. The slow ones start a real llama-server with the packaged SmolLM2 (about a second)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmgw.config import LlamaServerProviderConfig, load_config
from llmgw.errors import UpstreamError
from llmgw.providers import llama_server
from llmgw.providers.base import UpstreamCall
from llmgw.providers.llama_server import LlamaServerProvider
from llmgw.providers.openai_compat import classify_status


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


@pytest.mark.slow
def test_a_llama_server_that_dies_is_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    # before: the dead child stayed dead, and its models answered 503 until the gateway restarted
    monkeypatch.setattr(llama_server, "RESTART_DELAY_S", 0.5)

    async def run() -> None:
        provider = smollm2()
        await provider.start()
        try:
            first = provider.process
            assert first is not None
            first.kill()  # a crash, the OOM killer
            await first.wait()
            assert not await provider.ready()  # /readyz is honest meanwhile
            await asyncio.sleep(0.05)
            # a request meanwhile: a clear 503 with Retry-After, not "cannot connect to 127.0.0.1:<port>"
            with pytest.raises(UpstreamError) as refused:
                await provider.complete(ask())
            assert refused.value.status == 503 and refused.value.headers == {"retry-after": "5"}
            assert "restarting" in str(refused.value)
            await until_ready(provider)
            assert provider.process is not None and provider.process is not first
            answer = await provider.complete(ask())
            assert answer["choices"][0]["message"]["content"]
        finally:
            await provider.aclose()
        assert provider.process is None and first.returncode is not None

    asyncio.run(run())


@pytest.mark.slow
def test_a_request_whose_llama_server_dies_under_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # before: "upstream connection failed: the upstream closed it before the answer was complete", a
    # 502 upstream_protocol_error, in the client's error and the request's row alike
    monkeypatch.setattr(llama_server, "RESTART_DELAY_S", 0.1)
    long = {"max_tokens": 400, "temperature": 0}

    async def run() -> None:
        provider = smollm2()
        await provider.start()
        try:
            chunks = await provider.stream(ask("Write a long story about a cat.", stream=True, **long))
            await anext(chunks)
            assert provider.process is not None
            provider.process.kill()
            with pytest.raises(UpstreamError) as died:
                async for _ in chunks:
                    pass
            assert died.value.code == "upstream_unavailable" and "exited (-9) during the answer" in str(died.value)
            await until_ready(provider)

            answer = asyncio.create_task(provider.complete(ask("Write a long story about a dog.", **long)))
            await asyncio.sleep(1.0)
            assert not answer.done() and provider.process is not None
            provider.process.kill()
            with pytest.raises(UpstreamError) as died:
                await answer
            assert died.value.status == 503 and died.value.headers == {"retry-after": "5"}
            assert "exited (-9) during the answer" in str(died.value)
        finally:
            await provider.aclose()

    asyncio.run(run())


@pytest.mark.slow
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


def test_the_embedded_models_context_window_is_a_llama_server_slot() -> None:
    # llama-server splits ctx_size between its parallel slots, and one request gets one slot: the
    # catalog said 8192, so auto/fast/best sent 3,000-token prompts that llama-server refused
    config = load_config()
    for name, model in config.models.items():
        provider = config.providers[model.provider]
        if isinstance(provider, LlamaServerProviderConfig):
            assert model.context_window <= provider.ctx_size // provider.parallel, name


def test_llama_servers_too_long_prompt_is_context_length_exceeded() -> None:
    # what llama-server answers (captured from the embedded SmolLM2): code is the HTTP status
    body = (
        b'{"error":{"code":400,"message":"request (3031 tokens) exceeds the available context size (2048 tokens),'
        b' try increasing it","type":"exceed_context_size_error","n_prompt_tokens":3031,"n_ctx":2048}}'
    )
    error = classify_status(400, body, {})
    assert isinstance(error, UpstreamError)
    assert error.code == "context_length_exceeded" and error.param == "messages"
    assert "3031 tokens" in str(error)


@pytest.mark.slow
def test_a_restart_whose_port_was_taken_meanwhile_moves_to_a_free_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # the port was picked free at start-up: once released, any process (or outgoing connection) may take it
    monkeypatch.setattr(llama_server, "RESTART_DELAY_S", 0.5)

    async def run() -> None:
        provider = smollm2()
        await provider.start()
        squatter = socket.socket()
        try:
            first = provider.process
            assert first is not None
            old_url = provider.base_url
            first.kill()
            await first.wait()
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", int(old_url.rsplit(":", 1)[1].removesuffix("/v1"))))
            squatter.listen()
            await until_ready(provider, within=30)
            assert provider.base_url != old_url
            assert (await provider.complete(ask()))["choices"][0]["message"]["content"]
        finally:
            squatter.close()
            await provider.aclose()

    asyncio.run(run())


@pytest.mark.slow
def test_restarts_go_on_while_the_binary_cannot_be_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # a binary gone for a moment (a venv being rebuilt): FileNotFoundError used to end the watcher
    monkeypatch.setattr(llama_server, "RESTART_DELAY_S", 0.1)
    monkeypatch.setattr(llama_server, "RESTART_MAX_DELAY_S", 0.2)

    async def run() -> None:
        provider = smollm2()
        await provider.start()
        try:
            binary, args = provider._binary, provider._args
            provider._binary = Path("/nonexistent/llama-server")
            provider._args = [str(provider._binary), *args[1:]]
            assert provider.process is not None
            provider.process.kill()
            await asyncio.sleep(1.0)  # several failed restarts
            assert not await provider.ready()
            provider._binary = binary
            provider._listen_on(provider.server_config.port or llama_server.free_port("127.0.0.1"))
            await until_ready(provider)
        finally:
            await provider.aclose()

    asyncio.run(run())


ORPHAN_SCRIPT = """
import asyncio, os, signal
from llmgw.config import LlamaServerProviderConfig
from llmgw.providers.llama_server import LlamaServerProvider

async def main():
    cfg = LlamaServerProviderConfig(type="llama_server", model="smollm2-135m-instruct", ctx_size=512, parallel=1)
    provider = LlamaServerProvider("local", cfg)
    await provider.start()
    print(provider.process.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no aclose: the OOM killer, a runtime past its grace period

asyncio.run(main())
"""


def running(pid: int) -> bool:
    """Whether ``pid`` still runs: gone, or a zombie (exited, holding no memory, waiting for whichever
    process it was handed to, as an orphan, to reap it), is not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_a_gateway_killed_outright_leaves_no_llama_server_behind() -> None:
    # before: the child ran in its own session and outlived a SIGKILLed gateway, holding its memory
    done = subprocess.run([sys.executable, "-c", ORPHAN_SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 30  # SIGTERM, then llama-server's own shutdown, on a busy machine
    try:
        while time.monotonic() < deadline:
            if not running(child):
                return
            time.sleep(0.1)
        pytest.fail(f"llama-server {child} outlived its gateway")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
