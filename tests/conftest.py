"""Fixtures: a fake upstream and real gateway servers on free ports, driven by the openai SDK."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import httpx
import openai
import psycopg
import pytest
import redis
import uvicorn
from psycopg import sql

from llmgw.api.front import read_timed_out
from llmgw.app import create_app
from llmgw.config import Config, parse_config
from llmgw.gateway import Gateway
from llmgw.http_protocol import CoalescingHttpToolsProtocol
from tests.anthropic_upstream import AnthropicUpstream
from tests.browser import chromium  # noqa: F401  (the headless browser fixture, for any test)
from tests.upstream import FakeUpstream

ADMIN_KEY = "sk-admin-test-0123456789"
PG_BASE = os.environ.get("LLMGW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningGateway:
    """A real uvicorn server in a thread, serving one :class:`Gateway`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.gateway = Gateway(config)
        self.port = free_port()
        app = create_app(config, self.gateway)
        self.pipeline = app.state.pipeline
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                loop="asyncio",
                http=CoalescingHttpToolsProtocol.with_read_timeout(
                    config.server.request_read_timeout_s, read_timed_out
                ),
            )  # as `llmgw serve` runs it
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="gateway")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RunningGateway:
        self.thread.start()
        # a bound, not a timing: loading Presidio and the models took over 90 s on a 2-core machine
        # busy with other work (it failed a guarded test's start-up); pytest's own timeout is 300 s
        deadline = time.monotonic() + 240
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("gateway did not start: its thread ended (see the log)")
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not start within 240 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def client(self, api_key: str = ADMIN_KEY, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, **kwargs)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)

    def flush(self) -> None:
        self.gateway.writer.flush()

    def create_key(self, **spec: Any) -> dict[str, Any]:
        with self.admin() as admin:
            response = admin.post("/admin/keys", json={"name": "test", **spec})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def rows(self, **filters: Any) -> list[dict[str, Any]]:
        self.flush()
        with self.admin() as admin:
            return admin.get("/admin/requests", params={"limit": 1000, **filters}).json()["data"]  # type: ignore[no-any-return]


