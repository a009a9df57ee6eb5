"""Guard providers (llmgw.guards.providers): the socket for stronger detectors, each against a real local server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from llmgw.config import ConfigError
from llmgw.guards.policy import Combination, ModerationEndpoint, load_policy
from llmgw.guards.providers import Verdict, combine
from llmgw.guards.providers.judge import parse_verdict
from llmgw.guards.providers.moderation_api import ModerationApiProvider
from tests.conftest import RunningGateway
from tests.test_guards_e2e import events
from tests.upstream import FakeUpstream

FLAGGED = "Which tree in the old garden grew the forbidden-fruit?"  # the built-in detector: 0.003
BENIGN = "What is a good recipe for apple pie?"


def ask(gw: RunningGateway, text: str) -> Any:
    return gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": text}])


# --- the combination rules -------------------------------------------------------------------


def test_any_all_and_weighted_combinations() -> None:
    yes, no = Verdict(True, 0.9), Verdict(False, 0.1)
    assert combine(Combination(providers=["a"]), (False, 0.2), {"a": yes}) == (True, 0.9)
    assert combine(Combination(providers=["a"], combine="all"), (False, 0.2), {"a": yes})[0] is False
    assert combine(Combination(providers=["a"], combine="all"), (True, 0.7), {"a": yes})[0] is True
    assert combine(Combination(providers=["a"], builtin=False), (True, 0.9), {"a": no})[0] is False
    weighted = Combination(providers=["a", "b"], combine="weighted", weights={"builtin": 2}, threshold=0.5)
    assert combine(weighted, (False, 0.2), {"a": yes, "b": no}) == (False, pytest.approx(0.35))
    assert combine(weighted, (True, 0.8), {"a": yes, "b": no}) == (True, pytest.approx(0.65))
    # a provider that failed open is absent: the others decide
    assert combine(Combination(providers=["a"], combine="all"), (True, 0.7), {}) == (True, 0.7)


def test_a_policy_naming_an_undefined_provider_or_an_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("injection: {providers: {user: {providers: [nope]}}}\n")
    with pytest.raises(ConfigError, match="unknown guard provider"):
        load_policy(path)
    path.write_text("providers: {m: {kind: openai_moderation, url: http://x/v1, colour: red}}\n")
    with pytest.raises(ConfigError, match="colour"):
        load_policy(path)


# --- OpenAI-compatible moderation endpoint ---------------------------------------------------


def test_moderation_endpoint_verdicts(upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MOD_KEY", "sk-mod-123")
    spec = ModerationEndpoint(kind="openai_moderation", url=upstream.base_url, model="omni", api_key_env="TEST_MOD_KEY")
    upstream.reset()
    verdicts = asyncio.run(ModerationApiProvider("mod", spec).check([FLAGGED, BENIGN], "user"))
    assert [v.flagged for v in verdicts] == [True, False]
    assert verdicts[0].detail == "violence" and verdicts[0].categories["violence"] == 0.97
    assert upstream.moderations == [{"input": [FLAGGED, BENIGN], "model": "omni"}]
    assert upstream.headers[-1]["Authorization"] == "Bearer sk-mod-123"
    # a threshold on the scores, narrowed to categories that are not the flagged one: nothing counts
    narrow = spec.model_copy(update={"threshold": 0.5, "categories": ["harassment"]})
    assert [v.flagged for v in asyncio.run(ModerationApiProvider("mod", narrow).check([FLAGGED], "user"))] == [False]


# --- through the real server -----------------------------------------------------------------

POLICY = """
on_error: {on_error}
providers:
  mod:
    kind: openai_moderation
    url: {url}
    model: omni-moderation-latest
{spec_extra}
injection:
  threshold: 0.5
  action: block
  providers:
    user: {{providers: [mod], combine: {combine}}}
moderation:
  threshold: 0.5
  window_words: 4
  providers: {{providers: [mod], combine: {combine}}}
