"""Provider prompt caching and reasoning in the bill, through the real server with the stub upstream:
cached and cache-written input tokens at their own prices, reasoning tokens as output, the same in
the cost header, the request row and the budget, streamed and not; ``cache_control`` blocks reach
the upstream untouched."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from llmgw.errors import UpstreamError
from llmgw.usage import Usage, from_anthropic, read_usage, to_anthropic
from tests.conftest import RunningGateway
from tests.upstream import FakeUpstream

#: an Anthropic-like price list: cache reads a tenth of the input price, writes a quarter more
PRICE = {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cached_input_per_mtok": 0.3, "cache_write_per_mtok": 3.75}

USAGES: dict[str, tuple[dict[str, Any], float]] = {
    # OpenAI: cached tokens and reasoning tokens are parts of prompt and completion tokens
    "openai": (
        {"prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300,
         "prompt_tokens_details": {"cached_tokens": 1500}, "completion_tokens_details": {"reasoning_tokens": 200}},
        (500 * 3.0 + 1500 * 0.3 + 300 * 15.0) / 1e6,
    ),
    # a proxy reporting Anthropic's names at the top level of an OpenAI usage
    "anthropic_names": (
        {"prompt_tokens": 2100, "completion_tokens": 50, "total_tokens": 2150,
         "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 1000},
        (100 * 3.0 + 1000 * 0.3 + 1000 * 3.75 + 50 * 15.0) / 1e6,
    ),
    # Anthropic's own usage, as the anthropic provider translates it
    "anthropic": (
        from_anthropic({"input_tokens": 40, "output_tokens": 60, "cache_read_input_tokens": 3000,
                        "cache_creation_input_tokens": 500}),
        (40 * 3.0 + 3000 * 0.3 + 500 * 3.75 + 60 * 15.0) / 1e6,
    ),
    # a server counting reasoning beside the completion (its total says so): billed as output all the same
    "reasoning_apart": (
        {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 170,
         "completion_tokens_details": {"reasoning_tokens": 50}},
        (100 * 3.0 + 70 * 15.0) / 1e6,
    ),
}  # fmt: skip
EXPECTED_COUNTS = {  # prompt, completion, cached, cache write, reasoning as the row records them
    "openai": (2000, 300, 1500, 0, 200),
    "anthropic_names": (2100, 50, 1000, 1000, 0),
    "anthropic": (3540, 60, 3000, 500, 0),
    "reasoning_apart": (100, 70, 0, 0, 50),
}


@pytest.fixture()
def billed(make_gateway: Any, upstream: FakeUpstream) -> RunningGateway:
    for name, (usage, _) in USAGES.items():
        upstream.usages[name] = usage
    return make_gateway(
        models={
            "claude-ish": {"provider": "up", "upstream_id": "fake-c", "price": PRICE},
            "unpriced-cache": {
                "provider": "up",
                "upstream_id": "fake-u",
                "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
            },
        },
        limits={"enabled": True, "default_key": {"daily_budget_usd": 1000.0}},
    )


def spend(gw: RunningGateway, scope: str) -> float:
    """The budget counter of ``scope`` today (memory store), once the settling task has run."""
    store = gw.gateway.counters.store._store  # the one-process store: a dict of storage objects
    found = [obj for key, obj in list(store.items()) if key.startswith(f"spend:{scope}:")]
    return float(found[0].data.decode()) if found else 0.0


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("case", list(USAGES))
def test_cached_and_reasoning_tokens_are_priced_exactly(billed: RunningGateway, case: str, stream: bool) -> None:
    gw = billed
    expected = USAGES[case][1]
    messages = [{"role": "user", "content": f"a long shared prefix #usage:{case}"}]
    client = gw.client()
    if stream:
        chunks = list(client.chat.completions.create(model="claude-ish", messages=messages, stream=True,
                                                     stream_options={"include_usage": True}))  # fmt: skip
        usage = chunks[-1].usage
    else:
        raw = client.chat.completions.with_raw_response.create(model="claude-ish", messages=messages)
        assert raw.headers["x-llmgw-cost-usd"] == f"{expected:.8f}"
        usage = raw.parse().usage
    # the client sees the upstream's usage as it was reported, details included
    assert usage is not None and usage.prompt_tokens == USAGES[case][0]["prompt_tokens"]
    row = gw.rows()[0]
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-12)
    counts = (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"], row["cache_write_tokens"],
              row["reasoning_tokens"])  # fmt: skip
    assert counts == EXPECTED_COUNTS[case]
    wait_for(lambda: spend(gw, "key:admin") > 0)
    assert spend(gw, "key:admin") == pytest.approx(expected, rel=1e-12)


def test_without_cache_prices_cached_tokens_cost_the_input_price(billed: RunningGateway) -> None:
    """A catalog that does not know the cache's prices never bills a token below the input price."""
    gw = billed
    raw = gw.client().chat.completions.with_raw_response.create(
        model="unpriced-cache", messages=[{"role": "user", "content": "hi #usage:anthropic_names"}]
    )
    expected = (2100 * 2.0 + 50 * 8.0) / 1e6
    assert raw.headers["x-llmgw-cost-usd"] == f"{expected:.8f}"
    assert gw.rows()[0]["cost_usd"] == pytest.approx(expected)


