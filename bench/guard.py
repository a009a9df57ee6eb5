"""The throughput guard: llmgw's non-streamed rate as a share of the direct upstream's, vs a baseline.

Absolute req/s moves with the machine (issue 21: the direct upstream itself went from 12,038 to
7,132 req/s between two rounds), so the guard compares a *share*: llmgw's rate divided by the direct
upstream's rate measured in the same ``bench.run``. A change on the request path that makes llmgw
slower lowers the share whatever the machine; a slower machine lowers both rates alike.

``bench/baseline.json`` holds the committed share (with date, machine and command). ``bench.run``
prints the comparison after every run, and with ``--check`` exits non-zero when the share falls more
than ``--tolerance`` (relative, default 25 %: this 2-core machine is shared and noisy) below it.

    python -m bench.guard bench/results/2026-12-03-quick.json          # compare a result file
    python -m bench.guard bench/results/...json --write-baseline       # make it the new baseline
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASELINE = Path(__file__).resolve().parent / "baseline.json"
#: Relative drop of the share below the baseline that fails ``--check`` (0.25 = 25 %).
DEFAULT_TOLERANCE = 0.25


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing one run's share with the baseline's."""

    share: float
    baseline_share: float
    tolerance: float
    floor: float
    ok: bool

    def line(self) -> str:
        """One human-readable line for the run's output."""
        change = (self.share / self.baseline_share - 1.0) * 100 if self.baseline_share else math.nan
        state = "ok" if self.ok else "FAIL: below the floor"
        return (
            f"throughput guard: llmgw at {self.share:.1%} of the direct upstream's rate; baseline "
            f"{self.baseline_share:.1%} ({change:+.1f} %), floor {self.floor:.1%} "
            f"(tolerance {self.tolerance:.0%}): {state}"
        )


def share(results: dict[str, Any]) -> float:
    """llmgw's non-streamed throughput divided by the direct upstream's, from one run's results."""
    try:
        gw = float(results["llmgw"]["tput"]["rate_per_s"])
        direct = float(results["direct"]["tput"]["rate_per_s"])
    except (KeyError, TypeError, ValueError):
        return math.nan
    return gw / direct if direct > 0 else math.nan


def compare(run_share: float, baseline_share: float, tolerance: float = DEFAULT_TOLERANCE) -> Verdict:
    """Fails when ``run_share`` is more than ``tolerance`` (relative) below ``baseline_share``.

    A share that could not be measured (NaN) fails: a guard that passes on missing data cannot fail.
    """
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    if not baseline_share > 0:
        raise ValueError(f"baseline share must be positive, got {baseline_share}")
    floor = baseline_share * (1.0 - tolerance)
    ok = not math.isnan(run_share) and run_share >= floor
    return Verdict(run_share, baseline_share, tolerance, floor, ok)


def load_baseline(path: Path = BASELINE) -> dict[str, Any]:
    """The committed baseline: ``share`` plus where and how it was measured."""
    data: dict[str, Any] = json.loads(path.read_text())
    if not isinstance(data.get("share"), (int, float)):
        raise ValueError(f"{path}: no numeric 'share'")
    return data


def baseline_from(report: dict[str, Any]) -> dict[str, Any]:
    """A baseline record from a ``bench.run`` report."""
    res = report["results"]
    return {
        "share": round(share(res), 4),
        "llmgw_rps": round(float(res["llmgw"]["tput"]["rate_per_s"]), 1),
        "direct_rps": round(float(res["direct"]["tput"]["rate_per_s"]), 1),
        "date": report.get("date"),
        "machine": report.get("machine"),
        "command": report.get("command"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", type=Path, help="a bench.run result JSON")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--write-baseline", action="store_true", help="make this run the committed baseline")
    args = parser.parse_args(argv)
    report = json.loads(args.result.read_text())
    if args.write_baseline:
        args.baseline.write_text(json.dumps(baseline_from(report), indent=2) + "\n")
        print(f"wrote {args.baseline}")
        return 0
    verdict = compare(share(report["results"]), float(load_baseline(args.baseline)["share"]), args.tolerance)
    print(verdict.line())
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