"""


@pytest.fixture()
def provided(make_gateway: Any, tmp_path: Path, upstream: FakeUpstream) -> Any:
    def make(combine: str = "any", on_error: str = "closed", spec_extra: str = "") -> RunningGateway:
        folder = tmp_path / "guardrails"
        folder.mkdir(exist_ok=True)
        text = POLICY.format(url=upstream.base_url, combine=combine, on_error=on_error, spec_extra=spec_extra)
        (folder / "default.yaml").write_text(text)
        upstream.reset()
        return make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"})

    return make


def test_moderation_endpoint_blocks_a_user_turn_and_the_event_names_it(provided: Any, upstream: FakeUpstream) -> None:
    gw = provided()
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": FLAGGED}])
    assert info.value.body["code"] == "prompt_injection"
    assert upstream.requests == []  # refused before the model was called
    assert upstream.moderations[0]["input"] == [FLAGGED]
    flagged = events(gw, guard="injection:mod")
    assert [(e["verdict"], e["source"], e["detail"]) for e in flagged] == [("flag", "user", "violence")]
    blocked = events(gw, guard="injection", verdict="block")
    assert len(blocked) == 1 and "mod" in blocked[0]["detail"] and blocked[0]["scores"]["provider:mod"] == 0.97
    answer = gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": BENIGN}])
    assert answer.choices[0].message.content
    assert [e["verdict"] for e in events(gw, guard="injection:mod")].count("allow") == 1


def test_moderation_endpoint_stops_an_answer_streamed_or_not(provided: Any, upstream: FakeUpstream) -> None:
    gw = provided()
    upstream.scripts["fruit"] = "Here is the story of the forbidden-fruit and the garden it grew in ."
    messages = [{"role": "user", "content": "Tell me a story #say:fruit"}]
    answer = gw.client().chat.completions.create(model="test-model", messages=messages)
    assert answer.choices[0].finish_reason == "content_filter" and answer.choices[0].message.content is None
    with pytest.raises(openai.APIError):
        text = ""
        for chunk in gw.client().chat.completions.create(model="test-model", messages=messages, stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
    assert "forbidden-fruit" not in text
    blocks = events(gw, guard="moderation", verdict="block")
    assert len({e["request_id"] for e in blocks}) == 2 and all(
        e["detail"] == "violence; providers: mod" for e in blocks
    )
    assert "flag" in {e["verdict"] for e in events(gw, guard="moderation:mod")}


def test_combine_all_needs_the_builtin_detector_too(provided: Any, upstream: FakeUpstream) -> None:
    gw = provided(combine="all")
    answer = gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": FLAGGED}])
    assert answer.choices[0].message.content  # the built-in detector does not agree: let through
    assert [e["verdict"] for e in events(gw, guard="injection:mod")] == ["flag"]


def test_a_failing_provider_fails_closed_or_open(provided: Any, upstream: FakeUpstream) -> None:
    messages = [{"role": "user", "content": "What is the capital of Australia? #mod-status:500"}]
    gw = provided()
    with pytest.raises(openai.InternalServerError) as info:
        gw.client().chat.completions.create(model="test-model", messages=messages)
    assert info.value.status_code == 503 and info.value.body["code"] == "guard_unavailable"
    assert [e["verdict"] for e in events(gw, guard="injection:mod")] == ["error"]
    opened = provided(spec_extra="    on_error: open\n    timeout_s: 0.5")
    assert opened.client().chat.completions.create(model="test-model", messages=messages).choices[0].message.content
    slow = [{"role": "user", "content": "What is the capital of Australia? #mod-sleep:3"}]
    assert opened.client().chat.completions.create(model="test-model", messages=slow).choices[0].message.content
    errors = events(opened, guard="injection:mod", verdict="error")
    assert any("timed out" in e["detail"] for e in errors) and any("500" in e["detail"] for e in errors)


# --- LLM judge through a catalog model -------------------------------------------------------


def test_judge_replies_are_parsed_in_both_forms() -> None:
    assert parse_verdict("safe") == Verdict(False, 0.0)
    unsafe = parse_verdict("unsafe\nS1,S10")
    assert unsafe.flagged and unsafe.score == 1.0 and unsafe.detail == "S1,S10"
    assert parse_verdict(' {"flagged": true, "score": 0.8, "categories": ["injection"]}').detail == "injection"
    assert parse_verdict('```json\n{"verdict": "safe"}\n```').flagged is False
    assert parse_verdict('Verdict: {"flagged": false, "score": 0.1}', "json").score == 0.1
    for bad in ("I think it is fine", '{"score": 0.3}', "{not json"):
        with pytest.raises(ValueError):
            parse_verdict(bad)


JUDGE_POLICY = """
providers:
  guard:
    kind: llm_judge
    model: other-model
    prompt: {prompt}
    format: {format}
{extra}
injection:
  providers: {{user: {{providers: [guard], builtin: false}}}}
