"""Eval suites: checks, a run through a real gateway, the answer cache, resuming, and the CI gate."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmgw.cli import main
from llmgw.evals.checks import evaluate
from llmgw.evals.suite import Check
from tests.conftest import ADMIN_KEY, RunningGateway

CASES = [{"id": f"c{i}", "input": f"#echo the answer is {i}", "expected": f"answer is {i}"} for i in range(24)]


def write_suite(tmp_path: Path, variants: list[dict[str, Any]], **extra: Any) -> Path:
    suite = {"dataset": {"inline": CASES}, "variants": variants, "checks": [{"type": "contains"}], **extra}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def run(
    gw: RunningGateway, suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, Any]:
    """``llmgw eval run`` against the gateway; the run report."""
    report = tmp_path / "report.json"
    args = ["eval", "run", str(suite), "--url", gw.url, "--key", ADMIN_KEY, "--out", str(tmp_path / "out")]
    code = main([*args, "-o", str(report), "--quiet", *extra])
    assert code == 0, capsys.readouterr().err
    return json.loads(report.read_text())


def test_checks() -> None:
    ok = {"status": 200, "output": 'Sure: {"total": 41.5} (about 42)', "latency_ms": 120}
    case = {"expected": "41.5"}
    assert evaluate(Check(type="contains"), ok, case).passed
    assert evaluate(Check(type="numeric", value=42, tolerance=0.6), ok, case).passed
    assert not evaluate(Check(type="numeric", value=40), ok, case).passed
    assert evaluate(Check(type="regex", value=r"total.*\d"), ok, case).passed
    assert not evaluate(Check(type="json_valid"), ok, case).passed
    schema = {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}
    good = {"status": 200, "output": '```json\n{"total": 3}\n```'}
    assert evaluate(Check(type="json_schema", value=schema), good, case).passed
    assert not evaluate(
        Check(type="json_schema", value=schema), {"status": 200, "output": '{"total": "3"}'}, case
    ).passed
    assert evaluate(Check(type="max_latency_ms", value=200), ok, case).passed
    blocked = {"status": 400, "error_code": "prompt_injection", "output": ""}
    assert evaluate(Check(type="blocked", value=["prompt_injection"]), blocked, case).passed
    assert not evaluate(Check(type="contains"), blocked, case).passed  # an error never passes a content check
    similar = evaluate(
        Check(type="similarity", threshold=0.7),
        {"status": 200, "output": "The cat sat on the mat."},
        {"expected": "A cat was sitting on the mat."},
    )
    assert similar.passed and 0.7 < similar.score <= 1.0


def test_a_broken_candidate_fails_the_gate_and_an_equal_one_passes(
    make_gateway: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = make_gateway()
    suite = write_suite(
        tmp_path,
        [
            {"name": "base", "model": "test-model"},
            {"name": "same", "model": "other-model"},
            {"name": "broken", "model": "dead-model"},
        ],
    )
    report = run(gw, suite, tmp_path, capsys)
    assert report["variants"]["base"]["pass_rate"] == 1.0 and report["variants"]["broken"]["pass_rate"] == 0.0
    # the dead provider's 503s are errors, counted apart from failed checks, and said on stderr
    assert report["variants"]["broken"]["errors"] == 24 and report["variants"]["base"]["errors"] == 0
    assert report["variants"]["broken"]["error_codes"] == {"upstream_unavailable": 24} and report["errors"] == 24
    assert "ERRORS broken: 24 of 24 calls ended in an error (upstream_unavailable ×24)" in capsys.readouterr().err
    broken = next(c for c in report["comparisons"] if c["variant"] == "broken")
    assert broken["losses"] == 24 and broken["mcnemar_p"] == pytest.approx(2 * 0.5**24)
    assert broken["mcnemar_p_holm"] == pytest.approx(min(1.0, 2 * broken["mcnemar_p"]))  # two comparisons
    assert report["disagreements"] == [c["id"] for c in CASES]
    path = str(tmp_path / "report.json")
    assert main(["eval", "gate", path, "--candidate", "broken"]) == 1
    assert main(["eval", "gate", path, "--candidate", "same"]) == 0
    assert main(["eval", "gate", path, "--candidate", "nope"]) == 2
    out = capsys.readouterr().out
    assert "FAIL broken vs base: not comparable, broken: 24 of 24 calls ended in an error" in out
    assert "ok   same vs base" in out


def test_errors_are_not_a_quality_result(
    make_gateway: Any, upstream: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """120 of 120 calls refused with unknown_route once read "0.0 % vs 0.0 %, p = 1" and passed the gate."""
    gw = make_gateway()
    suite = write_suite(
        tmp_path, [{"name": "a", "model": "test-model", "route": "nope"}, {"name": "b", "model": "test-model"}]
    )
    report = run(gw, suite, tmp_path, capsys)
    assert report["variants"]["a"]["error_codes"] == {"unknown_route": 24} and report["errors"] == 24
    assert main(["eval", "gate", str(tmp_path / "report.json"), "--candidate", "b"]) == 1  # a is the baseline
    assert "not comparable, a: 24 of 24 calls ended in an error (unknown_route ×24)" in capsys.readouterr().out
    path = str(tmp_path / "report.json")
    assert main(["eval", "compare", path, path]) == 0
    assert "a: pass rate 0.0% → 0.0%, score 0.000 → 0.000, ERRORS 24 → 24" in capsys.readouterr().out
    # errors are not cached: once the cause is gone they are asked again, the answers are served from the cache
    again = run(gw, suite, tmp_path, capsys)
    assert (again["calls"], again["fetched"], again["cached"]) == (24, 24, 24)


def test_retries_after_429_are_counted_as_calls(
    make_gateway: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmgw.evals.runner import ATTEMPTS

    gw = make_gateway()
    cases = [{"id": "ok", "input": "#echo fine", "expected": "fine"}, {"id": "busy", "input": "#status:429 x"}]
    variants = [{"name": "a", "model": "test-model"}]
    spec = {"dataset": {"inline": cases}, "variants": variants, "checks": [{"type": "contains"}]}
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump(spec))
    report = run(gw, suite, tmp_path, capsys)
    # one request for "ok", ATTEMPTS for "busy" (each 429 with Retry-After tried again; the last one is an error)
    assert (report["calls"], report["rate_limited"], report["fetched"]) == (1 + ATTEMPTS, ATTEMPTS - 1, 2)
    assert report["variants"]["a"]["error_codes"] == {"upstream_rate_limited": 1}
    assert f"{1 + ATTEMPTS} calls ({ATTEMPTS - 1} of them retries after 429), 2 answers fetched" in (
        capsys.readouterr().out
    )


def test_answers_are_cached_per_gateway(
    make_gateway: Any, upstream: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Answers from one gateway were served to a run of the same suite against another ("0 calls, 8 cached")."""
    first, second = make_gateway(), make_gateway()
    suite = write_suite(tmp_path, [{"name": "a", "model": "test-model"}])
    assert run(first, suite, tmp_path, capsys)["calls"] == 24
    elsewhere = run(second, suite, tmp_path, capsys)  # the same --out, another gateway
    assert (elsewhere["calls"], elsewhere["cached"]) == (24, 0)
    assert run(first, suite, tmp_path, capsys)["cached"] == 24  # each gateway's answers are still its own
    config = {
        "auth": {"admin_key": ADMIN_KEY},
        "providers": {"up": {"type": "openai", "base_url": upstream.base_url}},
        "models": {"test-model": {"provider": "up", "upstream_id": "fake-1"}},
    }
    args = ["eval", "run", str(suite), "--out", str(tmp_path / "out"), "--quiet"]
    capsys.readouterr()
    for name, storage in (("one", "a.db"), ("two", "b.db"), ("one", "a.db")):  # in process: keyed by the config
        (tmp_path / f"{name}.yaml").write_text(
            yaml.safe_dump({**config, "storage": {"url": f"sqlite:///{tmp_path}/{storage}"}})
        )
        assert main([*args, "--config", str(tmp_path / f"{name}.yaml"), "-o", str(tmp_path / f"{name}.json")]) == 0
    out = capsys.readouterr().out
    assert out.count("24 calls, 24 answers fetched, 0 cached") == 2 and "0 calls, 0 answers fetched, 24 cached" in out


