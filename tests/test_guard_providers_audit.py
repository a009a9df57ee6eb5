"""Audit of the guard provider socket (llmgw.guards.providers): the failure modes a production user
meets, each through a real gateway where the gateway decides (the local moderation endpoint and judge
of tests/upstream.py, a small scripted endpoint here, botocore's Stubber for Bedrock, a tiny ONNX
classifier built by tests/test_guard_providers.py)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from llmgw.config import ConfigError
from llmgw.guards.policy import load_policy
from llmgw.guards.providers.judge import parse_verdict
from tests.conftest import RunningGateway
from tests.test_guard_providers import (  # noqa: F401  (fixtures)
    BENIGN,
    FLAGGED,
    INTERVENED,
    VOCAB,
    guardrail_call,
    judged,
    provided,
    stubbed_guardrail,
    tiny_classifier,
)
from tests.test_guards_e2e import events
from tests.upstream import FakeUpstream

STORY = "Here is the story of the forbidden-fruit and the garden it grew in ."
NEW_EMAIL = "zed.quill@example.org"  # in an answer only: the request never held it, so nothing masks it


def ask(gw: RunningGateway, text: str, **kwargs: Any) -> Any:
    return gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": text}], **kwargs
    )


def policy_gateway(make_gateway: Any, tmp_path: Path, text: str, **overrides: Any) -> RunningGateway:
    folder = tmp_path / "guardrails"
    folder.mkdir(exist_ok=True)
    (folder / "default.yaml").write_text(text)
    return make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"}, **overrides)


def ready(gw: RunningGateway) -> dict[str, Any]:
    return httpx.get(f"{gw.url}/readyz", timeout=10).json()  # type: ignore[no-any-return]


# --- a moderation endpoint that answers what the test says -----------------------------------


class Scripted(BaseHTTPRequestHandler):
    """``POST /v1/moderations`` answering ``server.answer`` (bytes) as JSON, whatever it was asked."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body: bytes = self.server.answer  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def scripted() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    server.answer = b"{}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def result(score: float, flagged: bool = False) -> dict[str, Any]:
    return {"flagged": flagged, "categories": {"violence": flagged}, "category_scores": {"violence": score}}


def test_a_malformed_moderation_answer_fails_closed_and_never_passes_silently(
    make_gateway: Any, tmp_path: Path, scripted: ThreadingHTTPServer
) -> None:
    """Not JSON, no ``results``, fewer results than texts, a score that is NaN (Python's json reads
    it): each is a provider error (503 when failing closed), never an allowed request. NaN was read
    as a score, and ``NaN >= threshold`` is false: the text passed unchecked."""
    url = f"http://127.0.0.1:{scripted.server_address[1]}/v1"
    gw = policy_gateway(make_gateway, tmp_path,
                        f"providers:\n  mod: {{kind: openai_moderation, url: '{url}', threshold: 0.5}}\n"
                        "injection: {providers: {user: {providers: [mod], builtin: false}}}\n"
                        "moderation: {enabled: false}\n")  # fmt: skip
    scripted.answer = json.dumps({"results": [result(0.01)]}).encode()  # type: ignore[attr-defined]
    assert ask(gw, BENIGN).choices[0].message.content  # a well-formed answer passes
    answers = {
        b"<html>upstream proxy error</html>": "JSONDecodeError",
        json.dumps({"data": []}).encode(): "no `results` list",
        json.dumps({"results": []}).encode(): "0 verdicts for 1 texts",
        json.dumps({"results": [result(float("nan"))]}).encode(): "not a finite number",
    }
    for answer, reason in answers.items():
        scripted.answer = answer  # type: ignore[attr-defined]
        with pytest.raises(openai.InternalServerError) as info:
            ask(gw, f"{BENIGN} ({reason})")  # a text of its own: a verdict on BENIGN is reused
        assert info.value.status_code == 503 and info.value.body["code"] == "guard_unavailable", answer
        assert reason in events(gw, guard="injection:mod", verdict="error")[0]["detail"]


# --- the LLM judge ---------------------------------------------------------------------------