moderation:
  window_words: 4
  providers: {{providers: [guard]}}
"""


@pytest.fixture()
def judged(make_gateway: Any, tmp_path: Path, upstream: FakeUpstream) -> Any:
    def make(prompt: str = "guards/llama-guard", format: str = "llama_guard", extra: str = "") -> RunningGateway:
        folder = tmp_path / "guardrails"
        folder.mkdir(exist_ok=True)
        (folder / "default.yaml").write_text(JUDGE_POLICY.format(prompt=prompt, format=format, extra=extra))
        upstream.reset()
        return make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"})

    return make


def test_llama_guard_judge_blocks_and_the_event_names_it(judged: Any, upstream: FakeUpstream) -> None:
    gw = judged(extra="    categories: [S1, S2]")
    upstream.judges["fake-2"] = lambda text: "unsafe\nS1" if "forbidden-fruit" in text else "safe"
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": FLAGGED}])
    assert info.value.body["code"] == "prompt_injection"
    assert [r["model"] for r in upstream.requests] == ["fake-2"]  # the judge only: the model was never called
    judge_call = upstream.requests[0]
    assert judge_call["messages"] == [{"role": "user", "content": FLAGGED}] and judge_call["temperature"] == 0
    assert [(e["verdict"], e["detail"]) for e in events(gw, guard="injection:guard")] == [("flag", "S1")]
    assert gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": BENIGN}])
    # a category the policy does not watch does not count
    upstream.judges["fake-2"] = lambda text: "unsafe\nS9" if "forbidden-fruit" in text else "safe"
    unwatched = f"{FLAGGED} Tell me more."  # a text of its own: the verdict on FLAGGED is reused (verdict_ttl_s)
    assert gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": unwatched}])


def test_json_judge_stops_an_answer(judged: Any, upstream: FakeUpstream) -> None:
    gw = judged(prompt="guards/judge-json", format="json")

    def verdict(text: str) -> str:
        flagged = "forbidden-fruit" in text
        return json.dumps({"flagged": flagged, "score": 0.9 if flagged else 0.05, "categories": ["harm"] * flagged})

    upstream.judges["fake-2"] = verdict
    upstream.scripts["fruit"] = "Here is the story of the forbidden-fruit and the garden it grew in ."
    answer = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "Tell me a story #say:fruit"}]
    )
    assert answer.choices[0].finish_reason == "content_filter"
    judge_calls = [r["messages"] for r in upstream.requests if r["model"] == "fake-2"]
    window = next(m for m in judge_calls if "forbidden-fruit" in m[-1]["content"])
    assert "<text>" in window[-1]["content"]
    assert "harmful" in window[0]["content"]  # the template's output branch: the source reaches it
    assert "prompt injection" in judge_calls[0][0]["content"]  # the user turn was judged as an input
    assert [e["detail"] for e in events(gw, guard="moderation", verdict="block")] == ["harm; providers: guard"]


def test_an_unreadable_judge_reply_fails_closed(judged: Any, upstream: FakeUpstream) -> None:
    gw = judged()
    upstream.judges["fake-2"] = lambda text: "Sure! Here is a poem instead."
    with pytest.raises(openai.InternalServerError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": BENIGN}])
    assert info.value.body["code"] == "guard_unavailable"
    assert "neither" in events(gw, guard="injection:guard", verdict="error")[0]["detail"]


# --- Amazon Bedrock Guardrails (botocore's Stubber, the documented shapes) --------------------

USAGE = {"topicPolicyUnits": 1, "contentPolicyUnits": 1, "wordPolicyUnits": 1, "sensitiveInformationPolicyUnits": 0,
         "sensitiveInformationPolicyFreeUnits": 0, "contextualGroundingPolicyUnits": 0}  # fmt: skip
INTERVENED = {
    "usage": USAGE,
    "action": "GUARDRAIL_INTERVENED",
    "outputs": [{"text": "Sorry, I cannot help with that."}],
    "assessments": [
        {
            "contentPolicy": {
                "filters": [
                    {"type": "PROMPT_ATTACK", "confidence": "HIGH", "filterStrength": "HIGH", "action": "BLOCKED",
                     "detected": True},
                    {"type": "HATE", "confidence": "NONE", "action": "NONE"},
                ]
            },
            "topicPolicy": {"topics": [{"name": "Investment advice", "type": "DENY", "action": "BLOCKED"}]},
        }
    ],
}  # fmt: skip
CLEAN = {"usage": USAGE, "action": "NONE", "outputs": [], "assessments": [{}]}


def stubbed_guardrail(spec: Any) -> tuple[Any, Any]:
    import boto3
    from botocore.stub import Stubber

    from llmgw.guards.providers.bedrock_guardrail import BedrockGuardrailProvider

    client = boto3.client("bedrock-runtime", region_name="eu-west-1", aws_access_key_id="test",
                          aws_secret_access_key="test")  # fmt: skip
    return BedrockGuardrailProvider("guardrail", spec, client=client), Stubber(client)


def guardrail_call(text: str, source: str = "INPUT") -> dict[str, Any]:
    return {"guardrailIdentifier": "gr-abc123", "guardrailVersion": "3", "source": source,
            "content": [{"text": {"text": text}}]}  # fmt: skip


def test_bedrock_guardrail_verdicts_from_apply_guardrail() -> None:
    from llmgw.guards.policy import BedrockGuardrail

    spec = BedrockGuardrail(
        kind="bedrock_guardrail", guardrail_id="gr-abc123", guardrail_version="3", max_concurrency=1
    )
    provider, stub = stubbed_guardrail(spec)
    stub.add_response("apply_guardrail", INTERVENED, guardrail_call(FLAGGED))
    stub.add_response("apply_guardrail", CLEAN, guardrail_call(BENIGN))
    stub.add_response("apply_guardrail", CLEAN, guardrail_call("an answer window", "OUTPUT"))
    with stub:
        flagged, clean = asyncio.run(provider.check([FLAGGED, BENIGN], "retrieved"))
        (window,) = asyncio.run(provider.check(["an answer window"], "output"))
        stub.assert_no_pending_responses()
    assert flagged.flagged and flagged.score == 1.0 and flagged.detail == "Investment advice,PROMPT_ATTACK"
    assert flagged.categories == {"PROMPT_ATTACK": 0.95, "Investment advice": 1.0}
    assert not clean.flagged and not window.flagged and clean.score == 0.0
    # narrowed to prompt attacks: a guardrail that intervened only for a denied topic does not count
    only_attacks = spec.model_copy(update={"categories": ["PROMPT_ATTACK"]})
    provider, stub = stubbed_guardrail(only_attacks)
    topic_only = {**INTERVENED, "assessments": [INTERVENED["assessments"][0] | {"contentPolicy": {"filters": []}}]}
    stub.add_response("apply_guardrail", topic_only, guardrail_call(FLAGGED))
    with stub:
        (verdict,) = asyncio.run(provider.check([FLAGGED], "user"))
    assert not verdict.flagged and verdict.categories == {"Investment advice": 1.0}


def test_bedrock_guardrail_blocks_through_the_server_and_errors_fail_closed(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    from llmgw.guards.providers import registry

    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(
        "providers:\n  guardrail: {kind: bedrock_guardrail, guardrail_id: gr-abc123, guardrail_version: '3',"
        " region: eu-west-1, max_concurrency: 1}\n"
        "injection: {providers: {user: {providers: [guardrail], builtin: false}}}\n"
    )
    policy = load_policy(folder / "default.yaml")
    provider, stub = stubbed_guardrail(policy.providers["guardrail"])
    key = f"guardrail:{policy.providers['guardrail'].model_dump_json()}"
    registry._BUILT[key] = provider  # the provider the gateway will look up, with its client stubbed
    try:
        upstream.reset()
        gw = make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"})
        stub.add_response("apply_guardrail", INTERVENED, guardrail_call(FLAGGED))
        stub.add_client_error("apply_guardrail", "ThrottlingException", "Rate exceeded", 429)
        with stub:
            with pytest.raises(openai.BadRequestError) as info:
                gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": FLAGGED}])
            assert info.value.body["code"] == "prompt_injection" and upstream.requests == []
            with pytest.raises(openai.InternalServerError) as failed:
                gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": BENIGN}])
            assert failed.value.body["code"] == "guard_unavailable"
        got = {e["verdict"]: e["detail"] for e in events(gw, guard="injection:guardrail")}
        assert got.keys() == {"flag", "error"} and got["flag"] == "Investment advice,PROMPT_ATTACK"
        assert "ThrottlingException" in got["error"]
    finally:
        registry._BUILT.pop(key, None)


# --- a local ONNX sequence classifier (a tiny one the test builds) ----------------------------

VOCAB = ["[UNK]", "[PAD]", "hello", "there", "please", "attack", "now"]


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-label classifier exported with torch.onnx.export, and a WordLevel tokenizer.json:
    mean-pooled 2-d embeddings as logits, where the word "attack" pulls hard to label 1."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(len(VOCAB), 2)
            with torch.no_grad():
                self.emb.weight.copy_(torch.tensor([[5.0, 0.0]] * len(VOCAB)))
                self.emb.weight[VOCAB.index("attack")] = torch.tensor([0.0, 30.0])

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            mask = attention_mask.unsqueeze(-1).to(torch.float32)
            return (self.emb(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    folder = tmp_path_factory.mktemp("prompt-guard")
    ids, mask = torch.tensor([[2, 3, 1]]), torch.tensor([[1, 1, 0]])
    torch.onnx.export(Tiny(), (ids, mask), str(folder / "model.onnx"), input_names=["input_ids", "attention_mask"],
                      output_names=["logits"], dynamo=False,
                      dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}})  # fmt: skip
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


def test_onnx_classifier_labels_and_threshold(tiny_classifier: Path) -> None:
    from llmgw.guards.policy import OnnxClassifier
    from llmgw.guards.providers.onnx_classifier import OnnxClassifierProvider

    spec = OnnxClassifier(kind="onnx_classifier", path=str(tiny_classifier), labels=["BENIGN", "INJECTION"],
                          positive=["INJECTION"])  # fmt: skip
    texts = ["please attack now", "hello there", "hello there please now hello there please"]
    attack, benign, longer = asyncio.run(OnnxClassifierProvider("pg", spec).check(texts, "user"))
    assert attack.flagged and attack.detail == "INJECTION" and attack.score > 0.99
    assert not benign.flagged and benign.score < 0.01 and set(benign.categories) == {"BENIGN", "INJECTION"}
    assert not longer.flagged  # padded in a batch with shorter texts: the mask keeps the padding out
    # the same model with the labels read the other way round: the threshold applies to the positive label
    flipped = spec.model_copy(update={"positive": ["BENIGN"], "threshold": 0.9})
    assert [v.flagged for v in asyncio.run(OnnxClassifierProvider("pg", flipped).check(texts, "user"))] == [
        False, True, True,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="not in labels"):
        OnnxClassifier(kind="onnx_classifier", path="x", labels=["A", "B"], positive=["C"])


def test_onnx_classifier_tokenizer_with_a_fixed_padding_length(tiny_classifier: Path, tmp_path: Path) -> None:
    """A tokenizer.json that pads to a fixed length (sentence-transformers' MiniLM: 128) scores a batch
    mixing texts shorter and longer than that length (padded to the batch's longest, not to 128)."""
    import shutil

    from tokenizers import Tokenizer

    from llmgw.guards.policy import OnnxClassifier
    from llmgw.guards.providers.onnx_classifier import OnnxClassifierProvider

    shutil.copy(tiny_classifier / "model.onnx", tmp_path / "model.onnx")
    tok = Tokenizer.from_file(str(tiny_classifier / "tokenizer.json"))
    tok.enable_padding(pad_id=VOCAB.index("[PAD]"), pad_token="[PAD]", length=4)
    tok.save(str(tmp_path / "tokenizer.json"))
    spec = OnnxClassifier(kind="onnx_classifier", path=str(tmp_path), labels=["BENIGN", "INJECTION"],
                          positive=["INJECTION"])  # fmt: skip
    texts = ["attack", "hello there please now hello there please attack"]
    short, long = asyncio.run(OnnxClassifierProvider("fixed", spec).check(texts, "user"))
    assert short.flagged and short.score > 0.99 and 0.01 < long.score < 0.99


def test_onnx_classifier_source_tags_and_thresholds(tiny_classifier: Path) -> None:
    """One model read per source: a tag put before the text, a threshold of the source's own."""
    from llmgw.guards.policy import OnnxClassifier
    from llmgw.guards.providers.onnx_classifier import OnnxClassifierProvider

    spec = OnnxClassifier(kind="onnx_classifier", path=str(tiny_classifier), labels=["BENIGN", "INJECTION"],
                          positive=["INJECTION"], prefixes={"retrieved": "attack "},
                          source_thresholds={"user": 0.9999999, "tool": 0.2})  # fmt: skip
    provider = OnnxClassifierProvider("tagged", spec)
    (user,) = asyncio.run(provider.check(["hello attack there"], "user"))
    (tool,) = asyncio.run(provider.check(["hello attack there"], "tool"))
    # the same text and score; the user turn's threshold is above it, the tool output's below
    assert user.score == tool.score and 0.2 < tool.score < 0.9999999
    assert tool.flagged and not user.flagged
    # the passage's tag reaches the model: "hello there" read as "attack hello there"
    (plain,) = asyncio.run(provider.check(["hello there"], "user"))
    (tagged,) = asyncio.run(provider.check(["hello there"], "retrieved"))
    assert plain.score < 0.01 and tagged.score > 0.5 and tagged.flagged  # the default threshold for passages


def test_a_local_model_path_is_read_from_the_policy_folder(tmp_path: Path, tiny_classifier: Path) -> None:
    """A relative ``path`` is the policy folder's (a policy shipped with its model works from any
    working directory); an absolute one is kept."""
    folder = tmp_path / "policies"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "tiny").symlink_to(tiny_classifier)
    spec = "{kind: onnx_classifier, path: %s, labels: [BENIGN, INJECTION], positive: [INJECTION]}"
    (folder / "p.yaml").write_text(f"providers:\n  rel: {spec % 'models/tiny'}\n  abs: {spec % tiny_classifier}\n")
    policy = load_policy(folder / "p.yaml")
    assert policy.providers["rel"].path == str(folder / "models" / "tiny")  # type: ignore[union-attr]
    assert policy.providers["abs"].path == str(tiny_classifier)  # type: ignore[union-attr]
    from llmgw.guards.providers.onnx_classifier import OnnxClassifierProvider

    (verdict,) = asyncio.run(OnnxClassifierProvider("rel", policy.providers["rel"]).check(["attack"], "user"))  # type: ignore[arg-type]
    assert verdict.flagged


def test_onnx_classifier_weighted_with_the_builtin_through_the_server(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream, tiny_classifier: Path
) -> None:
    from llmgw.guards.providers import registry

    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(
        f"providers:\n  pg: {{kind: onnx_classifier, path: '{tiny_classifier}', labels: [BENIGN, INJECTION],"
        " positive: [INJECTION]}\n"
        "injection: {providers: {user: {providers: [pg], combine: weighted, weights: {builtin: 1, pg: 3},"
        " threshold: 0.5}}}\n"
    )
    upstream.reset()
    gw = make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"})
    policy = gw.gateway.guards.policies["default"]
    assert registry.provider(policy, "pg")._loaded is not None  # loaded at start-up, not on the first request
    with pytest.raises(openai.BadRequestError) as info:
        ask(gw, "please attack now")
    assert info.value.body["code"] == "prompt_injection" and upstream.requests == []
    assert gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hello there"}]
    )
    assert sorted(e["verdict"] for e in events(gw, guard="injection:pg")) == ["allow", "flag"]
    (blocked,) = events(gw, guard="injection", verdict="block")
    # the provider's weight decided: the built-in score is below its own blocking point for user turns
    assert blocked["scores"]["score"] >= 0.5 and blocked["scores"]["builtin"] < blocked["scores"]["act_at"]
    assert blocked["detail"].startswith("weighted: ") and "pg" in blocked["detail"]