def test_an_old_answer_cache_without_gateways_is_dropped(tmp_path: Path) -> None:
    from llmgw.evals.runner import AnswerCache
    from llmgw.evals.suite import Variant

    path = tmp_path / "answers.db"
    old = sqlite3.connect(path)
    old.execute("create table answers (variant text, fingerprint text, case_id text, repeat integer, record text)")
    variant = Variant(name="a", model="m")
    old.execute("insert into answers values ('a', ?, 'c0', 0, '{}')", (variant.fingerprint(),))
    old.commit()
    old.close()
    assert AnswerCache(path, "http://gw").get(variant, "c0", 0) is None  # whose answer it was is unknown


def test_rerun_is_served_from_the_cache_and_an_interrupted_run_resumes(
    make_gateway: Any, upstream: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = make_gateway()
    suite = write_suite(
        tmp_path, [{"name": "a", "model": "test-model"}, {"name": "b", "model": "other-model"}], repeats=2
    )
    first = run(gw, suite, tmp_path, capsys)
    assert (first["calls"], first["cached"]) == (96, 0)
    calls = len(upstream.requests)
    again = run(gw, suite, tmp_path, capsys)
    assert (again["calls"], again["cached"]) == (0, 96) and len(upstream.requests) == calls
    db = sqlite3.connect(tmp_path / "out" / "answers.db")
    db.execute("delete from answers where variant = 'b' and repeat = 1")  # as if stopped half-way
    db.commit()
    resumed = run(gw, suite, tmp_path, capsys)
    assert (resumed["calls"], resumed["cached"]) == (24, 72)
    for name in ("a", "b"):  # the same verdicts (latencies differ: half were measured again)
        assert {k: v for k, v in resumed["variants"][name].items() if not k.startswith("latency")} == {
            k: v for k, v in again["variants"][name].items() if not k.startswith("latency")
        }


def test_in_process_run_uses_the_gateway_config(
    upstream: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "auth": {"admin_key": ADMIN_KEY},
        "storage": {"url": f"sqlite:///{tmp_path}/eval.db"},
        "providers": {"up": {"type": "openai", "base_url": upstream.base_url}},
        "models": {"m": {"provider": "up", "upstream_id": "fake-1"}},
    }
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(config))
    suite = write_suite(tmp_path, [{"name": "only", "model": "m"}])
    report = tmp_path / "r.json"
    assert (
        main(
            [
                "eval",
                "run",
                str(suite),
                "--config",
                str(tmp_path / "gw.yaml"),
                "--out",
                str(tmp_path / "o"),
                "-o",
                str(report),
                "--quiet",
            ]
        )
        == 0
    )
    data = json.loads(report.read_text())
    assert data["variants"]["only"]["pass_rate"] == 1.0 and data["gateway"] == "in process"