def test_a_json_judge_verdict_word_it_does_not_know_is_an_error_not_a_pass(judged: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    """``{"verdict": "harmful"}``, ``{"flagged": "maybe"}``, ``{"flagged": null}`` were read as "not
    flagged": the docs promise an unreadable reply is an error, never a silent pass."""
    assert parse_verdict('{"verdict": "harmful"}').flagged and parse_verdict('{"flagged": "yes"}').flagged
    assert not parse_verdict('{"flagged": "false"}').flagged and not parse_verdict('{"verdict": "benign"}').flagged
    for unreadable in ('{"flagged": "maybe"}', '{"flagged": null}', '{"verdict": "unclear"}',
                       '{"flagged": true, "score": NaN}'):  # fmt: skip
        with pytest.raises(ValueError):
            parse_verdict(unreadable, "json")
    gw = judged(prompt="guards/judge-json", format="json")
    upstream.judges["fake-2"] = lambda text: '{"verdict": "harmful", "categories": ["jailbreak"]}'
    with pytest.raises(openai.BadRequestError) as blocked:
        ask(gw, FLAGGED)
    assert blocked.value.body["code"] == "prompt_injection"
    upstream.judges["fake-2"] = lambda text: '{"flagged": "maybe"}'
    with pytest.raises(openai.InternalServerError) as failed:
        ask(gw, f"{FLAGGED} Again.")  # a text of its own: the verdict on FLAGGED is reused
    assert failed.value.body["code"] == "guard_unavailable"
    assert [e["verdict"] for e in events(gw, guard="injection:guard")] == ["error", "flag"]


def test_an_unreadable_judge_reply_echoing_an_answer_is_not_quoted_in_the_log(
    judged: Any,  # noqa: F811
    upstream: FakeUpstream,
) -> None:
    """A judge that echoes the answer window it read (holding an e-mail address the request never
    had, so nothing masked it) put the first 60 characters of its reply in the guardrail log."""
    gw = judged()
    upstream.judges["fake-2"] = lambda text: f"The text {text} looks fine to me" if NEW_EMAIL in text else "safe"
    upstream.scripts["mail"] = f"Write to {NEW_EMAIL} for the forms ."
    with pytest.raises(openai.InternalServerError) as info:
        ask(gw, "Where do I send the forms? #say:mail")
    assert info.value.body["code"] == "guard_unavailable"
    (error,) = events(gw, guard="moderation:guard", verdict="error")
    assert "neither 'safe' nor 'unsafe'" in error["detail"]
    assert NEW_EMAIL not in json.dumps(events(gw)) and NEW_EMAIL not in json.dumps(gw.rows())


# --- combination rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "error"),
    [
        ("{providers: [mod], combine: weighted, weights: {mod_typo: 3}}", "do not vote"),
        ("{providers: [mod], combine: weighted, weights: {mod: -1}}", "greater than or equal to 0"),
        ("{providers: [mod], combine: weighted, weights: {mod: 0, builtin: 0}}", "could never flag"),
        ("{providers: [mod], builtin: false, combine: weighted, weights: {builtin: 2}}", "do not vote"),
        ("{providers: [mod, mod]}", "named twice"),
    ],
)
def test_weights_that_cannot_mean_what_they_say_are_rejected_at_load(tmp_path: Path, check: str, error: str) -> None:
    """A weight under a name that does not vote (a typo) left the provider silently at weight 1; a
    negative weight or all weights 0 made a check that could never fire (``sum or 1.0``)."""
    path = tmp_path / "p.yaml"
    path.write_text(
        f"providers: {{mod: {{kind: openai_moderation, url: 'http://127.0.0.1:9/v1'}}}}\n"
        f"injection: {{providers: {{user: {check}}}}}\n"
    )
    with pytest.raises(ConfigError, match=error):
        load_policy(path)
    path.write_text("providers: {builtin: {kind: openai_moderation, url: 'http://127.0.0.1:9/v1'}}\n")
    with pytest.raises(ConfigError, match="reserved"):
        load_policy(path)


