"""From answers to a verdict: per-variant rates and scores with intervals, and each variant against
the baseline on the same cases (McNemar's exact test, paired bootstrap, Wilcoxon, Holm).

A case passes when every check passes; with repeats, a case's pass rate is the share of its
repeats that passed and it counts as passed (for McNemar) when at least half did. A case's score
is the mean of its checks' scores over its repeats.

Errors (calls that got no verdict on the case: an unknown route, a provider down, see
:func:`llmgw.evals.checks.is_error`) are counted per variant and by code, apart from failed
checks: they still count as not passed (so a rate is never flattered), but a run with errors says
so and :func:`worse` (``llmgw eval gate``) refuses to pass a comparison that has any.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from llmgw import stats
from llmgw.evals.checks import evaluate, is_error
from llmgw.evals.suite import Suite
from llmgw.stats_power import power_note


def score_cases(
    suite: Suite, cases: list[dict[str, Any]], answers: dict[tuple[str, str, int], dict[str, Any]]
) -> dict[str, Any]:
    """variant → case id → {passed, pass_rate, score, latency_ms, outputs, failures}."""
    out: dict[str, Any] = {}
    for variant in suite.variants:
        per_case: dict[str, Any] = {}
        for case in cases:
            passes, scores, latencies, outputs, failures, tokens = [], [], [], [], [], []
            spreads: list[float] = []
            costs: list[float] = []
            prompts: set[str] = set()
            errors: list[str] = []
            for repeat in range(suite.repeats):
                record = answers[(variant.name, case["id"], repeat)]
                if is_error(record):
                    errors.append(str(record.get("error_code") or record.get("status") or "no answer"))
                outcomes = [evaluate(check, record, case) for check in suite.checks]
                passes.append(all(o.passed for o in outcomes))
                scores.append(float(np.mean([o.score for o in outcomes])))
                latencies.append(float(record.get("latency_ms") or 0.0))
                costs.append(float(record.get("cost_usd") or 0.0))
                if record.get("prompt"):
                    prompts.add(record["prompt"])
                tokens.append(int(record.get("prompt_tokens") or 0) + int(record.get("completion_tokens") or 0))
                for grades in (record.get("judge") or {}).values():
                    valid = [g for g in grades if g is not None]
                    if len(valid) > 1:
                        spreads.append(float(np.std(valid)))
                outputs.append(record.get("output") or record.get("error") or "")
                failures += [
                    f"{c.type}: {o.detail}".rstrip(": ")
                    for c, o in zip(suite.checks, outcomes, strict=True)
                    if not o.passed
                ]
            rate = sum(passes) / len(passes)
            per_case[case["id"]] = {
                "passed": rate >= 0.5,
                "pass_rate": rate,
                "score": float(np.mean(scores)),
                "latency_ms": float(np.median(latencies)),
                "tokens": float(np.mean(tokens)),
                "cost_usd": float(np.mean(costs)),
                "judge_spread": spreads,
                "prompts": sorted(prompts),
                "outputs": outputs,
                "failures": sorted(set(failures)),
                "errors": errors,
            }
        out[variant.name] = per_case
    return out


def summarise(suite: Suite, scored: dict[str, Any], alpha: float = 0.05) -> dict[str, Any]:
    case_ids = list(next(iter(scored.values())))
    n = len(case_ids)
    variants: dict[str, Any] = {}
    for name, per_case in scored.items():
        passed = sum(per_case[c]["passed"] for c in case_ids)
        error_codes = Counter(code for c in case_ids for code in per_case[c]["errors"])
        scores = [per_case[c]["score"] for c in case_ids]
        wilson = stats.wilson_interval(passed, n)
        boot = stats.bootstrap_mean_interval(scores) if n > 1 else stats.Interval(scores[0], scores[0], scores[0])
        variants[name] = {
            "cases": n,
            "passed": passed,
            "pass_rate": passed / n,
            "pass_rate_ci": [wilson.low, wilson.high],
            "score": float(np.mean(scores)),
            "score_ci": [boot.low, boot.high],
            "latency_ms_p50": statistics.median(per_case[c]["latency_ms"] for c in case_ids),
            "tokens_per_case": float(np.mean([per_case[c]["tokens"] for c in case_ids])),
            "cost_usd_per_case": float(np.mean([per_case[c]["cost_usd"] for c in case_ids])),
            # the judge's own noise: the mean standard deviation of its repeated grades of one answer
            "judge_noise": _mean_or_none([s for c in case_ids for s in per_case[c]["judge_spread"]]),
            # the template versions that answered (id@commit, from x-llmgw-prompt): the report links them
            "prompt_versions": sorted({p for c in case_ids for p in per_case[c]["prompts"]}),
            # calls that got no verdict on their case (not failed checks): by error code
            "answers": n * suite.repeats,
            "errors": sum(error_codes.values()),
            "error_codes": dict(error_codes.most_common()),
        }
    baseline = suite.baseline.name
    comparisons: list[dict[str, Any]] = []
    for name in scored:
        if name == baseline:
            continue
        a, b = scored[name], scored[baseline]
        only_candidate = sum(a[c]["passed"] and not b[c]["passed"] for c in case_ids)
        only_baseline = sum(b[c]["passed"] and not a[c]["passed"] for c in case_ids)
        mcnemar = stats.mcnemar_exact(only_candidate, only_baseline)
        sa, sb = [a[c]["score"] for c in case_ids], [b[c]["score"] for c in case_ids]
        paired = stats.paired_bootstrap(sa, sb) if n > 1 else None
        wilcoxon = (
            stats.wilcoxon_signed_rank(sa, sb) if n > 1 and any(x != y for x, y in zip(sa, sb, strict=True)) else None
        )
        p_base = variants[baseline]["pass_rate"]
        comparisons.append(
            {
                "variant": name,
                "baseline": baseline,
                "pass_rate_difference": variants[name]["pass_rate"] - p_base,
                "wins": only_candidate,
                "losses": only_baseline,
                "ties": n - only_candidate - only_baseline,
                "mcnemar_p": mcnemar.p_value,
                "cohens_h": stats.cohens_h(variants[name]["pass_rate"], p_base),
                "score_difference": paired.difference if paired else 0.0,
                "score_difference_ci": [paired.interval.low, paired.interval.high]
                if paired and paired.interval
                else None,
                "bootstrap_p": paired.p_value if paired else 1.0,
                "wilcoxon_p": wilcoxon.p_value if wilcoxon else 1.0,
                "power_note": power_note(n, p_base=min(max(p_base, 0.01), 0.99), alpha=alpha),
            }
        )
    for key in ("mcnemar_p", "bootstrap_p"):
        for comparison, adjusted in zip(comparisons, stats.holm([c[key] for c in comparisons]), strict=True):
            comparison[f"{key}_holm"] = adjusted
    disagreements = [c for c in case_ids if len({scored[v][c]["passed"] for v in scored}) > 1]
    return {
        "suite": suite.name,
        "errors": sum(v["errors"] for v in variants.values()),
        "baseline": baseline,
        "repeats": suite.repeats,
        "alpha": alpha,
        "variants": variants,
        "comparisons": comparisons,
        "disagreements": disagreements,
        "case_ids": case_ids,
        "passed": {v: [scored[v][c]["passed"] for c in case_ids] for v in scored},
        # per case too, so that `eval compare` of runs over different cases compares the shared ones
        "scores": {v: [scored[v][c]["score"] for c in case_ids] for v in scored},
        "outputs": {
            c: {v: {"output": scored[v][c]["outputs"][0][:2000], "failures": scored[v][c]["failures"]} for v in scored}
            for c in disagreements[:200]
        },
    }


class RunReportError(Exception):
    """A file that is not a run report of ``llmgw eval run``: one line for the CLI, which exits 2."""


def load_run(path: str | Path) -> dict[str, Any]:
    """The run report at ``path``, checked for what ``gate`` and ``compare`` read, so that a missing,
    empty or foreign file is one line naming it instead of a traceback (or, in a CI gate, an exit 1
    that reads as a regression)."""
    file = Path(path)
    if not file.exists():
        raise RunReportError(f"{file}: no such file")
    if not file.is_file():
        raise RunReportError(f"{file}: not a file (a run report is the JSON that `llmgw eval run` writes)")
    try:
        summary = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RunReportError(f"{file}: not a run report (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        what = "empty" if not file.read_bytes().strip() else f"not JSON ({exc.msg}, line {exc.lineno})"
        raise RunReportError(f"{file}: not a run report ({what})") from None
    problem = _report_problem(summary)
    if problem:
        raise RunReportError(f"{file}: not a run report of `llmgw eval run` ({problem})")
    return summary


def _report_problem(summary: Any) -> str | None:
    """What a run report lacks, or None."""
    if not isinstance(summary, dict):
        return f"a JSON {type(summary).__name__}, not an object"
    expected = {"suite": str, "baseline": str, "variants": dict, "comparisons": list, "case_ids": list, "passed": dict}
    missing = [key for key, kind in expected.items() if not isinstance(summary.get(key), kind)]
    if missing:
        return "no " + ", ".join(missing)
    n = len(summary["case_ids"])
    for name, variant in summary["variants"].items():
        if not isinstance(variant, dict) or not {"pass_rate", "score"} <= set(variant):
            return f"variant {name!r} has no pass_rate or score"
        passed = summary["passed"].get(name)
        if not isinstance(passed, list) or len(passed) != n:
            return f"variant {name!r} has no pass/fail for each of the {n} cases"
    if summary["baseline"] not in summary["variants"]:
        return f"the baseline {summary['baseline']!r} is not a variant"
    return None


def case_digest(case: dict[str, Any]) -> str:
    """A case's content (input, expected, vars, ...) in 12 hex digits: ``eval compare`` pairs two runs'
    cases by id only when this matches too, since ids given by row number say nothing of the content."""
    return hashlib.sha256(json.dumps(case, sort_keys=True, default=str).encode()).hexdigest()[:12]


def case_sets(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[str]]:
    """How two runs' cases line up: ``shared`` (same id and, where both reports have digests, same
    content), ``only_a``, ``only_b``, and ``changed`` (same id, other content). Cases are paired by id,
    never by position: a run over fewer or reordered cases compares the cases it shares."""
    ids_a, ids_b = [str(c) for c in a["case_ids"]], [str(c) for c in b["case_ids"]]
    digests_a, digests_b = a.get("case_digests") or {}, b.get("case_digests") or {}
    in_b = set(ids_b)
    changed = [c for c in ids_a if c in in_b and c in digests_a and c in digests_b and digests_a[c] != digests_b[c]]
    shared = [c for c in ids_a if c in in_b and c not in changed]
    return {
        "shared": shared,
        "only_a": [c for c in ids_a if c not in in_b],
        "only_b": [c for c in ids_b if c not in set(ids_a)],
        "changed": changed,
    }


def on_cases(summary: dict[str, Any], variant: str, key: str, ids: list[str]) -> list[Any] | None:
    """``summary[key][variant]`` (``passed`` or ``scores``) for the cases ``ids``, in that order; None
    when the report has no such per-case list (``scores`` came with reports after 2026-12-06)."""
    values = (summary.get(key) or {}).get(variant)
    if not isinstance(values, list) or len(values) != len(summary["case_ids"]):
        return None
    position = {str(c): n for n, c in enumerate(summary["case_ids"])}
    return [values[position[c]] for c in ids]


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def errors_line(variant: str, v: dict[str, Any]) -> str:
    """``broken: 24 of 24 calls ended in an error (upstream_unavailable ×24)``."""
    codes = ", ".join(f"{code} ×{count}" for code, count in v["error_codes"].items())
    return f"{variant}: {v['errors']} of {v['answers']} calls ended in an error ({codes})"


def worse(summary: dict[str, Any], candidate: str, metric: str, alpha: float) -> tuple[bool, str]:
    """Whether ``candidate`` is significantly worse than the baseline on ``metric`` (Holm-adjusted);
    a comparison where either side has errors is refused: it measured no quality."""
    if candidate == summary["baseline"]:
        raise KeyError(f"{candidate!r} is the baseline; gate one of the other variants against it")
    comparison = next((c for c in summary["comparisons"] if c.get("variant") == candidate), None)
    if comparison is None:
        raise KeyError(f"no comparison for variant {candidate!r} (variants: {', '.join(summary['variants'])})")
    failing = [
        errors_line(name, summary["variants"][name])
        for name in (candidate, summary["baseline"])
        if summary["variants"][name].get("errors")
    ]
    if failing:
        return True, f"{candidate} vs {summary['baseline']}: not comparable, {'; '.join(failing)}"
    if metric == "pass_rate":
        diff, p = comparison["pass_rate_difference"], comparison["mcnemar_p_holm"]
    else:
        diff, p = comparison["score_difference"], comparison["bootstrap_p_holm"]
    verdict = diff < 0 and p < alpha
    return verdict, f"{candidate} vs {summary['baseline']}: {metric} difference {diff:+.3f}, p (Holm) {p:.4g}"
