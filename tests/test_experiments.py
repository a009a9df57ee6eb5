"""Online A/B tests over template versions: assignment, recording, feedback and the report."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from llmgw.config import ArmConfig, ExperimentConfig
from llmgw.templates.experiments import assign
from tests.conftest import ADMIN_KEY, PromptRepo

SPLIT = ExperimentConfig(
    template="greeter",
    arms=[ArmConfig(name="a", version="v1", weight=70), ArmConfig(name="b", version="v2", weight=30)],
)


def test_assignment_split_within_tolerance_over_10000_users() -> None:
    counts = Counter(assign("exp", SPLIT, f"user-{i}", f"req-{i}").arm.name for i in range(10_000))
    # binomial sd at n=10000, p=0.3 is 46: 4 sd either side
    assert abs(counts["b"] - 3000) < 184, counts


def test_assignment_is_sticky_per_user_and_independent_across_experiments() -> None:
    for i in range(500):
        arms = {assign("exp", SPLIT, f"user-{i}", f"req-{i}-{j}").arm.name for j in range(5)}
        assert len(arms) == 1
    same = sum(
        assign("exp", SPLIT, f"u{i}", "r").arm.name == assign("other", SPLIT, f"u{i}", "r").arm.name
        for i in range(4000)
    )
    assert abs(same - 4000 * (0.7**2 + 0.3**2)) < 150, "a second experiment must not reuse the first's split"


def test_per_request_assignment_without_a_user() -> None:
    arms = Counter(assign("exp", SPLIT, None, f"req-{i}").arm.name for i in range(4000))
    assert 1000 < arms["b"] < 1400


def experiment_gateway(
    tgw: Any, repo: PromptRepo, routes: dict[str, Any] | None = None, **exp: Any
) -> tuple[Any, str, str]:
    v1, v2 = repo.two_versions()
    experiments = {
        "tone": {
            "template": "greeter",
            "arms": [
                {"name": "control", "version": "v1"},
                {"name": "candidate", "version": "v2", "model": "other-model"},
            ],
            "label_scores": {"up": 1, "down": 0},
            **exp,
        }
    }
    return tgw(experiments=experiments, **({"routes": routes} if routes else {})), v1, v2


def test_experiment_through_the_gateway(tgw: Any, repo: PromptRepo, upstream: Any) -> None:
    gw, v1, v2 = experiment_gateway(tgw, repo)
    client = gw.client()
    seen: dict[str, str] = {}
    for i in range(40):
        raw = client.chat.completions.with_raw_response.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], user=f"user-{i % 10}",
            extra_body={"llmgw": {"prompt": "greeter"}},
        )  # fmt: skip
        name, arm = raw.headers["x-llmgw-experiment"].split("=")
        assert name == "tone"
        assert seen.setdefault(f"user-{i % 10}", arm) == arm, "sticky per user"
        commit = raw.headers["x-llmgw-prompt"].split("@")[1]
        assert commit == (v1 if arm == "control" else v2)
        assert raw.headers["x-llmgw-model"] == ("test-model" if arm == "control" else "other-model")
        content = upstream.requests[-1]["messages"][0]["content"]
        assert content == ("control prompt" if arm == "control" else "candidate prompt")
    assert set(seen.values()) == {"control", "candidate"}
    rows = gw.rows()
    assert {(r["experiment"], r["experiment_arm"]) for r in rows} == {("tone", "control"), ("tone", "candidate")}
    # an explicit version opts out of the experiment
    raw = client.chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}], extra_body={"llmgw": {"prompt": "greeter@v1"}}
    )
    assert "x-llmgw-experiment" not in raw.headers


@pytest.mark.parametrize("enabled", [True, False])
def test_a_routes_experiment_runs_while_enabled_and_stops_when_switched_off(
    tgw: Any, repo: PromptRepo, upstream: Any, enabled: bool
) -> None:
    """``routes.<r>.experiment`` assigns arms to requests that name no template; ``enabled: false``
    stops it there too: the experiment's template at the default version (HEAD: the candidate's
    text), the request's own model, nothing recorded."""
    route = {"ab": {"default_model": "test-model", "experiment": "tone"}}
    gw, v1, v2 = experiment_gateway(tgw, repo, routes=route, enabled=enabled)
    client = gw.client()
    arms, models = set(), set()
    for i in range(12):
        raw = client.chat.completions.with_raw_response.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], user=f"user-{i}",
            extra_headers={"x-llmgw-route": "ab"},
        )  # fmt: skip
        arms.add(raw.headers.get("x-llmgw-experiment"))
        models.add(raw.headers["x-llmgw-model"])
        assert raw.headers["x-llmgw-prompt"].split("@")[1] in {v1, v2}
    rows = gw.rows()
    if enabled:
        assert arms == {"tone=control", "tone=candidate"} and models == {"test-model", "other-model"}
        assert {r["experiment"] for r in rows} == {"tone"}
    else:
        assert arms == {None} and models == {"test-model"}
        assert {r["experiment"] for r in rows} == {None}
        assert upstream.requests[-1]["messages"][0]["content"] == "candidate prompt"  # HEAD is v2


