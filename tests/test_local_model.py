"""The embedded default upstream: llama-server with Gemma 3 270M, started by the gateway.

Slow (builds nothing, but loads a real model): marked ``slow``; CI runs it.
"""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_KEY, RunningGateway

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_gw(tmp_path_factory: pytest.TempPathFactory) -> RunningGateway:
    from llmgw.config import load_config

    defaults = load_config()  # the embedded defaults, exactly what `llmgw serve` runs
    db = tmp_path_factory.mktemp("local") / "gw.db"
    storage = defaults.storage.model_copy(update={"url": f"sqlite:///{db}"})
    auth = defaults.auth.model_copy(update={"admin_key": ADMIN_KEY})
    gw = RunningGateway(defaults.model_copy(update={"storage": storage, "auth": auth})).start()
    yield gw
    gw.stop()
    llama = gw.gateway.providers["local"]
    assert getattr(llama, "process", None) is None, "llama-server is stopped with the gateway"


def test_gemma_answers_non_streamed(local_gw: RunningGateway) -> None:
    completion = local_gw.client().chat.completions.create(
        model="gemma-3-270m",
        messages=[{"role": "user", "content": "Question: What is the capital of France?\nAnswer:"}],
        max_tokens=16,
        temperature=0,
    )
    assert completion.choices[0].message.content
    assert completion.usage.completion_tokens > 0 and completion.usage.prompt_tokens > 0
    assert completion.model == "gemma-3-270m"


def test_gemma_streams_with_usage(local_gw: RunningGateway) -> None:
    stream = local_gw.client().chat.completions.create(
        model="gemma-3-270m",
        messages=[{"role": "user", "content": "Count: one, two, three,"}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    rows = local_gw.rows()
    assert rows[0]["usage_estimated"] is False and rows[0]["ttft_ms"] > 0


def test_readiness_reports_the_local_server(local_gw: RunningGateway) -> None:
    import httpx

    checks = httpx.get(f"{local_gw.url}/readyz").json()["checks"]
    assert checks["local"] is True
