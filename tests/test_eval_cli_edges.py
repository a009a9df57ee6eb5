"""``llmgw eval run|compare|gate`` on bad input and on runs that do not line up (docs/evals.md): each
command runs as a real process (``python -m llmgw``), so a traceback or a wrong exit status is what a
shell or a CI job would see. Bad input is one ``llmgw: ...`` message on stderr naming the file and exit
2; runs over different cases are compared on the cases they share, paired by id and content, and say so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ADMIN_KEY, RunningGateway

ROOT = Path(__file__).resolve().parents[1]
CASES = [{"id": f"c{i}", "input": f"#echo the answer is {i}", "expected": f"answer is {i}"} for i in range(12)]
#: cuts "the answer is 1", "the answer is 10", "the answer is 11" (and 12...) short: those cases fail
PARTIAL = {"stop": ["is 1"]}


def llmgw(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m llmgw ARGV`` in a fresh process, this checkout's code first."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "llmgw", *argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def refused(result: subprocess.CompletedProcess[str], *needles: str, lines: int | None = 1) -> str:
    """Exit 2, nothing on stdout, no traceback, a stderr of ``lines`` lines (None: any) that starts with
    ``llmgw:`` and says each of ``needles``; the message."""
    err = result.stderr
    assert result.returncode == 2, (result.returncode, result.stdout, err)
    assert "Traceback" not in err and result.stdout == "", err
    assert err.startswith("llmgw: "), err
    if lines is not None:
        assert len(err.strip().splitlines()) == lines, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def suite_file(path: Path, cases: list[dict[str, Any]], variants: list[dict[str, Any]]) -> Path:
    path.write_text(
        yaml.safe_dump({"dataset": {"inline": cases}, "variants": variants, "checks": [{"type": "contains"}]})
    )
    return path


def eval_run(gw: RunningGateway, tmp_path: Path, suite: Path, *extra: str) -> dict[str, Any]:
    """``llmgw eval run SUITE`` against the gateway, report to ``<suite>.json``; the report."""
    report = suite.with_suffix(".json")
    args = ["eval", "run", str(suite), "--url", gw.url, "--key", ADMIN_KEY, "--out", str(tmp_path / "out")]
    result = llmgw(*args, "-o", str(report), "--quiet", *extra)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(report.read_text()))


# --- unreadable run reports: compare and gate ------------------------------------------------------

BAD_REPORTS: dict[str, tuple[str | None, str]] = {
    "missing": (None, "no such file"),
    "directory": ("<dir>", "not a file"),
    "empty": ("", "not a run report (empty)"),
    "not JSON": ("run finished: 9 of 12 passed\n", "not a run report (not JSON"),
    "a JSON list": ("[1, 2]", "a JSON list, not an object"),
    "another JSON object": ('{"model": "x", "usage": {}}', "no suite, baseline, variants, comparisons, case_ids"),
}


def bad_report(tmp_path: Path, kind: str) -> Path:
    content, _ = BAD_REPORTS[kind]
    path = tmp_path / "bad-run.json"
    if content == "<dir>":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    return path


def test_compare_and_gate_refuse_a_file_that_is_not_a_run_report_in_one_line_exit_2(
    make_gateway: Any, tmp_path: Path
) -> None:
    good = eval_run(make_gateway(), tmp_path, suite_file(tmp_path / "s.yaml", CASES[:3], [{"name": "base"}]))
    assert good["case_ids"] == ["c0", "c1", "c2"]
    good_path = str(tmp_path / "s.json")
    # as run A too (each kind as run B below)
    missing = tmp_path / "missing.json"
    refused(llmgw("eval", "compare", str(missing), good_path), f"llmgw: {missing}: no such file")
    for kind, (_, problem) in BAD_REPORTS.items():
        folder = tmp_path / kind.replace(" ", "-")
        folder.mkdir()
        path = bad_report(folder, kind)
        refused(llmgw("eval", "compare", good_path, str(path)), f"llmgw: {path}: ", problem)
        # a CI gate on a report that is not there is a usage error (2), not a regression (1)
        refused(llmgw("eval", "gate", str(path), "--candidate", "base"), f"llmgw: {path}: ", problem)


def test_compare_and_gate_refuse_a_truncated_run_report(make_gateway: Any, tmp_path: Path) -> None:
    """A report whose per-case results do not cover its cases (hand-edited, cut short) is not paired."""
    variants = [{"name": "base", "model": "test-model"}, {"name": "cut", "model": "test-model", "params": PARTIAL}]
    report = eval_run(make_gateway(), tmp_path, suite_file(tmp_path / "s.yaml", CASES, variants))
    report["passed"]["cut"] = report["passed"]["cut"][:5]
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(report))
    problem = "variant 'cut' has no pass/fail for each of the 12 cases"
    refused(llmgw("eval", "compare", str(tmp_path / "s.json"), str(cut)), str(cut), problem)
    refused(llmgw("eval", "gate", str(cut), "--candidate", "cut"), str(cut), problem)


# --- compare: runs over different cases ------------------------------------------------------------


def test_compare_of_runs_over_different_cases_pairs_by_id_and_content_on_the_shared_ones_and_says_so(
    make_gateway: Any, tmp_path: Path
) -> None:
    """A has c0..c11; B has c11..c3 (reversed), a new c12, and c2 with another input (same id). Only
    c3..c11 are the same cases in both: the compare says so and reports those 9, paired by id (by
    position, A's c0 would meet B's c12, and c2 would count though it is another question)."""
    gw = make_gateway()
    a_variants = [{"name": "base", "model": "test-model"}, {"name": "tuned", "model": "test-model", "params": PARTIAL}]
    a = eval_run(gw, tmp_path, suite_file(tmp_path / "qa.yaml", CASES, a_variants))
    changed = {**CASES[2], "input": "#echo yes, the answer is 2"}
    b_cases = [{"id": "c12", "input": "#echo the answer is 12", "expected": "answer is 12"}, *CASES[:2:-1], changed]
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b_variants = [{"name": "base", "model": "test-model"}, {"name": "tuned", "model": "test-model"}]
    b = eval_run(gw, tmp_path, suite_file(b_dir / "qa.yaml", b_cases, b_variants))
    assert a["variants"]["tuned"]["pass_rate"] == 0.75 and b["variants"]["tuned"]["pass_rate"] == 1.0
    assert a["case_digests"]["c2"] != b["case_digests"]["c2"] and a["case_digests"]["c3"] == b["case_digests"]["c3"]

    result = llmgw("eval", "compare", str(tmp_path / "qa.json"), str(b_dir / "qa.json"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "llmgw: warning: the runs cover different cases: 9 shared, 2 only in A (c0, c1), 1 only in B (c12), "
        "1 changed between the runs (c2); the variants are compared on the 9 shared cases only\n"
    )
    assert result.stdout.splitlines() == [
        # A's tuned fails c10 and c11 of the shared nine, B's passes them: 2 wins, McNemar p = 0.5
        "base: pass rate 100.0% → 100.0% on the 9 shared cases (B won 0, lost 0, McNemar p 1; "
        "all cases: 100.0% of 12 → 100.0% of 11), score 1.000 → 1.000",
        "tuned: pass rate 77.8% → 100.0% on the 9 shared cases (B won 2, lost 0, McNemar p 0.5; "
        "all cases: 75.0% of 12 → 100.0% of 11), score 0.778 → 1.000",
        f"prompts: {a['prompts_commit']} → {b['prompts_commit']}",
    ]


def test_compare_of_a_report_without_per_case_scores_says_the_score_is_not_compared(
    make_gateway: Any, tmp_path: Path
) -> None:
    """Reports written before per-case scores (and case digests) were kept: pass rates on the shared
    ids, the score left out rather than computed over different cases."""
    gw = make_gateway()
    variants = [{"name": "base", "model": "test-model"}]
    eval_run(gw, tmp_path, suite_file(tmp_path / "a.yaml", CASES, variants))
    old = eval_run(gw, tmp_path, suite_file(tmp_path / "b.yaml", CASES[:4], variants))
    del old["scores"], old["case_digests"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    result = llmgw("eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "old.json"))
    assert result.returncode == 0, result.stderr
    assert "llmgw: warning: the runs are of different suites (suite 'a' → 'b'); 4 cases in common\n" in result.stderr
    assert "4 shared, 8 only in A (c4, c5, c6, c7, c8, ...)" in result.stderr
    assert result.stdout.splitlines()[0] == (
        "base: pass rate 100.0% → 100.0% on the 4 shared cases (B won 0, lost 0, McNemar p 1; "
        "all cases: 100.0% of 12 → 100.0% of 4), score not compared (a report without per-case scores)"
    )


def test_compare_refuses_runs_of_different_suites_with_no_case_in_common(make_gateway: Any, tmp_path: Path) -> None:
    """Two suites whose cases have no ids: both number them 1, 2, 3, but they are other questions.
    Nothing is shared, so there is nothing to compare: exit 2, not a table of unrelated rates."""
    gw = make_gateway()
    variants = [{"name": "base", "model": "test-model"}]
    capitals = [{"input": f"#echo capital {i}", "expected": f"capital {i}"} for i in range(3)]
    sums = [{"input": f"#echo sum {i}", "expected": f"sum {i}"} for i in range(3)]
    a = eval_run(gw, tmp_path, suite_file(tmp_path / "capitals.yaml", capitals, variants))
    b = eval_run(gw, tmp_path, suite_file(tmp_path / "sums.yaml", sums, variants))
    assert a["case_ids"] == b["case_ids"] == ["1", "2", "3"]
    refused(
        llmgw("eval", "compare", str(tmp_path / "capitals.json"), str(tmp_path / "sums.json")),
        "llmgw: nothing to compare: the runs have no case in common (suite 'capitals' → 'sums'; 3 → 3 cases)",
    )


# --- eval run: suites that cannot be read ----------------------------------------------------------


def bad_suite(tmp_path: Path, kind: str) -> tuple[Path, list[str]]:
    """A suite that cannot run, and what its message must say (besides its file)."""
    suite = tmp_path / "bad.yaml"
    base = {"variants": [{"name": "base"}], "checks": [{"type": "contains"}]}
    data = tmp_path / "cases.jsonl"
    with_file = {**base, "dataset": {"path": "cases.jsonl"}}
    if kind == "missing":
        return tmp_path / "nope.yaml", ["no suite at", "nope.yaml"]
    if kind == "directory":
        (tmp_path / "evals").mkdir()
        return tmp_path / "evals", ["no suite at"]
    if kind == "invalid YAML":
        suite.write_text("dataset: {inline: [\n  variants: ]]")
        return suite, ["not valid YAML"]
    if kind == "a YAML list":
        suite.write_text("- just\n- a list\n")
        return suite, ["a suite is a mapping", "not a list"]
    if kind == "not UTF-8":
        suite.write_bytes(b"description: caf\xe9\n")
        return suite, ["not UTF-8"]
    if kind == "a case without input":
        suite.write_text(yaml.safe_dump({**base, "dataset": {"inline": [CASES[0], {"id": "x", "expected": "y"}]}}))
        return suite, ["(dataset.inline): case 2 needs 'input' or 'messages'"]
    if kind == "a JSONL line that is not JSON":
        data.write_text(json.dumps(CASES[0]) + "\n{'id': 'c1', 'input': 'single quotes'}\n")
        suite.write_text(yaml.safe_dump(with_file))
        return suite, [f"{data}: line 2 is not JSON"]
    if kind == "a JSONL row that is not an object":
        data.write_text(json.dumps(CASES[0]) + '\n"just a string"\n')
        suite.write_text(yaml.safe_dump(with_file))
        return suite, [f"{data}: case 2 is a str, not an object"]
    if kind == "messages that are not a list":
        suite.write_text(yaml.safe_dump({**base, "dataset": {"inline": [{"id": "m", "messages": "[{'role': 'user'"}]}}))
        return suite, ["case 1's 'messages' is not a list of messages"]
    if kind == "no cases":
        data.write_text("\n")
        suite.write_text(yaml.safe_dump(with_file))
        return suite, [f"{data}: no cases"]
    if kind == "a duplicate id":
        suite.write_text(yaml.safe_dump({**base, "dataset": {"inline": [CASES[0], CASES[1], CASES[0]]}}))
        return suite, ["case ids must be unique, 'c0' is used twice"]
    if kind == "a variant without a name":
        suite.write_text(yaml.safe_dump({**base, "variants": [{"model": "x"}], "dataset": {"inline": CASES}}))
        return suite, ["variants.0.name: Field required"]
    raise AssertionError(kind)


SUITE_PROBLEMS = [
    "missing",
    "directory",
    "invalid YAML",
    "a YAML list",
    "not UTF-8",
    "a case without input",
    "a JSONL line that is not JSON",
    "a JSONL row that is not an object",
    "messages that are not a list",
    "no cases",
    "a duplicate id",
    "a variant without a name",
]


@pytest.mark.parametrize("kind", SUITE_PROBLEMS)
def test_run_of_a_suite_that_cannot_be_read_names_the_file_and_the_problem_and_exits_2(
    kind: str, tmp_path: Path
) -> None:
    """Before any call (the --url is a closed port): the message, not a traceback."""
    suite, needles = bad_suite(tmp_path, kind)
    result = llmgw("eval", "run", str(suite), "--url", "http://127.0.0.1:9", "--out", str(tmp_path / "out"))
    err = refused(result, *needles, lines=None)
    named = tmp_path / "cases.jsonl" if "JSONL" in kind or kind == "no cases" else suite
    assert str(named) in err.splitlines()[0]  # the file with the problem (the suite, or its dataset) up front
    assert not (tmp_path / "out").exists()


def test_run_writes_its_report_into_a_folder_that_does_not_exist_yet_and_refuses_out_that_is_a_file(
    make_gateway: Any, tmp_path: Path
) -> None:
    """A missing folder for -o or --html must not lose the run after every call was made."""
    gw = make_gateway()
    suite = suite_file(tmp_path / "s.yaml", CASES[:2], [{"name": "base", "model": "test-model"}])
    report, html = tmp_path / "reports" / "ci" / "run.json", tmp_path / "html" / "run.html"
    args = ["eval", "run", str(suite), "--url", gw.url, "--key", ADMIN_KEY, "--quiet"]
    result = llmgw(*args, "--out", str(tmp_path / "out"), "-o", str(report), "--html", str(html))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(report.read_text())["case_ids"] == ["c0", "c1"]
    assert html.read_text(encoding="utf-8").startswith("<!doctype html>")
    (tmp_path / "afile").write_text("x")
    refused(llmgw(*args, "--out", str(tmp_path / "afile")), f"llmgw: --out {tmp_path / 'afile'} is a file")


# --- the CI gate -----------------------------------------------------------------------------------


def test_gate_refuses_an_unknown_metric_an_alpha_outside_0_1_and_the_baseline_as_candidate(
    make_gateway: Any, tmp_path: Path
) -> None:
    """Each would otherwise gate nothing: a metric that is not measured, alpha 0 (no p is below it) or 1,
    the baseline against itself. All exit 2, never 0."""
    variants = [{"name": "base", "model": "test-model"}, {"name": "cut", "model": "test-model", "params": PARTIAL}]
    eval_run(make_gateway(), tmp_path, suite_file(tmp_path / "s.yaml", CASES, variants))
    run = str(tmp_path / "s.json")
    gate = ("eval", "gate", run, "--candidate", "cut")
    assert llmgw(*gate).returncode == 0  # 3 losses of 12: not significant
    metric = llmgw(*gate, "--metric", "latency")
    assert metric.returncode == 2 and "invalid choice: 'latency'" in metric.stderr
    for alpha in ("0", "1", "-0.05", "5", "five"):
        result = llmgw(*gate, "--alpha", alpha)
        assert result.returncode == 2 and "argument --alpha" in result.stderr, (alpha, result.stderr)
        assert "Traceback" not in result.stderr
    assert llmgw(*gate, "--alpha", "0.5").returncode == 1  # a valid alpha is honoured: p (Holm) 0.25 < 0.5
    refused(llmgw("eval", "gate", run, "--candidate", "base"), "'base' is the baseline")
    refused(llmgw("eval", "gate", run, "--candidate", "nope"), "no comparison for variant 'nope'")
    run_alpha = llmgw("eval", "run", str(tmp_path / "s.yaml"), "--alpha", "0")
    assert run_alpha.returncode == 2 and "argument --alpha: must be between 0 and 1" in run_alpha.stderr


# --- eval run: the answer cache ---------------------------------------------------------------------


def test_rerun_after_a_case_or_the_system_message_changed_asks_again_instead_of_serving_the_old_answer(
    make_gateway: Any, tmp_path: Path
) -> None:
    """The cache was keyed by case id: a case whose input was edited (or a suite whose system message
    changed) got the answer to the old question, graded against the new expectation."""
    gw = make_gateway()
    variants = [{"name": "base", "model": "test-model"}]
    suite = suite_file(tmp_path / "s.yaml", CASES[:2], variants)
    first = eval_run(gw, tmp_path, suite)
    assert first["fetched"] == 2 and first["variants"]["base"]["pass_rate"] == 1.0
    assert eval_run(gw, tmp_path, suite)["cached"] == 2  # unchanged: free
    edited = [{"id": "c0", "input": "#echo the answer is zero", "expected": "answer is zero"}, CASES[1]]
    second = eval_run(gw, tmp_path, suite_file(suite, edited, variants))
    assert (second["fetched"], second["cached"]) == (1, 1)
    assert second["variants"]["base"]["pass_rate"] == 1.0  # the new question's answer, not "the answer is 0"
    data = yaml.safe_load(suite.read_text())
    suite.write_text(yaml.safe_dump({**data, "system": "Answer in one sentence."}))
    assert eval_run(gw, tmp_path, suite)["fetched"] == 2
