"""Starting and stopping the benchmark's processes: upstream, llmgw, LiteLLM proxy, load generator."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LITELLM_VENV = BENCH / ".litellm-venv"
GATEWAY_KEY = "sk-llmgw-bench-0123456789abcdef"
ADMIN_KEY = "sk-admin-bench-0123456789"
LITELLM_KEY = "sk-litellm-bench-0123456789"
MODEL = "bench"
OPTIONAL_STAGES = ("rate_limit", "template", "input_guards", "cache", "retrieval", "output_guards")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    """A child process with its log file; ``stop()`` sends SIGTERM to its process group."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)  # our own session: the server and its workers
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        return self.popen.returncode


def spawn(name: str, argv: list[str], port: int, logdir: Path, env: dict[str, str] | None = None) -> Proc:
    log = logdir / f"{name}.log"
    with open(log, "wb") as fh:
        popen = subprocess.Popen(
            argv, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})},
            start_new_session=True,
        )  # fmt: skip
    return Proc(name, popen, port, log)


def wait_http(proc: Proc, path: str, timeout: float) -> None:
    """Poll ``GET path`` until it answers 2xx; fail early if the process died."""
    url = f"http://127.0.0.1:{proc.port}{path}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            tail = proc.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not ready at {url} after {timeout:.0f}s (log: {proc.log})")


def start_upstream(logdir: Path, chunks: int = 50, chunk_delay_ms: float = 0.0) -> Proc:
    port = free_port()
    argv = [sys.executable, "-m", "bench.upstream", "--port", str(port), "--chunks", str(chunks),
            "--chunk-delay-ms", str(chunk_delay_ms)]  # fmt: skip
    proc = spawn("upstream", argv, port, logdir)
    wait_http(proc, "/health", 30)
    return proc


def gateway_config(upstream_url: str, db_path: Path, port: int) -> dict[str, Any]:
    """llmgw with one OpenAI-compatible provider, one model, a static key, optional stages off."""
    return {
        "server": {"host": "127.0.0.1", "port": port, "request_timeout_s": 60},
        "auth": {"admin_key": ADMIN_KEY, "allow_anonymous": False},
        "storage": {"url": f"sqlite:///{db_path}"},
        "providers": {
            "bench": {
                "type": "openai",
                "base_url": upstream_url,
                "api_key": "sk-upstream-bench",
                "max_retries": 0,
            }
        },
        "models": {
            MODEL: {
                "provider": "bench",
                "upstream_id": "bench-upstream",
                "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
            }
        },
        "routes": {"default": {"default_model": MODEL, "stages": dict.fromkeys(OPTIONAL_STAGES, False)}},
        "keys": [{"name": "bench", "sha256": hashlib.sha256(GATEWAY_KEY.encode()).hexdigest(), "team": "bench"}],
    }


def start_gateway(logdir: Path, upstream: Proc, db_path: Path) -> Proc:
    port = free_port()
    config = logdir / "llmgw.yaml"
    config.write_text(yaml.safe_dump(gateway_config(upstream.url, db_path, port), sort_keys=False))
    llmgw = Path(sys.executable).with_name("llmgw")
    argv = [str(llmgw), "serve", "--config", str(config), "--port", str(port), "--log-level", "warning"]
    proc = spawn("llmgw", argv, port, logdir)
    proc.extra = {"config": str(config), "db": str(db_path), "argv": argv}
    wait_http(proc, "/readyz", 60)
    return proc


def ensure_litellm(log: Path) -> Path:
    """The ``litellm`` CLI in bench/.litellm-venv, creating the venv and installing it if missing."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    print(f"bench: installing litellm[proxy] into {LITELLM_VENV} (log: {log})", file=sys.stderr, flush=True)
    with open(log, "ab") as fh:
        subprocess.run(["python3", "-m", "venv", str(LITELLM_VENV)], check=True, stdout=fh, stderr=fh)
        pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "--disable-pip-version-check", "litellm[proxy]"]
        subprocess.run(pip, check=True, stdout=fh, stderr=fh, timeout=1800)
    return exe


def litellm_version() -> str:
    try:
        out = subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "show", "litellm"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Version:")), "?")


def start_litellm(logdir: Path, upstream: Proc) -> Proc:
    exe = ensure_litellm(logdir / "litellm-install.log")
    port = free_port()
    config = logdir / "litellm.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {
                        "model_name": MODEL,
                        "litellm_params": {
                            "model": "openai/bench-upstream",
                            "api_base": upstream.url,
                            "api_key": "sk-upstream-bench",
                        },
                    }
                ],
                "general_settings": {"master_key": LITELLM_KEY},
            },
            sort_keys=False,
        )
    )
    argv = [
        str(exe),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    env = {"LITELLM_MASTER_KEY": LITELLM_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    proc = spawn("litellm", argv, port, logdir, env)
    proc.extra = {"config": str(config), "argv": argv, "version": litellm_version()}
    wait_http(proc, "/health/liveliness", 180)
    return proc


def run_load(targets: list[Proc | tuple[str, str]], pids: dict[str, int], phases: str,
             load_args: list[str], out: Path, timeout: float) -> dict[str, Any]:  # fmt: skip
    """Run bench.load in its own process and return its JSON report."""
    argv = [sys.executable, "-m", "bench.load", "--phases", phases, "--out", str(out), *load_args]
    for target in targets:
        name, url = (target.name, target.url) if isinstance(target, Proc) else target
        argv += ["--target", f"{name}={url}", "--model", f"{name}={MODEL}"]
        key = {"llmgw": GATEWAY_KEY, "litellm": LITELLM_KEY}.get(name)
        if key:
            argv += ["--key", f"{name}={key}"]
    for name, pid in pids.items():
        argv += ["--pid", f"{name}={pid}"]
    subprocess.run(argv, check=True, cwd=ROOT, timeout=timeout)
    return json.loads(out.read_text())  # type: ignore[no-any-return]