def test_suite_errors_name_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"dataset": {"inline": CASES}, "variants": [{"name": "a"}], "checks": [{"type": "fuzzy"}]})
    )
    assert main(["eval", "run", str(bad), "--url", "http://127.0.0.1:9"]) == 2
    assert "checks.0.type" in capsys.readouterr().err
    good = write_suite(tmp_path, [{"name": "a", "model": "m"}])
    assert main(["eval", "run", str(good), "--url", "http://127.0.0.1:9", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the gateway at http://127.0.0.1:9" in err and "Traceback" not in err


def test_retrieval_checks() -> None:
    record = {
        "status": 200,
        "output": "x",
        "sources": ["d1#a-0", "d2#b-0", "d3#c-1"],
        "source_docs": ["d1", "d2", "d3"],
    }
    case = {"relevant": ["d2", "d9"]}
    recall = evaluate(Check(type="recall_at_k", k=2, threshold=0.5), record, case)
    assert recall.passed and recall.score == 0.5
    mrr = evaluate(Check(type="mrr", threshold=0.6), record, case)
    assert not mrr.passed and mrr.score == 0.5
    assert evaluate(Check(type="mrr", threshold=1.0), record, {"relevant": "d1#a-0|zz"}).score == 1.0


def test_html_report_renders_in_headless_chromium(
    make_gateway: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], chromium: str
) -> None:
    import asyncio

    import websockets

    from tests.browser import Tab

    gw = make_gateway()
    cases = [*CASES[:6], {"id": "xss", "input": "#echo <script>alert(1)</script>", "expected": "nothing"}]
    suite = tmp_path / "s.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "dataset": {"inline": cases},
                "checks": [{"type": "contains"}],
                "variants": [{"name": "base", "model": "test-model"}, {"name": "<b>broken</b>", "model": "dead-model"}],
            }
        )
    )
    html = tmp_path / "report.html"
    run(gw, suite, tmp_path, capsys, "--html", str(html))

    async def check() -> None:
        async with websockets.connect(chromium, max_size=None) as ws:
            tab = Tab(ws)
            await tab.call("Page.enable")
            await tab.goto(html.as_uri())
            assert await tab.js("document.querySelectorAll('script, link[href], img[src]').length") == 0
            assert await tab.js("document.querySelectorAll('#variants tr').length") == 3
            assert await tab.js("document.querySelector('#variants tr.bad td').textContent") == "<b>broken</b>"
            assert await tab.js("document.querySelectorAll('#pass-rates rect').length") == 2
            assert await tab.js("document.querySelectorAll('#cost-quality circle').length") == 2
            cells = await tab.js("[...document.querySelectorAll('#wins td')].map(td => td.textContent)")
            assert cells == ["–", "6 / 1 / 0", "0 / 1 / 6", "–"]  # the xss case fails both: a tie
            assert await tab.js("document.querySelectorAll('#disagreements tr').length") == 7  # 6 cases + header
            assert "<script>alert(1)</script>" not in await tab.js("document.body.innerHTML")

    asyncio.run(check())