def test_combine_all_with_a_provider_failing_open_lets_the_others_decide(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    """``all`` of two providers, one unreachable and failing open (its spec), the policy failing
    closed: the reachable one decides alone, and the row says a guard failed open."""
    gw = policy_gateway(make_gateway, tmp_path,
                        "on_error: closed\nproviders:\n"
                        f"  mod: {{kind: openai_moderation, url: '{upstream.base_url}'}}\n"
                        "  gone: {kind: openai_moderation, url: 'http://127.0.0.1:9/v1', on_error: open}\n"
                        "injection: {providers: {user: {providers: [mod, gone], combine: all, builtin: false}}}\n"
                        "moderation: {enabled: false}\n")  # fmt: skip
    with pytest.raises(openai.BadRequestError) as info:
        ask(gw, FLAGGED)
    assert info.value.body["code"] == "prompt_injection"
    assert ask(gw, BENIGN).choices[0].message.content
    rows = gw.rows()
    assert [r["meta"].get("guards_failed_open") for r in rows] == [True, True]
    assert [e["verdict"] for e in events(gw, guard="injection:gone")] == ["error", "error"]
    with gw.admin() as admin:  # an operator alerts on a provider failing open: traffic it did not read
        metrics = admin.get("/metrics").text
    for labels, value in (('provider="gone",verdict="error"', 2), ('provider="mod",verdict="flag"', 1),
                          ('provider="mod",verdict="allow"', 1)):  # fmt: skip
        assert f'llmgw_guard_provider_verdicts_total{{check="injection",{labels}}} {value}.0' in metrics


# --- the output side -----------------------------------------------------------------------


def test_the_moderation_decision_names_the_provider_that_stopped_the_answer(
    provided: Any,  # noqa: F811
    upstream: FakeUpstream,
) -> None:
    """docs/guardrails.md: the combined decision's ``scores`` add ``builtin`` and ``provider:{name}``
    and its ``detail`` names the provider(s) that flagged; the output side logged the category only."""
    gw = provided()
    upstream.scripts["fruit"] = STORY
    answer = ask(gw, "Tell me a story #say:fruit")
    assert answer.choices[0].finish_reason == "content_filter"
    (block,) = events(gw, guard="moderation", verdict="block")
    assert block["detail"] == "violence; providers: mod"
    assert block["scores"]["provider:mod"] == 0.97 and block["scores"]["builtin"] < 0.5
    assert gw.rows()[0]["meta"]["content_filter"] == "violence"


def test_a_provider_failing_closed_mid_stream_ends_the_stream_with_an_error(
    provided: Any,  # noqa: F811
    upstream: FakeUpstream,
) -> None:
    gw = provided()
    upstream.scripts["late"] = "A calm answer about tea and then #mod-status:500 appears in the text here ."
    text = ""
    with pytest.raises(openai.APIError, match="guard provider 'mod'"):
        for chunk in ask(gw, "Tell me a story #say:late", stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
    assert "#mod-status" not in text  # the window the provider could not read was never sent
    (row,) = gw.rows()
    assert row["error_code"] == "guard_unavailable" and row["status"] == "error"
    assert "error" in {e["verdict"] for e in events(gw, guard="moderation:mod")}


# --- what a failure tells the client and the log ---------------------------------------------


def test_a_provider_error_keeps_url_credentials_and_internal_urls_from_client_and_log(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    """httpx quotes the whole URL (``https://user:token@host``) in its errors: that went to the
    guardrail log, the request row and the client's 503."""
    url = upstream.base_url.replace("http://", "http://guard:s3cr3t-t0ken@")
    gw = policy_gateway(make_gateway, tmp_path,
                        f"providers:\n  mod: {{kind: openai_moderation, url: '{url}'}}\n"
                        "injection: {providers: {user: {providers: [mod]}}}\n"
                        "moderation: {enabled: false}\n")  # fmt: skip
    with pytest.raises(openai.InternalServerError) as info:
        ask(gw, "What is the capital of Australia? #mod-status:500")
    message = info.value.body["message"]
    assert "guard provider 'mod': HTTPStatusError" in message and "127.0.0.1" not in message
    (error,) = events(gw, guard="injection:mod", verdict="error")
    assert "500 Internal Server Error" in error["detail"] and "***@127.0.0.1" in error["detail"]
    assert "s3cr3t" not in json.dumps(events(gw)) + json.dumps(gw.rows())
    with gw.admin() as admin:
        assert 'llmgw_errors_total{code="guard_unavailable"} 1.0' in admin.get("/metrics").text


def test_a_moderation_key_variable_that_is_not_set_is_reported_at_start_up(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``api_key_env`` naming an unset variable sent every text without a key (a hosted endpoint
    answers 401 to each): it is now an error found at start-up, and each request fails closed without
    sending the text anywhere."""
    monkeypatch.delenv("LLMGW_AUDIT_MOD_KEY", raising=False)
    gw = policy_gateway(make_gateway, tmp_path,
                        f"providers:\n  mod: {{kind: openai_moderation, url: '{upstream.base_url}',"
                        " api_key_env: LLMGW_AUDIT_MOD_KEY}\n"
                        "injection: {providers: {user: {providers: [mod]}}}\n"
                        "moderation: {enabled: false}\n")  # fmt: skip
    assert ready(gw)["checks"]["guards"] is False and gw.gateway.load_failed == ["guards"]
    with pytest.raises(openai.InternalServerError) as info:
        ask(gw, BENIGN)
    assert info.value.body["code"] == "guard_unavailable" and upstream.moderations == []
    (error,) = events(gw, guard="injection:mod", verdict="error")
    assert "LLMGW_AUDIT_MOD_KEY is not set" in error["detail"]


# --- Amazon Bedrock Guardrails ---------------------------------------------------------------

BEDROCK_POLICY = """
on_error: closed
providers:
  guardrail: {kind: bedrock_guardrail, guardrail_id: gr-abc123, guardrail_version: '3', region: eu-west-1,
              max_concurrency: 1, on_error: open, timeout_s: 1.5}
  mod: {kind: openai_moderation, url: 'URL'}
injection: {providers: {user: {providers: [guardrail, mod], builtin: false}}}
moderation: {enabled: false}
"""


def test_bedrock_access_denied_fails_open_per_its_spec_while_a_closed_provider_still_refuses(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    """The failure rule is each provider's: the guardrail (``on_error: open``) denied by IAM drops out
    and the endpoint decides; the endpoint (the policy's ``closed``) failing refuses the request."""
    from llmgw.guards.providers import registry

    gw_text = BEDROCK_POLICY.replace("URL", upstream.base_url)
    (tmp_path / "guardrails").mkdir()
    (tmp_path / "guardrails" / "default.yaml").write_text(gw_text)
    policy = load_policy(tmp_path / "guardrails" / "default.yaml")
    provider, stub = stubbed_guardrail(policy.providers["guardrail"])
    key = f"guardrail:{policy.providers['guardrail'].model_dump_json()}"
    registry._BUILT[key] = provider
    denied = "User: arn:aws:iam::123456789012:user/gw is not authorized to perform: bedrock:ApplyGuardrail"
    try:
        gw = policy_gateway(make_gateway, tmp_path, gw_text)
        for _ in range(3):
            stub.add_client_error("apply_guardrail", "AccessDeniedException", denied, 403)
        with stub:
            assert ask(gw, BENIGN).choices[0].message.content  # the endpoint allows it, the guardrail is out
            with pytest.raises(openai.BadRequestError):
                ask(gw, FLAGGED)  # the endpoint flags it alone
            with pytest.raises(openai.InternalServerError) as info:
                ask(gw, "What is the capital of Australia? #mod-status:500")  # the closed one fails
        assert info.value.body["code"] == "guard_unavailable" and "'mod'" in info.value.body["message"]
        assert "123456789012" not in info.value.body["message"]
        errors = events(gw, guard="injection:guardrail", verdict="error")
        assert len(errors) == 3 and all("AccessDeniedException" in e["detail"] for e in errors)
        served, refused, unavailable = sorted(gw.rows(), key=lambda r: r["created_at"])
        assert served["meta"]["guards_failed_open"] is True and refused["meta"]["guards_failed_open"] is True
        assert unavailable["error_code"] == "guard_unavailable"
    finally:
        registry._BUILT.pop(key, None)


def test_bedrock_sockets_time_out_with_the_check(tmp_path: Path) -> None:
    """boto3's own read timeout is 60 s: a check that stopped waiting after its timeout left the call
    holding one of ``max_concurrency`` threads for a minute, so a Bedrock hiccup queued every later
    text behind the stuck calls. The client's sockets now time out with the check."""
    from llmgw.guards.providers import registry

    path = tmp_path / "p.yaml"
    path.write_text(
        "timeout_s: 2.5\nproviders:\n"
        "  own: {kind: bedrock_guardrail, guardrail_id: gr-1, guardrail_version: '1', timeout_s: 1.5}\n"
        "  policy: {kind: bedrock_guardrail, guardrail_id: gr-2, guardrail_version: '1'}\n"
    )
    policy = load_policy(path)
    for name, timeout in (("own", 1.5), ("policy", 2.5)):
        config = registry.provider(policy, name)._client().meta.config  # type: ignore[attr-defined]
        assert (config.connect_timeout, config.read_timeout) == (timeout, timeout)


# --- the local ONNX classifier at start-up --------------------------------------------------

ONNX_POLICY = """
providers:
  pg: {{kind: onnx_classifier, path: '{path}', labels: {labels}, positive: [INJECTION]}}
injection: {{providers: {{user: {{providers: [pg]}}}}}}
moderation: {{enabled: false}}
"""


def onnx_gateway(make_gateway: Any, tmp_path: Path, path: Path, labels: str = "[BENIGN, INJECTION]") -> RunningGateway:
    return policy_gateway(make_gateway, tmp_path, ONNX_POLICY.format(path=path, labels=labels))


def test_a_missing_onnx_model_is_named_at_start_up_and_requests_fail_closed(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """The tokenizers library says only "No such file or directory (os error 2)": which provider,
    which folder? The error now names both, at start-up and in each refused request's event."""
    missing = tmp_path / "models" / "prompt-guard-2"
    gw = onnx_gateway(make_gateway, tmp_path, missing)
    assert ready(gw)["checks"]["guards"] is False and gw.gateway.load_failed == ["guards"]
    assert f"guard provider 'pg': no tokenizer.json in {missing}" in caplog.text
    with pytest.raises(openai.InternalServerError) as info:
        ask(gw, BENIGN)
    assert info.value.status_code == 503 and info.value.body["code"] == "guard_unavailable"
    (error,) = events(gw, guard="injection:pg", verdict="error")
    assert f"guard provider 'pg': no tokenizer.json in {missing}" in error["detail"]
    assert upstream.requests == []


def test_an_onnx_tokenizer_of_another_model_fails_at_start_up_not_per_request(
    make_gateway: Any,
    tmp_path: Path,
    upstream: FakeUpstream,
    tiny_classifier: Path,  # noqa: F811
) -> None:
    """A tokenizer.json with more tokens than the model's vocabulary loaded fine, and the model then
    failed on whichever request held a high token id: found at start-up now."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder = tmp_path / "mismatched"
    folder.mkdir()
    shutil.copy(tiny_classifier / "model.onnx", folder / "model.onnx")
    bigger = VOCAB + [f"word{i}" for i in range(50)]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(bigger)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    gw = onnx_gateway(make_gateway, tmp_path, folder)
    assert ready(gw)["checks"]["guards"] is False and gw.gateway.load_failed == ["guards"]
    with pytest.raises(openai.InternalServerError):
        ask(gw, "hello word42")  # the request that would have found it
    assert "error" in {e["verdict"] for e in events(gw, guard="injection:pg")}


def test_onnx_labels_that_do_not_fit_the_model_fail_at_start_up(
    make_gateway: Any,
    tmp_path: Path,
    upstream: FakeUpstream,
    tiny_classifier: Path,  # noqa: F811
) -> None:
    gw = onnx_gateway(make_gateway, tmp_path, tiny_classifier, labels="[BENIGN, SUSPICIOUS, INJECTION]")
    assert ready(gw)["checks"]["guards"] is False and gw.gateway.load_failed == ["guards"]
    with pytest.raises(openai.InternalServerError):
        ask(gw, "hello there")
    (error,) = events(gw, guard="injection:pg", verdict="error")
    assert "3 labels" in error["detail"] and "(1, 2)" in error["detail"]
    fine = onnx_gateway(make_gateway, tmp_path, tiny_classifier)  # the same model with its two labels
    assert ready(fine)["checks"]["guards"] is True


def test_a_judge_model_missing_from_the_catalog_is_refused_at_start_up(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    """A misspelt judge model was found only on each request (503, or an unguarded pass failing
    open); like a policy map naming no policy, it now stops the gateway from starting. A policy no
    request can get is not held to it (as with a local model this machine does not have)."""
    folder = tmp_path / "guardrails"
    folder.mkdir()
    judge = (
        "providers: {{guard: {{kind: llm_judge, model: {model}}}}}\n"
        "injection: {{providers: {{user: {{providers: [guard]}}}}}}\n"
    )
    (folder / "default.yaml").write_text(judge.format(model="llama-gaurd-3"))
    guards = {"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"}
    with pytest.raises(ConfigError) as info:
        make_gateway(guards=guards)
    assert info.value.problems == [("default.providers.guard.model", "no model 'llama-gaurd-3' in `models`")]
    (folder / "default.yaml").write_text(judge.format(model="other-model"))
    (folder / "lab.yaml").write_text(judge.format(model="llama-gaurd-3"))  # no key, team or route gets it
    upstream.judges["fake-2"] = lambda text: "safe"
    assert ask(make_gateway(guards=guards), BENIGN).choices[0].message.content


def test_watched_categories_the_provider_never_names_are_an_error_not_a_silent_pass(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    """``categories: [Violence]`` against an endpoint answering ``violence``: nothing watched was ever
    in an answer, so every text passed; a Llama Guard judge watching ``s1`` never matched ``S1``."""
    gw = policy_gateway(make_gateway, tmp_path,
                        f"providers:\n  mod: {{kind: openai_moderation, url: '{upstream.base_url}',"
                        " categories: [Violence]}\n"
                        "injection: {providers: {user: {providers: [mod], builtin: false}}}\n"
                        "moderation: {enabled: false}\n")  # fmt: skip
    with pytest.raises(openai.InternalServerError) as info:
        ask(gw, FLAGGED)
    assert info.value.body["code"] == "guard_unavailable"
    (error,) = events(gw, guard="injection:mod", verdict="error")
    assert "none of the watched categories ['Violence']" in error["detail"] and "'violence'" in error["detail"]
    path = tmp_path / "judge.yaml"
    path.write_text(
        "providers: {guard: {kind: llm_judge, model: other-model, format: llama_guard, categories: [s1]}}\n"
    )
    with pytest.raises(ConfigError, match="not Llama Guard codes"):
        load_policy(path)


MASKING_POLICY = """
timeout_s: 30
pii:
  default: {{action: allow}}
  entities: {{EMAIL_ADDRESS: {{action: mask, threshold: 0.5}}}}
providers:
  mod: {{kind: openai_moderation, url: '{url}'}}
injection: {{action: flag, providers: {{user: {{providers: [mod]}}}}}}
moderation: {{window_words: 4, providers: {{providers: [mod]}}}}
"""


@pytest.mark.parametrize("stream", [False, True])
def test_a_third_party_provider_never_reads_the_request_s_own_pii(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream, stream: bool
) -> None:
    """docs: providers read user turns after masking, and answer windows with the request's own PII
    masked again; the client still gets its own address back in the answer."""
    gw = policy_gateway(make_gateway, tmp_path, MASKING_POLICY.format(url=upstream.base_url))
    email = "ada.lovelace@example.com"
    text = f"Please confirm my address {email} is on file #echo"
    if stream:
        answer = "".join(c.choices[0].delta.content or "" for c in ask(gw, text, stream=True) if c.choices)
    else:
        answer = ask(gw, text).choices[0].message.content
    assert email in answer  # restored for the client
    sent = json.dumps(upstream.moderations)
    assert email not in sent and "ada.lovelace" not in sent
    assert len(upstream.moderations) >= 2  # the user turn and the answer's windows were both read
    assert email not in json.dumps(events(gw))


def test_a_route_failing_open_opens_a_provider_its_spec_and_policy_close(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    """``routes.<name>.guard_failure: open`` wins over the provider's ``on_error: closed``, on that
    route only: served, logged as ``error``, ``guards_failed_open`` on the row; other routes refuse."""
    routes = {
        "default": {"default_model": "test-model", "guard_failure": "open"},
        "narrow": {"models": ["other-model"]},
    }
    gw = policy_gateway(make_gateway, tmp_path,
                        f"on_error: closed\nproviders:\n  mod: {{kind: openai_moderation, url: '{upstream.base_url}',"
                        " on_error: closed}\n"
                        "injection: {providers: {user: {providers: [mod]}}}\n"
                        "moderation: {providers: {providers: [mod]}}\n",
                        routes=routes)  # fmt: skip
    failing = "What is the capital of Australia? #mod-status:500"
    assert ask(gw, failing).choices[0].message.content
    with pytest.raises(openai.InternalServerError) as info:
        gw.client().chat.completions.create(
            model="other-model",
            messages=[{"role": "user", "content": failing}],
            extra_headers={"x-llmgw-route": "narrow"},
        )
    assert info.value.body["code"] == "guard_unavailable"
    served = min(gw.rows(), key=lambda r: r["created_at"])
    assert served["route"] == "default" and served["meta"]["guards_failed_open"] is True
    assert {e["route"] for e in events(gw, guard="injection:mod", verdict="error")} == {"default", "narrow"}


def test_bedrock_without_aws_credentials_is_reported_at_start_up(
    make_gateway: Any,
    tmp_path: Path,
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No credentials in the AWS chain (no role, no profile, no environment) made every call fail
    with NoCredentialsError, found request by request; start-up now says so, naming the provider."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # not an EC2 instance: no role to ask for
    gw = policy_gateway(make_gateway, tmp_path,
                        "providers:\n  guardrail: {kind: bedrock_guardrail, guardrail_id: gr-nocreds,"
                        " guardrail_version: '1'}\n"
                        "injection: {providers: {user: {providers: [guardrail]}}}\n"
                        "moderation: {enabled: false}\n")  # fmt: skip
    assert ready(gw)["checks"]["guards"] is False and gw.gateway.load_failed == ["guards"]
    assert "guard provider 'guardrail': no AWS credentials" in caplog.text  # the start-up log says which
    with pytest.raises(openai.InternalServerError) as info:
        ask(gw, BENIGN)
    assert info.value.body["code"] == "guard_unavailable"
    (error,) = events(gw, guard="injection:guardrail", verdict="error")
    assert "NoCredentialsError" in error["detail"]


def test_history_already_judged_is_not_sent_to_the_provider_again(
    provided: Any,  # noqa: F811
    upstream: FakeUpstream,
) -> None:
    """Before: every user turn of the history went to the provider again on every request (cost and
    latency grew with the conversation; one Bedrock call per turn ends in timeouts). Verdicts are now
    reused for the spec's ``verdict_ttl_s`` (each turn is still logged with its verdict)."""
    gw = provided()
    history: list[dict[str, Any]] = []
    for turn in ("What is a good recipe for apple pie?", "And for pear tart?", "And for plum cake?"):
        history.append({"role": "user", "content": turn})
        answer = gw.client().chat.completions.create(model="test-model", messages=history)
        history.append({"role": "assistant", "content": answer.choices[0].message.content})
    inputs = [text for body in upstream.moderations for text in body["input"] if "?" in text]
    assert inputs == ["What is a good recipe for apple pie?", "And for pear tart?", "And for plum cake?"]


def test_a_json_judge_category_written_as_free_text_is_not_logged_raw(
    judged: Any,  # noqa: F811
    upstream: FakeUpstream,
) -> None:
    """Category names become the event's ``scores`` keys and ``detail``: a judge naming its category
    ``"shares zed.quill@example.org"`` put an address the request never had into the log."""
    gw = judged(prompt="guards/judge-json", format="json")

    def verdict(text: str) -> str:
        found = NEW_EMAIL in text
        return json.dumps({"flagged": found, "score": 0.9 if found else 0.0,
                           "categories": [f"shares {NEW_EMAIL}", "privacy"] if found else []})  # fmt: skip

    upstream.judges["fake-2"] = verdict
    upstream.scripts["mail"] = f"Write to {NEW_EMAIL} for the forms ."
    answer = ask(gw, "Where do I send the forms? #say:mail")
    assert answer.choices[0].finish_reason == "content_filter"
    (flag,) = [e for e in events(gw, guard="moderation:guard") if e["verdict"] == "flag"]
    assert flag["detail"] == "other,privacy" and set(flag["scores"]) == {"score", "other", "privacy"}
    assert NEW_EMAIL not in json.dumps(events(gw)) and NEW_EMAIL not in json.dumps(gw.rows())


def test_a_misspelt_judge_template_is_named_at_start_up(
    judged: Any,  # noqa: F811
    upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``prompt: guards/llama-gaurd`` was found only by the requests (each one 503): start-up now reads
    every judge's template and says which is missing (``/readyz`` not ready)."""
    gw = judged(prompt="guards/llama-gaurd")
    assert gw.gateway.load_failed == ["guard_judge_templates"] and ready(gw)["checks"]["models"] is False
    assert "guards/llama-gaurd" in caplog.text
    upstream.judges["fake-2"] = lambda text: "safe"
    with pytest.raises(openai.InternalServerError) as info:
        ask(gw, BENIGN)
    assert info.value.body["code"] == "guard_unavailable"
    fine = judged()  # the shipped template
    assert fine.gateway.load_failed == [] and "guard_judge_templates" in fine.gateway.loaded


def test_an_onnx_max_length_beyond_the_model_s_positions_fails_at_start_up(
    make_gateway: Any,
    tmp_path: Path,
    upstream: FakeUpstream,
    tiny_classifier: Path,  # noqa: F811
) -> None:
    """A model with 16 positions under the default ``max_length: 512`` read short texts and failed on
    every long one (per request); start-up now reads ``max_length`` tokens once."""
    import torch

    class Positional(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(len(VOCAB), 2)
            self.pos = torch.nn.Embedding(16, 2)
            with torch.no_grad():  # every text benign: the verdict does not depend on random weights
                self.emb.weight.copy_(torch.tensor([[5.0, 0.0]] * len(VOCAB)))
                self.pos.weight.zero_()

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            positions = torch.arange(input_ids.shape[1]).unsqueeze(0)
            return (self.emb(input_ids) + self.pos(positions)).mean(1)

    folder = tmp_path / "positional"
    folder.mkdir()
    shutil.copy(tiny_classifier / "tokenizer.json", folder / "tokenizer.json")
    ids, mask = torch.tensor([[2, 3, 1]]), torch.tensor([[1, 1, 0]])
    torch.onnx.export(Positional(), (ids, mask), str(folder / "model.onnx"),
                      input_names=["input_ids", "attention_mask"], output_names=["logits"], dynamo=False,
                      dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}})  # fmt: skip
    gw = onnx_gateway(make_gateway, tmp_path, folder)
    assert ready(gw)["checks"]["guards"] is False and gw.gateway.load_failed == ["guards"]
    (tmp_path / "guardrails" / "default.yaml").write_text(
        ONNX_POLICY.format(path=folder, labels="[BENIGN, INJECTION]").replace("positive:", "max_length: 16, positive:")
    )
    fine = make_gateway(guards={"enabled": True, "policy_dir": str(tmp_path / "guardrails"), "hash_salt": "salt"})
    assert ready(fine)["checks"]["guards"] is True
    assert ask(fine, " ".join(["hello"] * 40)).choices[0].message.content  # cut to 16 tokens, read


def test_a_moderation_endpoint_is_called_over_one_kept_connection(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    """Before: a new HTTP client per call, so every guarded request opened a new connection (a new
    TLS handshake to a hosted endpoint) and closed it. Now the calls share one pooled client."""
    gw = policy_gateway(make_gateway, tmp_path,
                        f"providers:\n  mod: {{kind: openai_moderation, url: '{upstream.base_url}'}}\n"
                        "injection: {providers: {user: {providers: [mod], builtin: false}}}\n"
                        "moderation: {enabled: false}\n")  # fmt: skip
    for i in range(4):
        assert ask(gw, f"{BENIGN} ({i})").choices[0].message.content
    peers = upstream.moderation_peers
    assert len(peers) == 4 and None not in peers
    assert len(set(peers)) == 1, f"{len(set(peers))} connections for 4 sequential calls: {peers}"


def test_a_verdict_is_reused_for_its_ttl_and_never_with_ttl_zero() -> None:
    """The memo behind the history test: a verdict is kept per provider spec and source for its
    ``verdict_ttl_s``; 0 keeps nothing; an expired one is read again."""
    from llmgw.guards.providers import Verdict, VerdictMemo

    memo, verdict = VerdictMemo(max_entries=2), Verdict(True, 0.9)
    memo.put("mod:{}", "user", "a text", verdict, ttl=300)
    assert memo.get("mod:{}", "user", "a text") == verdict
    assert memo.get("mod:{}", "retrieved", "a text") is None and memo.get("other:{}", "user", "a text") is None
    memo.put("mod:{}", "user", "never kept", verdict, ttl=0)
    assert memo.get("mod:{}", "user", "never kept") is None
    memo.put("mod:{}", "user", "gone at once", verdict, ttl=1e-9)
    assert memo.get("mod:{}", "user", "gone at once") is None
    memo.put("mod:{}", "user", "second", verdict, ttl=300)
    memo.put("mod:{}", "user", "third", verdict, ttl=300)  # over max_entries: the least recently read goes
    assert memo.get("mod:{}", "user", "a text") is None and memo.get("mod:{}", "user", "third") == verdict