def test_cached_tokens_above_the_prompt_are_cut_to_it(billed: RunningGateway, upstream: FakeUpstream) -> None:
    """An upstream claiming more cached tokens than prompt tokens: the prompt is all it can be."""
    upstream.usages["too_many"] = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
                                   "prompt_tokens_details": {"cached_tokens": 50}}  # fmt: skip
    gw = billed
    raw = gw.client().chat.completions.with_raw_response.create(
        model="claude-ish", messages=[{"role": "user", "content": "hi #usage:too_many"}]
    )
    expected = (10 * 0.3 + 2 * 15.0) / 1e6
    assert raw.headers["x-llmgw-cost-usd"] == f"{expected:.8f}"
    assert gw.rows()[0]["cached_tokens"] == 10


CACHED_PROMPT = [
    {"role": "system", "content": [
        {"type": "text", "text": "You are a patient tutor. " * 20, "cache_control": {"type": "ephemeral"}}]},
    {"role": "user", "content": [
        {"type": "text", "text": "Here is the course book.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "Write to dana.reyes@northwind.example about chapter 2."}]},
]  # fmt: skip
CACHED_TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}},
                 "cache_control": {"type": "ephemeral"}}]  # fmt: skip


@pytest.mark.parametrize("guards", [False, True], ids=["plain", "guarded"])
def test_cache_control_blocks_reach_the_upstream_untouched(
    make_gateway: Any, upstream: FakeUpstream, tmp_path: Path, guards: bool
) -> None:
    overrides: dict[str, Any] = {}
    if guards:  # the input guards rewrite the parts' text (masking) and must leave the rest alone
        folder = tmp_path / "guardrails"
        folder.mkdir()
        (folder / "default.yaml").write_text(
            "pii: {default: {action: allow}, entities: {EMAIL_ADDRESS: {action: mask}}}\n"
            "injection: {enabled: false}\nmoderation: {enabled: false}\n"
        )
        overrides["guards"] = {"enabled": True, "policy_dir": str(folder)}
    gw = make_gateway(**overrides)
    gw.client().chat.completions.create(model="test-model", messages=CACHED_PROMPT, tools=CACHED_TOOLS)
    sent = upstream.requests[-1]
    assert sent["tools"] == CACHED_TOOLS
    assert sent["messages"][0] == CACHED_PROMPT[0]
    parts = sent["messages"][1]["content"]
    assert parts[0] == CACHED_PROMPT[1]["content"][0]
    if guards:
        assert parts[1] == {"type": "text", "text": "Write to <EMAIL_ADDRESS_1> about chapter 2."}
    else:
        assert parts[1] == CACHED_PROMPT[1]["content"][1]


# --- the usage reader itself -------------------------------------------------------------------


def test_read_usage_reads_every_provider_shape() -> None:
    assert read_usage({"prompt_tokens": 10, "completion_tokens": 5}) == Usage(10, 5)
    openai_like = {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4},
                   "completion_tokens_details": {"reasoning_tokens": 3}}  # fmt: skip
    assert read_usage(openai_like) == Usage(10, 5, 4, 0, 3)
    azure_like = {"prompt_tokens": 10, "completion_tokens": 5,
                  "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 6}}  # fmt: skip
    assert read_usage(azure_like) == Usage(10, 5, 4, 6, 0)
    # cache counts beside the prompt, as the total shows: added to it
    apart = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 35, "cache_read_input_tokens": 20}
    assert read_usage(apart) == Usage(30, 5, 20, 0, 0)
    anthropic = {"input_tokens": 7, "output_tokens": 9, "cache_read_input_tokens": 100,
                 "cache_creation_input_tokens": 50}  # fmt: skip
    internal = read_usage(from_anthropic(anthropic))
    assert internal == Usage(157, 9, 100, 50, 0)
    assert to_anthropic(internal) == anthropic


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 1, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": "1"}},
        {"prompt_tokens": 1, "completion_tokens": 1, "completion_tokens_details": []},
        {"prompt_tokens": 1, "completion_tokens": 1, "cache_creation_input_tokens": -2},
    ],
)
def test_malformed_cache_or_reasoning_counts_are_a_protocol_error(usage: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError) as info:
        read_usage(usage)
    assert info.value.code == "upstream_protocol_error"
    with pytest.raises(UpstreamError):
        from_anthropic({"input_tokens": 1.5})


def test_masking_keeps_a_conversation_prefix_byte_identical_across_turns(
    make_gateway: Any, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A provider's prompt cache hits only on an identical prefix: the placeholders of earlier turns
    must come out the same when the conversation grows (numbered in order of first appearance)."""
    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(
        "pii: {default: {action: allow}, entities: {EMAIL_ADDRESS: {action: mask}, PHONE_NUMBER: {action: mask}}}\n"
        "injection: {enabled: false}\nmoderation: {enabled: false}\n"
    )
    gw = make_gateway(guards={"enabled": True, "policy_dir": str(folder)})
    first = [*CACHED_PROMPT, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": '{"who": "ann@corp.example"}'}}]},
        {"role": "tool", "tool_call_id": "t1", "content": '{"phone": "(212) 555-0147"}'}]  # fmt: skip
    second = [*first, {"role": "assistant", "content": "Done."},
              {"role": "user", "content": "Now write to bob@corp.example and ann@corp.example."}]  # fmt: skip
    for messages in (first, second):
        gw.client().chat.completions.create(model="test-model", messages=messages, tools=CACHED_TOOLS)
    before, after = (json.dumps(r["messages"][: len(first)]) for r in upstream.requests)
    assert before == after
    assert "<EMAIL_ADDRESS_2>" in json.dumps(upstream.requests[1]["messages"][-1])
