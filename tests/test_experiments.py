"""Online A/B tests over template versions: assignment, recording, feedback and the report."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from llmgw.config import ArmConfig, ExperimentConfig
from llmgw.templates.experiments import assign
from tests.conftest import ADMIN_KEY
from tests.test_templates import PromptRepo, repo, tgw  # noqa: F401  (fixtures)

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


def experiment_gateway(tgw: Any, repo: PromptRepo, **exp: Any) -> tuple[Any, str, str]:  # noqa: F811
    repo.write("greeter.yaml", "messages:\n  - {role: system, content: control prompt}\n")
    v1 = repo.commit()
    repo.tag("v1", v1)
    repo.write("greeter.yaml", "messages:\n  - {role: system, content: candidate prompt}\n")
    v2 = repo.commit()
    repo.tag("v2", v2)
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
    return tgw(experiments=experiments), v1, v2


def test_experiment_through_the_gateway(tgw: Any, repo: PromptRepo, upstream: Any) -> None:  # noqa: F811
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


def test_feedback_validation(tgw: Any, repo: PromptRepo) -> None:  # noqa: F811
    gw, _, _ = experiment_gateway(tgw, repo)
    url = f"{gw.url}/v1/feedback"
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    assert httpx.post(url, json={"request_id": "r", "score": 1}).status_code == 401
    for body in ({"request_id": "r"}, {"score": 1}, {"request_id": "r", "score": "high"}, {"request_id": "r", "x": 1}):
        response = httpx.post(url, json=body, headers=auth)
        assert response.status_code == 400, body
        assert response.json()["error"]["type"] == "invalid_request_error"
    response = httpx.post(url, json={"request_id": "r", "score": 0.5, "label": "up"}, headers=auth)
    assert response.status_code == 201 and response.json()["id"].startswith("fb_")


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