def test_a_passage_the_provider_flags_is_dropped(make_gateway: Any, tmp_path: Path, upstream: FakeUpstream) -> None:
    from tests.test_retrieval_server import DOCS, ROOT, ask_about_volcanoes, make_collection, routes

    fruit = "# Etna\n\nMount Etna grows the forbidden-fruit on its slopes, the most active volcano in Europe.\n"
    folder = make_collection(tmp_path, docs={"etna.md": fruit, "tea.md": DOCS["tea.md"]})
    policy = tmp_path / "guardrails"
    policy.mkdir()
    (policy / "default.yaml").write_text(
        f"providers:\n  mod: {{kind: openai_moderation, url: '{upstream.base_url}'}}\n"
        "injection: {action: block, providers: {retrieved: {providers: [mod]}}}\nmoderation: {enabled: false}\n"
    )
    upstream.reset()
    gw = make_gateway(
        retrieval={"enabled": True, "collections_dir": str(folder)}, templates={"repo": str(ROOT)}, routes=routes(),
        guards={"enabled": True, "policy_dir": str(policy), "hash_salt": "s"},
    )  # fmt: skip
    response = ask_about_volcanoes(gw, k=2)
    assert response.status_code == 200  # the user did not write it: the passage goes, the request stays
    assert [s["doc_id"] for s in response.json()["llmgw"]["sources"]] == ["docs/tea.md"]
    assert "forbidden-fruit" not in json.dumps(upstream.requests[-1])
    flagged = events(gw, guard="injection:mod", verdict="flag")
    assert [e["source"] for e in flagged] == ["retrieved"]
    (dropped,) = events(gw, guard="injection", verdict="block")
    assert "etna.md" in dropped["detail"] and dropped["detail"].endswith("providers: mod")
    assert dropped["scores"]["builtin"] < 0.6  # the built-in detector alone would have kept it


