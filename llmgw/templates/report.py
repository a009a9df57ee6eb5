"""``llmgw experiments report NAME``: per-arm outcomes of an online A/B test.

Reads the request rows of the experiment and the feedback on them (only feedback sent with the
key that made the request, or with the admin key, counts). A request with several feedback rows
counts once, with their mean. Labels become scores through ``label_scores``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.engine import Engine

from llmgw.config import ExperimentConfig
from llmgw.stats import holm, mean_interval, power_note, welch_t_test
from llmgw.storage.models import FeedbackRow, RequestRow, table


@dataclass
class ArmReport:
    arm: str
    requests: int
    rated: int
    mean: float | None
    low: float | None
    high: float | None
    difference: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    sd: float | None = None


def scores_by_arm(
    engine: Engine, name: str, experiment: ExperimentConfig
) -> tuple[dict[str, int], dict[str, list[float]]]:
    requests = table(RequestRow)
    feedback = table(FeedbackRow)
    counts: dict[str, int] = defaultdict(int)
    owners: dict[str, tuple[str, str | None]] = {}
    with engine.connect() as conn:
        for rid, arm, key_id in conn.execute(
            select(requests.c.id, requests.c.experiment_arm, requests.c.key_id).where(requests.c.experiment == name)
        ):
            counts[arm] += 1
            owners[rid] = (arm, key_id)
        per_request: dict[str, list[float]] = defaultdict(list)
        for rid, key_id, score, label in conn.execute(
            select(feedback.c.request_id, feedback.c.key_id, feedback.c.score, feedback.c.label).where(
                feedback.c.request_id.in_(list(owners)) if owners else feedback.c.request_id.is_(None)
            )
        ):
            _, owner = owners[rid]
            if key_id not in (owner, "admin"):
                continue
            value = score if score is not None else experiment.label_scores.get(label or "")
            if value is not None:
                per_request[rid].append(float(value))
    scores: dict[str, list[float]] = defaultdict(list)
    for rid, values in per_request.items():
        scores[owners[rid][0]].append(sum(values) / len(values))
    return counts, scores


def build_report(engine: Engine, name: str, experiment: ExperimentConfig) -> list[ArmReport]:
    counts, scores = scores_by_arm(engine, name, experiment)
    arms = [arm.name for arm in experiment.arms]
    out: list[ArmReport] = []
    for arm in arms:
        values = scores.get(arm, [])
        interval = mean_interval(values) if len(values) >= 2 else None
        mean = sum(values) / len(values) if values else None
        # exact (statistics works in fractions): identical scores have sd 0.0, not the 1e-16 of float
        # round-off that once produced "can detect differences of ≥ 2.76e-16"
        sd = statistics.stdev(values) if len(values) > 1 else None
        low, high = (interval.low, interval.high) if interval else (None, None)
        out.append(ArmReport(arm, counts.get(arm, 0), len(values), mean, low, high, sd=sd))
    base = scores.get(arms[0], [])
    tested = []
    for report in out[1:]:
        values = scores.get(report.arm, [])
        if len(base) >= 2 and len(values) >= 2:
            result = welch_t_test(values, base)
            report.difference, report.p_value = result.difference, result.p_value
            if result.interval is not None:
                report.diff_low, report.diff_high = result.interval.low, result.interval.high
            tested.append(report)
    for report, adjusted in zip(tested, holm([r.p_value for r in tested if r.p_value is not None]), strict=True):
        report.p_holm = adjusted
    return out


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def print_report(name: str, reports: list[ArmReport], console: Console) -> None:
    table = Table(title=f"experiment {name}: mean feedback score, 95% CI; difference vs {reports[0].arm} (Welch)")
    for column in ("arm", "requests", "rated", "mean", "95% CI", "Δ vs base", "Δ 95% CI", "p", "p (Holm)"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for r in reports:
        table.add_row(r.arm, str(r.requests), str(r.rated), _fmt(r.mean), f"[{_fmt(r.low)}, {_fmt(r.high)}]",
                      _fmt(r.difference), f"[{_fmt(r.diff_low)}, {_fmt(r.diff_high)}]" if r.difference is not None
                      else "–", _fmt(r.p_value, 4), _fmt(r.p_holm, 4))  # fmt: skip
    console.print(table)
    smallest = min((r.rated for r in reports), default=0)
    sds = [r.sd for r in reports if r.sd]
    if smallest and sds:
        note = power_note(smallest, sd=max(sds), metric="mean feedback score")
        if note:
            console.print(note.replace("suite", "experiment").replace("cases per variant", "rated requests per arm"))


def cmd_report(args: argparse.Namespace) -> int:
    from llmgw.config import load_config_or_exit
    from llmgw.storage.db import make_engine

    config = load_config_or_exit(args.config)
    experiment = config.experiments.get(args.name)
    if experiment is None:
        print(f"llmgw: no experiment {args.name!r} in the config", file=sys.stderr)
        return 2
    engine = make_engine(config.storage.url)
    reports = build_report(engine, args.name, experiment)
    if args.json:
        print(json.dumps({"experiment": args.name, "arms": [asdict(r) for r in reports]}, indent=2))
    else:
        print_report(args.name, reports, Console(width=None if sys.stdout.isatty() else 160))
    return 0


def register(sub: Any) -> None:
    experiments = sub.add_parser("experiments", help="online A/B tests")
    experiments.add_argument("--config", help="gateway config (default: $LLMGW_CONFIG or embedded)")
    commands = experiments.add_subparsers(dest="experiments_command", required=True)
    report = commands.add_parser("report", help="per-arm counts, mean feedback with CIs, differences and p-values")
    report.add_argument("name")
    report.add_argument("--json", action="store_true")
    report.set_defaults(func=cmd_report)