def test_feedback_validation(tgw: Any, repo: PromptRepo) -> None:
    gw, _, _ = experiment_gateway(tgw, repo)
    url = f"{gw.url}/v1/feedback"
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    assert httpx.post(url, json={"request_id": "r", "score": 1}).status_code == 401
    for body in ({"request_id": "r"}, {"score": 1}, {"request_id": "r", "score": "high"}, {"request_id": "r", "x": 1}):
        response = httpx.post(url, json=body, headers=auth)
        assert response.status_code == 400, body
        assert response.json()["error"]["type"] == "invalid_request_error"
    response = httpx.post(url, json={"request_id": "r", "score": 0.5, "label": "up"}, headers=auth)
    assert response.status_code == 404  # no such request: once stored as given (201)
    assert response.json()["error"] == {
        "message": "no request 'r' made with this key", "type": "invalid_request_error",
        "code": "request_not_found", "param": "request_id",
    }  # fmt: skip


def test_feedback_names_a_request_of_its_key_queued_or_stored(make_gateway: Any) -> None:
    """The completion's id works as well as the header's; feedback right after the answer (its row
    still queued) is accepted without a race; another key's request is unknown to a tenant."""
    import sqlite3

    gw = make_gateway(storage={"flush_interval_s": 60})  # the writer holds rows until flushed
    owner, stranger = gw.create_key(name="owner"), gw.create_key(name="stranger")
    raw = gw.client(owner["key"]).chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}]
    )
    request_id, completion_id = raw.headers["x-llmgw-request-id"], raw.parse().id
    assert completion_id == f"chatcmpl-{request_id}"
    assert gw.gateway.writer.queued_request(request_id) == (True, owner["id"], None)  # not in the table yet
    url = f"{gw.url}/v1/feedback"

    def send(key: str, rid: str) -> httpx.Response:
        return httpx.post(url, json={"request_id": rid, "score": 1}, headers={"authorization": f"Bearer {key}"})

    queued = send(owner["key"], completion_id)
    assert queued.status_code == 201 and queued.json()["request_id"] == request_id
    assert send(stranger["key"], request_id).status_code == 404
    gw.flush()
    assert gw.gateway.writer.queued_request(request_id) == (False, None, None)  # now only the table knows it
    assert send(owner["key"], request_id).status_code == 201
    assert send(ADMIN_KEY, completion_id).status_code == 201
    assert send(stranger["key"], completion_id).status_code == 404
    assert send(owner["key"], "chatcmpl-0123456789abcdef01234567").status_code == 404
    gw.flush()
    db = sqlite3.connect(gw.config.storage.url.removeprefix("sqlite:///"))
    assert [r for (r,) in db.execute("select request_id from feedback")] == [request_id] * 3  # stored bare


def test_unknown_experiment_and_arm_model_are_config_errors() -> None:
    from llmgw.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "providers": {"p": {"type": "openai", "base_url": "http://x"}},
                "models": {"m": {"provider": "p", "upstream_id": "m"}},
                "routes": {"default": {"experiment": "nope"}},
                "experiments": {
                    "e": {
                        "template": "t",
                        "arms": [{"name": "a", "version": "x", "model": "ghost"}, {"name": "a", "version": "y"}],
                    }
                },
            },
            env={},
        )
    assert sorted(p[0] for p in info.value.problems) == [
        "experiments.e.arms",
        "experiments.e.arms[0].model",
        "routes.default.experiment",
    ]