def test_llm_judge_grades_through_the_gateway_and_reports_its_noise(
    make_gateway: Any, upstream: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream.scripts["four"] = "Grade: 4"
    gw = make_gateway()
    rubric = "#say:four The answer must name the capital."  # the fake judge always answers 'Grade: 4'
    suite = write_suite(
        tmp_path,
        [{"name": "a", "model": "test-model"}],
        checks=[{"type": "judge", "value": rubric, "judge_model": "test-model", "judge_repeats": 3, "threshold": 0.7}],
    )
    before = len(upstream.requests)
    report = run(gw, suite, tmp_path, capsys)
    assert len(upstream.requests) - before == 24 * (1 + 3)  # each answer, then three gradings of it
    judged = [r for r in upstream.requests[before:] if r["messages"][0]["role"] == "system"]
    assert len(judged) == 72 and "Answer: " in judged[0]["messages"][1]["content"]
    assert report["variants"]["a"]["pass_rate"] == 1.0 and report["variants"]["a"]["score"] == pytest.approx(0.75)
    assert report["variants"]["a"]["judge_noise"] == 0.0  # the fake judge never wavers
    again = run(gw, suite, tmp_path, capsys)
    assert again["calls"] == 0 and len(upstream.requests) - before == 96  # gradings are cached with the answers


def test_masked_check_reads_the_guardrail_log_and_the_gate_names_template_versions(
    make_gateway: Any, upstream: Any, repo: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "guardrails"
    policy.mkdir()
    (policy / "default.yaml").write_text(
        "pii:\n  default: {action: allow}\n  entities:\n    EMAIL_ADDRESS: {action: mask, threshold: 0.5}\n"
        "injection: {enabled: false}\nmoderation: {enabled: false}\n"
    )
    repo.write("echo.yaml", "combine: fill_user\nmessages:\n  - {role: user, content: '#echo {{ user_input }}'}\n")
    v1 = repo.commit("echo v1")
    gw = make_gateway(
        guards={"enabled": True, "policy_dir": str(policy), "hash_salt": "s"},
        templates={"enabled": True, "repo": str(repo.root)},
    )
    cases = [
        {"id": "mail", "input": "write to ada@example.com today", "pii": ["EMAIL_ADDRESS"]},
        {"id": "none", "input": "no personal data here", "pii": ["EMAIL_ADDRESS"]},
    ]
    suite = tmp_path / "s.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "dataset": {"inline": cases},
                "checks": [{"type": "masked"}],
                "variants": [
                    {"name": "base", "model": "test-model", "prompt": f"echo@{v1}"},
                    {"name": "head", "model": "test-model", "prompt": "echo"},
                ],
            }
        )
    )
    # a key that may not read the guardrail log: a message before any call, not a traceback after them
    user_key = gw.create_key(name="user")["key"]
    calls = len(upstream.requests)
    args = ["eval", "run", str(suite), "--url", gw.url, "--key", user_key, "--out", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "the `masked` check reads the guardrail log (/admin/guard-events), which needs the admin key" in err
    assert "Traceback" not in err and len(upstream.requests) == calls
    report = run(gw, suite, tmp_path, capsys)
    assert report["variants"]["base"]["passed"] == 1  # the e-mail was masked; the other case had no e-mail to mask
    assert report["variants"]["base"]["prompt_versions"] == [f"echo@{v1}"]
    assert main(["eval", "gate", str(tmp_path / "report.json"), "--candidate", "head"]) == 0
    assert f"base: echo@{v1}" in capsys.readouterr().out


def test_cost_limits_use_the_gateways_cost_and_verdicts_follow_each_case(
    make_gateway: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = make_gateway()
    cases = [
        {"id": "ok", "input": "#echo fine", "expect": "answered"},
        {"id": "bad", "input": "#status:400 x", "expect": "blocked"},
        {"id": "wrong", "input": "#echo fine", "expect": "blocked"},
    ]
    suite = tmp_path / "s.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "dataset": {"inline": cases},
                "variants": [{"name": "a", "model": "test-model"}],
                "checks": [{"type": "verdict"}],
            }
        )
    )
    assert run(gw, suite, tmp_path, capsys)["variants"]["a"]["passed"] == 2
    record = {"status": 200, "output": "x", "cost_usd": 0.00002}
    assert evaluate(Check(type="max_cost_usd", value=0.0001), record, {}).passed
    assert not evaluate(Check(type="max_cost_usd", value=0.00001), record, {}).passed
    db = sqlite3.connect(tmp_path / "out" / "answers.db")
    costs = [json.loads(r).get("cost_usd", 0.0) for (r,) in db.execute("select record from answers")]
    assert sorted(c > 0 for c in costs) == [False, True, True]  # the refused request cost nothing


