"""``llmgw eval``: run a suite, compare two runs, gate a CI job on a regression.

llmgw eval run evals/qa.yaml [--url http://gw:8080 --key $KEY] [--config gw.yaml] [--out DIR]
llmgw eval gate RUN.json --candidate NAME [--metric pass_rate|score] [--alpha 0.05]
llmgw eval compare RUN_A.json RUN_B.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from llmgw.evals.suite import SuiteError, load_cases, load_suite

DEFAULT_OUT = Path(".llmgw") / "evals"


def _commit(repo: str) -> str | None:
    try:
        return subprocess.run(
            ["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{summary['suite']}: {next(iter(summary['variants'].values()))['cases']} cases, "
        f"{summary['repeats']} repeat(s); baseline {summary['baseline']}"
    )
    columns = (
        "variant",
        "pass rate (95% CI)",
        "score (95% CI)",
        "errors",
        "p50 ms",
        "$/case",
        "vs baseline",
        "p (Holm)",
    )
    for column in columns:
        table.add_column(column)
    comparisons = {c["variant"]: c for c in summary["comparisons"]}
    for name, v in summary["variants"].items():
        c = comparisons.get(name)
        versus = f"{c['pass_rate_difference']:+.1%} ({c['wins']}W/{c['losses']}L)" if c else "baseline"
        table.add_row(
            name,
            f"{v['pass_rate']:.1%} [{v['pass_rate_ci'][0]:.1%}, {v['pass_rate_ci'][1]:.1%}]",
            f"{v['score']:.3f} [{v['score_ci'][0]:.3f}, {v['score_ci'][1]:.3f}]",
            f"{v['errors']}/{v['answers']}" if v["errors"] else "0",
            f"{v['latency_ms_p50']:.0f}",
            f"{v.get('cost_usd_per_case', 0.0):.6f}",
            versus,
            f"{c['mcnemar_p_holm']:.3g}" if c else "",
        )
    Console(stderr=False).print(table)
    for c in summary["comparisons"]:
        if c.get("power_note"):
            print(f"note ({c['variant']}): {c['power_note']}")


def cmd_run(args: argparse.Namespace) -> int:
    import httpx
    from rich.progress import Progress

    from llmgw.evals.report import case_digest, errors_line, score_cases, summarise
    from llmgw.evals.runner import AnswerCache, EvalError, Tally, gateway_identity, run

    try:
        suite = load_suite(args.suite)
        cases = load_cases(suite)
    except SuiteError as exc:
        print(f"llmgw: {exc}", file=sys.stderr)
        return 2
    config = None
    if not args.url:
        from llmgw.config import load_config_or_exit

        config = load_config_or_exit(args.config or os.environ.get("LLMGW_CONFIG"))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"llmgw: --out {out} is a file; it is the folder for the answer cache and run reports", file=sys.stderr)
        return 2
    cache = AnswerCache(out / "answers.db", gateway_identity(args.url, config))
    tally = Tally()
    total = len(suite.variants) * len(cases) * suite.repeats
    with Progress(disable=args.quiet or not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"eval {suite.name}", total=total)
        counts = {"cached": 0, "called": 0}

        def progress(cached: bool) -> None:
            counts["cached" if cached else "called"] += 1
            bar.advance(task)

        started = time.perf_counter()
        try:
            answers = asyncio.run(
                run(suite, cases, cache, url=args.url, key=args.key, config=config, progress=progress, tally=tally)
            )
        except KeyboardInterrupt:
            print("interrupted: answers so far are cached; run again to resume", file=sys.stderr)
            return 130
        except EvalError as exc:
            print(f"llmgw: {exc}", file=sys.stderr)
            return 2
        except httpx.TransportError as exc:
            print(f"llmgw: cannot reach the gateway at {args.url}: {exc!r}", file=sys.stderr)
            return 2
    summary = summarise(suite, score_cases(suite, cases, answers), args.alpha)
    summary.update(
        started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        seconds=round(time.perf_counter() - started, 2),
        calls=tally.requests,  # every request: answers, judge gradings and retries after 429
        rate_limited=tally.rate_limited,
        fetched=counts["called"],
        cached=counts["cached"],
        gateway=args.url or "in process",
        prompts_commit=_commit(config.templates.repo if config else "."),
        variants_spec={v.name: v.model_dump() for v in suite.variants},
        case_digests={str(c["id"]): case_digest(c) for c in cases},
    )
    path = Path(args.output) if args.output else out / f"{suite.name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    # the folders of -o and --html too: a missing one must not lose the run after every call was made
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str))
    if args.html:
        from llmgw.evals.html import render

        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(render(summary), encoding="utf-8")
    if not args.quiet:
        _table(summary)
    retried = f" ({tally.rate_limited} of them retries after 429)" if tally.rate_limited else ""
    print(
        f"{summary['calls']} calls{retried}, {summary['fetched']} answers fetched, {summary['cached']} cached, "
        f"{summary['seconds']} s; wrote {path}"
    )
    if summary["errors"]:
        for name, v in summary["variants"].items():
            if v["errors"]:
                print(f"ERRORS {errors_line(name, v)}", file=sys.stderr)
        print(
            "These calls got no answer to grade: their cases count as not passed, and `llmgw eval gate` refuses "
            "the comparison. Errors are not cached: fix the cause and run again.",
            file=sys.stderr,
        )
    return 0


def _alpha(text: str) -> float:
    """``--alpha``: a significance level strictly between 0 and 1; 0 would make the gate pass everything."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), not {text}")
    return value