def base_config(upstream_url: str, db_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "auth": {"admin_key": ADMIN_KEY},
        "storage": {"url": db_url, "flush_interval_s": 0.05},
        "providers": {
            "up": {
                "type": "openai",
                "base_url": upstream_url,
                "api_key": "sk-upstream-secret",
                "max_retries": 2,
                "backoff_base_s": 0.01,
                "read_timeout_s": 5,
            },
            "down": {
                "type": "openai",
                "base_url": "http://127.0.0.1:9/v1",
                "max_retries": 1,
                "backoff_base_s": 0.01,
                "connect_timeout_s": 1,
            },
        },
        "models": {
            "test-model": {
                "provider": "up",
                "upstream_id": "fake-1",
                "context_window": 4096,
                "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                "capabilities": ["chat", "streaming", "tools", "json_mode"],
            },
            "other-model": {"provider": "up", "upstream_id": "fake-2"},
            "dead-model": {"provider": "down", "upstream_id": "nothing"},
            "up-embed": {
                "provider": "up",
                "upstream_id": "fake-embed",
                "kind": "embedding",
                "capabilities": ["embeddings"],
            },
        },
        "routes": {
            "default": {"default_model": "test-model"},
            "narrow": {"models": ["other-model"]},
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture()
def make_gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Callable[..., RunningGateway]]:
    running: list[RunningGateway] = []

    def make(db_url: str | None = None, **overrides: Any) -> RunningGateway:
        url = db_url or f"sqlite:///{tmp_path}/gw-{len(running)}.db"
        config = parse_config(base_config(upstream.base_url, url, **overrides))
        gw = RunningGateway(config).start()
        running.append(gw)
        return gw

    upstream.reset()
    yield make
    for gw in running:
        gw.stop()


@pytest.fixture()
def gw(make_gateway: Callable[..., RunningGateway]) -> RunningGateway:
    return make_gateway()


@pytest.fixture(scope="module")
def anthropic_upstream() -> Iterator[AnthropicUpstream]:
    server = AnthropicUpstream().start()
    yield server
    server.stop()


@pytest.fixture()
def native_gw(make_gateway: Callable[..., RunningGateway], anthropic_upstream: AnthropicUpstream) -> RunningGateway:
    """A gateway whose only model, ``claude``, is served by the native ``anthropic`` provider."""
    anthropic_upstream.requests.clear()
    anthropic_upstream.headers.clear()
    provider = {"type": "anthropic", "base_url": anthropic_upstream.base_url, "api_key": "sk-ant-up",
                "max_retries": 1, "backoff_base_s": 0.01, "default_max_tokens": 333}  # fmt: skip
    price = {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cached_input_per_mtok": 0.3}
    capabilities = ["chat", "streaming", "tools", "json_mode"]
    return make_gateway(
        providers={"claude": provider},
        models={"claude": {"provider": "claude", "upstream_id": "claude-up-1", "capabilities": capabilities,
                           "price": price}},
        routes={"default": {"default_model": "claude"}},
    )  # fmt: skip


# --- prompt template repositories ---------------------------------------------------------

GREETER = """\
description: greets
variables:
  name: {{type: string, example: Ada}}
  times: {{type: integer, default: 1}}
  mood: {{type: string, enum: [calm, loud], default: calm}}
combine: {combine}
messages:
  - role: system
    content: "{system}"
"""


class PromptRepo:
    """A throwaway git repository of templates."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "t@example.com")
        self.git("config", "user.name", "t")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.root), *args], check=True, capture_output=True, text=True).stdout

    def write(self, path: str, text: str) -> None:
        file = self.root / "prompts" / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def tag(self, name: str, commit: str) -> None:
        self.git("tag", "-f", name, commit)

    def greeter(self, system: str, combine: str = "prepend") -> None:
        self.write("greeter.yaml", GREETER.format(system=system, combine=combine))

    def two_versions(self) -> tuple[str, str]:
        """``greeter`` tagged ``v1`` (system "control prompt") and ``v2`` ("candidate prompt")."""
        self.write("greeter.yaml", "messages:\n  - {role: system, content: control prompt}\n")
        v1 = self.commit()
        self.tag("v1", v1)
        self.write("greeter.yaml", "messages:\n  - {role: system, content: candidate prompt}\n")
        v2 = self.commit()
        self.tag("v2", v2)
        return v1, v2


@pytest.fixture()
def repo(tmp_path: Path) -> PromptRepo:
    root = tmp_path / "prompts-repo"
    root.mkdir()
    return PromptRepo(root)


@pytest.fixture()
def tgw(make_gateway: Callable[..., RunningGateway], repo: PromptRepo) -> Callable[..., RunningGateway]:
    def make(**overrides: Any) -> RunningGateway:
        templates = {"enabled": True, "repo": str(repo.root), "refresh_s": 0.05, "labels": {"production": "release"}}
        return make_gateway(templates=templates, **overrides)

    return make


# --- databases ---------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_schema(prefix: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL test database, dropped afterwards; skipped when PostgreSQL is
    not reachable, failed instead under ``LLMGW_REQUIRE_POSTGRES``."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        conn = psycopg.connect(PG_BASE, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("LLMGW_REQUIRE_POSTGRES"):
            pytest.fail(f"LLMGW_REQUIRE_POSTGRES is set and PostgreSQL is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_BASE}: {exc}")
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        conn.close()


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh schema in the PostgreSQL test database, dropped afterwards."""
    with fresh_schema("llmgw_test") as schema:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/t.db"
    return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]


#: the shared Redis of the machine (never flushed: tests use a key prefix of their own)
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture()
def redis_prefix() -> Iterator[str]:
    """A key prefix of the test's own in the shared Redis, its keys deleted afterwards; skipped
    without Redis unless ``LLMGW_REQUIRE_REDIS`` is set (CI), where that is a failure."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        if os.environ.get("LLMGW_REQUIRE_REDIS"):
            raise
        pytest.skip(f"Redis not reachable: {exc}")
    prefix = f"llmgw-test:{uuid.uuid4().hex[:8]}:"
    yield prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture()
def guarded(make_gateway: Callable[..., RunningGateway], tmp_path: Path) -> Callable[..., RunningGateway]:
    """A gateway with the guards on under one policy written for the test (``guarded(policy_yaml)``)."""

    def make(policy: str, **overrides: Any) -> RunningGateway:
        folder = tmp_path / "guardrails"
        folder.mkdir(exist_ok=True)
        (folder / "default.yaml").write_text(policy)
        return make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"}, **overrides)

    return make
