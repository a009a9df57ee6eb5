"""The throughput guard's comparison logic (bench/guard.py) on given numbers: no timings here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import guard


def _report(gw_rps: float, direct_rps: float) -> dict:
    return {
        "date": "2026-12-03T15:00:00+00:00",
        "command": "python -m bench.run --quick --no-litellm",
        "machine": {"nproc": "2"},
        "results": {"llmgw": {"tput": {"rate_per_s": gw_rps}}, "direct": {"tput": {"rate_per_s": direct_rps}}},
    }


def test_share_is_llmgw_rate_over_direct_rate() -> None:
    assert guard.share(_report(900, 7200)["results"]) == pytest.approx(0.125)


def test_share_missing_or_zero_direct_is_nan() -> None:
    assert math.isnan(guard.share({"llmgw": {"tput": {"rate_per_s": 900}}}))
    assert math.isnan(guard.share(_report(900, 0)["results"]))


@pytest.mark.parametrize(
    ("run_share", "ok"),
    [(0.20, True), (0.16, True), (0.1501, True), (0.1499, False), (0.10, False), (0.30, True)],
)
def test_compare_fails_only_below_the_floor(run_share: float, ok: bool) -> None:
    verdict = guard.compare(run_share, 0.20, tolerance=0.25)
    assert verdict.floor == pytest.approx(0.15)
    assert verdict.ok is ok
    assert ("FAIL" in verdict.line()) is (not ok)


def test_tolerance_flag_changes_the_floor() -> None:
    assert not guard.compare(0.17, 0.20, tolerance=0.10).ok
    assert guard.compare(0.17, 0.20, tolerance=0.20).ok


def test_unmeasured_share_fails() -> None:
    assert not guard.compare(math.nan, 0.20).ok


@pytest.mark.parametrize("tolerance", [-0.1, 1.0, 2.0])
def test_bad_tolerance_is_refused(tolerance: float) -> None:
    with pytest.raises(ValueError):
        guard.compare(0.2, 0.2, tolerance=tolerance)


def test_cli_writes_and_checks_a_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_report(1000, 5000)))
    bad.write_text(json.dumps(_report(500, 5000)))
    base = tmp_path / "baseline.json"
    assert guard.main([str(good), "--baseline", str(base), "--write-baseline"]) == 0
    saved = json.loads(base.read_text())
    assert saved["share"] == pytest.approx(0.2) and saved["command"] and saved["machine"] == {"nproc": "2"}
    assert guard.main([str(good), "--baseline", str(base)]) == 0
    assert guard.main([str(bad), "--baseline", str(base)]) == 1
    assert guard.main([str(bad), "--baseline", str(base), "--tolerance", "0.6"]) == 0
    assert "FAIL" in capsys.readouterr().out


def test_committed_baseline_is_valid() -> None:
    data = guard.load_baseline()
    assert 0 < data["share"] < 1
    assert data["date"] and data["machine"] and data["command"]
