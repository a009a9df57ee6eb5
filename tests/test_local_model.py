"""The embedded default upstreams: two llama-servers (SmolLM2-135M-Instruct for chat, Gemma 3 270M for
completion-style prompts), started and stopped by the gateway.

Slow (builds nothing, but loads real models): marked ``slow``; CI runs it.
"""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_KEY, RunningGateway

pytestmark = pytest.mark.slow

#: Gemma's cap in this module: small, so the uncapped case (the whole context) would be obvious
GEMMA_CAP = 12


@pytest.fixture(scope="module")
def local_gw(tmp_path_factory: pytest.TempPathFactory) -> RunningGateway:
    from llmgw.config import load_config

    defaults = load_config()  # the embedded defaults, exactly what `llmgw serve` runs, but:
    db = tmp_path_factory.mktemp("local") / "gw.db"
    storage = defaults.storage.model_copy(update={"url": f"sqlite:///{db}"})
    auth = defaults.auth.model_copy(update={"admin_key": ADMIN_KEY})
    gemma = defaults.providers["local-gemma"].model_copy(update={"default_max_tokens": GEMMA_CAP})
    providers = {**defaults.providers, "local-gemma": gemma}
    gw = RunningGateway(defaults.model_copy(update={"storage": storage, "auth": auth, "providers": providers})).start()
    yield gw
    gw.stop()
    for name in ("local", "local-gemma"):
        llama = gw.gateway.providers[name]
        assert getattr(llama, "process", None) is None, f"{name}'s llama-server is stopped with the gateway"


def test_the_default_chat_model_answers_a_plain_question(local_gw: RunningGateway) -> None:
    # the routes' default model, SmolLM2-135M-Instruct, served with its GGUF's own chat template
    completion = local_gw.client().chat.completions.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=32,
        temperature=0,
    )
    assert "Paris" in (completion.choices[0].message.content or "")
    assert completion.model == "smollm2-135m-instruct"


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


def test_a_request_without_max_tokens_stops_at_the_default_cap(local_gw: RunningGateway) -> None:
    # what every SDK sends by default; the base model would otherwise write until the context is full
    ask = {"model": "gemma-3-270m", "messages": [{"role": "user", "content": "A very long story. Once upon a time"}]}
    completion = local_gw.client().chat.completions.create(**ask, temperature=0)
    assert completion.usage.completion_tokens == GEMMA_CAP
    assert completion.choices[0].finish_reason == "length"
    stream = local_gw.client().chat.completions.create(
        **ask, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == GEMMA_CAP
    # a caller's own limit wins over the cap
    longer = local_gw.client().chat.completions.create(**ask, temperature=0, max_tokens=GEMMA_CAP + 8)
    assert longer.usage.completion_tokens > GEMMA_CAP


def test_the_responses_api_on_the_embedded_model(local_gw: RunningGateway) -> None:
    """``client.responses`` against the model ``llmgw serve`` runs out of the box, streamed and not."""
    client = local_gw.client()
    ask = {"model": "smollm2-135m-instruct", "input": "What is the capital of France?", "temperature": 0}
    response = client.responses.create(**ask, max_output_tokens=32)
    assert "Paris" in response.output_text and response.status in ("completed", "incomplete")
    assert response.usage.output_tokens > 0 and response.model == "smollm2-135m-instruct"
    with client.responses.stream(**ask, max_output_tokens=32) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text and "Paris" in final.output_text
    # a cut answer is incomplete, with the reason
    short = client.responses.create(model="gemma-3-270m", input="A very long story. Once upon a time", temperature=0)
    assert short.status == "incomplete" and short.incomplete_details.reason == "max_output_tokens"
    assert short.usage.output_tokens == GEMMA_CAP


def test_readiness_reports_both_local_servers(local_gw: RunningGateway) -> None:
    import httpx

    checks = httpx.get(f"{local_gw.url}/readyz").json()["checks"]
    assert checks["local"] is True and checks["local-gemma"] is True