def test_html_report_labels_are_whole_at_desktop_widths(
    make_gateway: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], chromium: str
) -> None:
    """Pass-rate labels were clipped ("1" for "100.0%") and scatter labels cut at the svg's edge."""
    import asyncio

    import websockets

    from tests.browser import CLIPPED, OUTSIDE_SVG, Tab

    gw = make_gateway()
    variants = [
        {"name": "baseline", "model": "test-model"},
        {"name": "few-shot-with-a-rather-long-variant-name", "model": "other-model"},
        {"name": "broken", "model": "dead-model"},
    ]
    suite = tmp_path / "s.yaml"
    suite.write_text(
        yaml.safe_dump({"dataset": {"inline": CASES[:8]}, "checks": [{"type": "contains"}], "variants": variants})
    )
    html = tmp_path / "report.html"
    run(gw, suite, tmp_path, capsys, "--html", str(html))

    async def check() -> None:
        async with websockets.connect(chromium, max_size=None) as ws:
            tab = Tab(ws)
            await tab.call("Page.enable")
            for width in (1280, 1920):
                await tab.resize(width)
                await tab.goto(html.as_uri())
                await tab.screenshot(tmp_path / f"eval-report-{width}.png")
                assert await tab.js(OUTSIDE_SVG) == [], width
                assert await tab.js(CLIPPED) == [], width
                assert await tab.js("document.documentElement.scrollWidth") <= width
                rates = await tab.js("[...document.querySelectorAll('#pass-rates text.rate')].map(t => t.textContent)")
                assert rates == ["100.0%", "100.0%", "0.0%"]
                # names end before the bars begin; the long one is shortened, whole in its tooltip
                names_end = await tab.js(
                    "Math.max(...[...document.querySelectorAll('#pass-rates text.name')]"
                    ".map(t => t.getBoundingClientRect().right))"
                )
                bars_start = await tab.js("document.querySelector('#pass-rates rect').getBoundingClientRect().left")
                assert names_end <= bars_start
                shown = await tab.js(
                    "[...document.querySelectorAll('#pass-rates text.name')].map(t => [t.lastChild.textContent,"
                    " t.querySelector('title').textContent])"
                )
                assert shown[1] == ["few-shot-with-a-rather-long…", variants[1]["name"]]
                assert "8 call(s) ended in an error" in await tab.js("document.querySelector('#errors').textContent")

    asyncio.run(check())


def test_a_case_too_long_for_the_model_is_its_verdict_not_an_error() -> None:
    """The upstream's own 400 ``context_length_exceeded`` reaches the client with that code since
    2026-12-06 (it was ``upstream_bad_request``, a verdict): it stays a result of the model under
    test, graded as a failed case, not an error counted apart (a model with a smaller window loses
    the case in a comparison)."""
    from llmgw.evals.checks import is_error

    assert not is_error({"status": 400, "error_code": "context_length_exceeded"})
    assert not is_error({"status": 400, "error_code": "upstream_bad_request"})
    assert is_error({"status": 404, "error_code": "unknown_route"})