def cmd_gate(args: argparse.Namespace) -> int:
    from llmgw.evals.report import RunReportError, load_run, worse

    try:
        summary = load_run(args.run)
        regressed, line = worse(summary, args.candidate, args.metric, args.alpha)
    except RunReportError as exc:
        print(f"llmgw: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"llmgw: {exc.args[0]}", file=sys.stderr)
        return 2
    versions = {name: ", ".join(v.get("prompt_versions") or []) for name, v in summary["variants"].items()}
    base = summary["baseline"]
    compared = f" [{args.candidate}: {versions.get(args.candidate) or '-'}; {base}: {versions.get(base) or '-'}]"
    print(("FAIL " if regressed else "ok   ") + line + compared)
    return 1 if regressed else 0


def cmd_compare(args: argparse.Namespace) -> int:
    from llmgw.evals.report import RunReportError, case_sets, load_run

    try:
        a, b = load_run(args.run_a), load_run(args.run_b)
    except RunReportError as exc:
        print(f"llmgw: {exc}", file=sys.stderr)
        return 2
    cases = case_sets(a, b)
    n_a, n_b, shared = len(a["case_ids"]), len(b["case_ids"]), len(cases["shared"])
    suites = f"suite {a['suite']!r} → {b['suite']!r}" if a["suite"] != b["suite"] else f"suite {a['suite']!r}"
    if not shared:
        print(
            f"llmgw: nothing to compare: the runs have no case in common ({suites}; {n_a} → {n_b} cases)",
            file=sys.stderr,
        )
        return 2
    if a["suite"] != b["suite"]:
        print(f"llmgw: warning: the runs are of different suites ({suites}); {shared} cases in common", file=sys.stderr)
    if a.get("repeats") != b.get("repeats"):
        print(
            f"llmgw: warning: the runs made {a.get('repeats')} → {b.get('repeats')} repeats per case", file=sys.stderr
        )
    same_cases = shared == n_a == n_b
    if not same_cases:
        print(
            f"llmgw: warning: the runs cover different cases: {_case_counts(cases)}; "
            f"the variants are compared on the {shared} shared cases only",
            file=sys.stderr,
        )
    for name in sorted(set(a["variants"]) | set(b["variants"])):
        va, vb = a["variants"].get(name), b["variants"].get(name)
        if va and vb:
            errors = (va.get("errors") or 0, vb.get("errors") or 0)
            body = _totals(va, vb) if same_cases else _on_shared(a, b, name, cases["shared"])
            print(
                f"{name}: {body}"
                + (f", ERRORS {errors[0]} → {errors[1]} (not a quality result)" if any(errors) else "")
            )
        else:
            print(f"{name}: only in {'A' if va else 'B'}")
    print(f"prompts: {a.get('prompts_commit')} → {b.get('prompts_commit')}")
    return 0


def _case_counts(cases: dict[str, list[str]]) -> str:
    """``12 shared, 3 only in A (c12, c13, c14), 1 changed (c3)``: the ids, the first few of each."""

    def ids(group: list[str]) -> str:
        return ", ".join(group[:5]) + (", ..." if len(group) > 5 else "")

    parts = [f"{len(cases['shared'])} shared"]
    for key, label in (("only_a", "only in A"), ("only_b", "only in B"), ("changed", "changed between the runs")):
        if cases[key]:
            parts.append(f"{len(cases[key])} {label} ({ids(cases[key])})")
    return ", ".join(parts)


def _totals(va: dict[str, Any], vb: dict[str, Any]) -> str:
    """Both runs over the same cases: their own totals."""
    return f"pass rate {va['pass_rate']:.1%} → {vb['pass_rate']:.1%}, score {va['score']:.3f} → {vb['score']:.3f}"


def _on_shared(a: dict[str, Any], b: dict[str, Any], name: str, shared: list[str]) -> str:
    """Runs over different cases: pass rate and score on the shared cases, paired (B's wins and losses
    against A, McNemar's exact test), with each run's own totals beside them for reference."""
    from llmgw import stats
    from llmgw.evals.report import on_cases

    pa, pb = on_cases(a, name, "passed", shared), on_cases(b, name, "passed", shared)
    assert pa is not None and pb is not None  # load_run checked `passed`
    n = len(shared)
    wins = sum(y and not x for x, y in zip(pa, pb, strict=True))
    losses = sum(x and not y for x, y in zip(pa, pb, strict=True))
    line = (
        f"pass rate {sum(pa) / n:.1%} → {sum(pb) / n:.1%} on the {n} shared cases "
        f"(B won {wins}, lost {losses}, McNemar p {stats.mcnemar_exact(wins, losses).p_value:.3g}; "
        f"all cases: {a['variants'][name]['pass_rate']:.1%} of {len(a['case_ids'])} → "
        f"{b['variants'][name]['pass_rate']:.1%} of {len(b['case_ids'])})"
    )
    sa, sb = on_cases(a, name, "scores", shared), on_cases(b, name, "scores", shared)
    if sa is None or sb is None:
        return line + ", score not compared (a report without per-case scores)"
    return line + f", score {sum(sa) / n:.3f} → {sum(sb) / n:.3f}"


def register(sub: Any) -> None:
    ev = sub.add_parser("eval", help="offline eval suites: run, gate, compare")
    commands = ev.add_subparsers(dest="eval_command", required=True)
    run = commands.add_parser("run", help="run a suite through the gateway (answers cached: reruns are free)")
    run.add_argument("suite")
    run.add_argument("--url", help="a running gateway (default: in process, with --config)")
    run.add_argument("--key", default=os.environ.get("LLMGW_API_KEY"), help="API key for --url")
    run.add_argument("--config", help="gateway config for an in-process run (default: $LLMGW_CONFIG or embedded)")
    run.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the answer cache and run reports")
    run.add_argument("--output", "-o", help="the run report's file (default: OUT/<suite>-<time>.json)")
    run.add_argument("--alpha", type=_alpha, default=0.05)
    run.add_argument("--html", help="also write a self-contained HTML report to this file")
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(func=cmd_run)
    gate = commands.add_parser("gate", help="exit 1 when a candidate is significantly worse than the baseline")
    gate.add_argument("run")
    gate.add_argument("--candidate", required=True)
    gate.add_argument("--metric", choices=["pass_rate", "score"], default="pass_rate")
    gate.add_argument("--alpha", type=_alpha, default=0.05)
    gate.set_defaults(func=cmd_gate)
    compare = commands.add_parser("compare", help="two run reports side by side")
    compare.add_argument("run_a")
    compare.add_argument("run_b")
    compare.set_defaults(func=cmd_compare)