def test_report_counts_arms_and_compares_feedback(
    tgw: Any, repo: PromptRepo, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import yaml

    from llmgw.cli import main
    from llmgw.stats import welch_t_test

    gw, _, _ = experiment_gateway(tgw, repo, sticky="request")
    owner, stranger = gw.create_key(name="owner"), gw.create_key(name="stranger")
    client = gw.client(owner["key"])
    scores: dict[str, list[float]] = {"control": [], "candidate": []}
    for i in range(60):
        raw = client.chat.completions.with_raw_response.create(
            model="test-model",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"llmgw": {"prompt": "greeter"}},
        )
        arm = raw.headers["x-llmgw-experiment"].split("=")[1]
        request_id = raw.headers["x-llmgw-request-id"]
        if i % 3 == 2:
            continue  # some requests get no feedback
        score = (0.8 if arm == "candidate" else 0.5) + (i % 5) * 0.05
        auth = {"authorization": f"Bearer {owner['key']}"}
        body: dict[str, Any] = {"request_id": request_id, "score": score} if i % 2 else {"request_id": request_id}
        if not i % 2:
            body["label"] = "up" if score > 0.6 else "down"
            score = 1.0 if score > 0.6 else 0.0
        assert httpx.post(f"{gw.url}/v1/feedback", json=body, headers=auth).status_code == 201
        scores[arm].append(score)
        # someone else's opinion of this request is refused, and could not count anyway
        refused = httpx.post(f"{gw.url}/v1/feedback", json={"request_id": request_id, "score": -100},
                             headers={"authorization": f"Bearer {stranger['key']}"})  # fmt: skip
        assert refused.status_code == 404
    gw.flush()
    config = gw.config.model_dump(mode="json", exclude_none=True)
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["experiments", "--config", str(path), "report", "tone", "--json"]) == 0
    report = {a["arm"]: a for a in json.loads(capsys.readouterr().out)["arms"]}
    assert report["control"]["requests"] + report["candidate"]["requests"] == 60
    for arm in ("control", "candidate"):
        assert report[arm]["rated"] == len(scores[arm])
        assert report[arm]["mean"] == pytest.approx(sum(scores[arm]) / len(scores[arm]))
    expected = welch_t_test(scores["candidate"], scores["control"])
    assert report["candidate"]["difference"] == pytest.approx(expected.difference)
    assert report["candidate"]["p_value"] == pytest.approx(expected.p_value)
    assert report["candidate"]["p_holm"] == pytest.approx(expected.p_value), "one comparison: Holm changes nothing"
    assert main(["experiments", "--config", str(path), "report", "tone"]) == 0
    table = capsys.readouterr().out
    assert "candidate" in table and "Welch" in table


def test_a_zero_variance_experiment_makes_no_power_claim(
    tgw: Any, repo: PromptRepo, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every request scored 0.7: the report once read "can only detect differences of ≥ 2.76e-16"."""
    import yaml

    from llmgw.cli import main

    gw, _, _ = experiment_gateway(tgw, repo, sticky="request")
    client = gw.client()
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    rated: Counter[str] = Counter()
    while min(rated["control"], rated["candidate"]) < 3:
        raw = client.chat.completions.with_raw_response.create(
            model="test-model",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"llmgw": {"prompt": "greeter"}},
        )
        rated[raw.headers["x-llmgw-experiment"].split("=")[1]] += 1
        body = {"request_id": raw.headers["x-llmgw-request-id"], "score": 0.7}
        assert httpx.post(f"{gw.url}/v1/feedback", json=body, headers=auth).status_code == 201
    gw.flush()
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(gw.config.model_dump(mode="json", exclude_none=True)))
    assert main(["experiments", "--config", str(path), "report", "tone"]) == 0
    out = capsys.readouterr().out
    assert "e-1" not in out and "can only detect" not in out, out