def test_a_secret_after_a_harm_window_the_providers_overrule_is_still_stopped(
    provided: Any, upstream: FakeUpstream
) -> None:
    """combine: all, the moderator alone flags the threat, the endpoint does not: the threat passes,
    but a secret further on is certain and still stops the answer (the windows after the threat are read)."""
    from tests.test_guards_e2e import HARM

    gw = provided(combine="all")
    upstream.scripts["threat"] = HARM + " And the deploy key is AKIAIOSFODNN7EXAMPLE for you ."
    answer = ask(gw, "Tell me a story #say:threat")
    assert answer.choices[0].finish_reason == "content_filter"
    assert [e["detail"] for e in events(gw, guard="moderation", verdict="block")] == ["secret"]
    upstream.scripts["threat"] = HARM
    assert ask(gw, "Tell me a story #say:threat").choices[0].message.content == HARM


def test_a_tool_output_the_provider_flags_is_stripped(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(
        f"providers:\n  mod: {{kind: openai_moderation, url: '{upstream.base_url}'}}\n"
        "injection: {action: strip, providers: {tool: {providers: [mod]}}}\nmoderation: {enabled: false}\n"
    )
    upstream.reset()
    gw = make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "s"})
    call = {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": BENIGN},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Result: " + FLAGGED},
    ]
    assert gw.client().chat.completions.create(model="test-model", messages=messages).choices[0].message.content
    sent = upstream.requests[-1]["messages"]
    assert sent[2]["content"] == "[removed by llmgw: suspected prompt injection]" and sent[0]["content"] == BENIGN
    assert [m["input"] for m in upstream.moderations] == [["Result: " + FLAGGED]]  # user turns are not sent to it
    assert [(e["verdict"], e["source"]) for e in events(gw, guard="injection:mod")] == [("flag", "tool")]
