"""``llmgw eval compare`` and ``llmgw eval run --html`` (docs/evals.md): their documented effects, through a
real gateway in front of the fake upstream, checked on what they print and write, not only the exit status."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmgw.cli import main
from tests.conftest import ADMIN_KEY, RunningGateway

CASES = [{"id": f"c{i}", "input": f"#echo the answer is {i}", "expected": f"answer is {i}"} for i in range(12)]
#: cuts "the answer is 1", "the answer is 10", "the answer is 11" short: those three cases fail, nine pass
PARTIAL = {"stop": ["is 1"]}


def eval_run(
    gw: RunningGateway, tmp_path: Path, name: str, variants: list[dict[str, Any]], *extra: str
) -> tuple[Path, dict[str, Any]]:
    """``llmgw eval run`` of a suite named ``name`` against the gateway: the run report's path and content."""
    suite = tmp_path / f"{name}.yaml"
    suite.write_text(
        yaml.safe_dump({"dataset": {"inline": CASES}, "variants": variants, "checks": [{"type": "contains"}]})
    )
    report = tmp_path / f"{name}.json"
    args = ["eval", "run", str(suite), "--url", gw.url, "--key", ADMIN_KEY, "--out", str(tmp_path / "out")]
    assert main([*args, "-o", str(report), "--quiet", *extra]) == 0
    return report, json.loads(report.read_text())


# --- llmgw eval compare RUN_A.json RUN_B.json --------------------------------------------------------


def test_compare_shows_each_shared_variant_a_to_b_and_says_which_run_alone_has_a_variant(
    make_gateway: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw: RunningGateway = make_gateway()
    path_a, a = eval_run(
        gw,
        tmp_path,
        "a",
        [
            {"name": "base", "model": "test-model"},
            {"name": "tuned", "model": "test-model", "params": PARTIAL},
            {"name": "retired", "model": "other-model"},
        ],
    )
    path_b, b = eval_run(
        gw,
        tmp_path,
        "b",
        [
            {"name": "base", "model": "test-model"},
            {"name": "tuned", "model": "test-model"},
            {"name": "added", "model": "other-model", "params": PARTIAL},
        ],
    )
    assert a["variants"]["tuned"]["pass_rate"] == 0.75 and b["variants"]["tuned"]["pass_rate"] == 1.0
    capsys.readouterr()
    assert main(["eval", "compare", str(path_a), str(path_b)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "added: only in B",
        "base: pass rate 100.0% → 100.0%, score 1.000 → 1.000",
        "retired: only in A",
        "tuned: pass rate 75.0% → 100.0%, score 0.750 → 1.000",
        f"prompts: {a['prompts_commit']} → {b['prompts_commit']}",
    ]
    # the other way round: A and B swap, and so do the sides of every line
    assert main(["eval", "compare", str(path_b), str(path_a)]) == 0
    out = capsys.readouterr().out
    assert "added: only in A\n" in out and "retired: only in B\n" in out
    assert "tuned: pass rate 100.0% → 75.0%, score 1.000 → 0.750\n" in out


def test_compare_marks_errors_as_not_a_quality_result_on_the_side_that_has_them(
    make_gateway: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A variant whose provider was down in run A and up in run B: its 0 % in A is errors, said so."""
    gw: RunningGateway = make_gateway()
    path_a, a = eval_run(
        gw, tmp_path, "a", [{"name": "base", "model": "test-model"}, {"name": "x", "model": "dead-model"}]
    )
    path_b, _ = eval_run(
        gw, tmp_path, "b", [{"name": "base", "model": "test-model"}, {"name": "x", "model": "test-model"}]
    )
    assert a["variants"]["x"]["errors"] == len(CASES)
    capsys.readouterr()
    assert main(["eval", "compare", str(path_a), str(path_b)]) == 0
    out = capsys.readouterr().out
    n = len(CASES)
    assert f"x: pass rate 0.0% → 100.0%, score 0.000 → 1.000, ERRORS {n} → 0 (not a quality result)\n" in out
    assert "base: pass rate 100.0% → 100.0%, score 1.000 → 1.000\n" in out  # no errors on either side: no mention


# --- llmgw eval run --html report.html ---------------------------------------------------------------


class Page(HTMLParser):
    """The tags of a page, and the text of each table's rows (cell by cell)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_html_report_is_written_self_contained_with_the_cases_intervals_and_tests_of_the_run(
    make_gateway: Any, tmp_path: Path
) -> None:
    gw: RunningGateway = make_gateway()
    html = tmp_path / "sub-report.html"
    _, report = eval_run(
        gw,
        tmp_path,
        "ab",
        [{"name": "base", "model": "test-model"}, {"name": "cut", "model": "test-model", "params": PARTIAL}],
        "--html",
        str(html),
    )
    assert html.exists()
    text = html.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    page = parse(html)
    # self-contained: no scripts, no external files
    assert not [t for t, a in page.tags if t == "script" or "src" in a or (t == "link" and "href" in a)]
    assert f"<h1>ab: {len(CASES)} cases, baseline base</h1>" in text
    assert "id='errors'" not in text  # no errors: no banner

    # the variants with their intervals (Wilson for the pass rate, bootstrap for the score) and tests
    rows = {r[0]: r for r in page.tables["variants"][1:]}
    assert set(rows) == {"base", "cut"}
    cut, base = report["variants"]["cut"], report["variants"]["base"]
    assert cut["pass_rate"] == 0.75 and 0 < cut["pass_rate_ci"][0] < 0.75 < cut["pass_rate_ci"][1] < 1
    low, high = cut["pass_rate_ci"]
    assert rows["cut"][1] == f"75.0% [{low:.1%}, {high:.1%}]"
    assert rows["cut"][2] == f"0.750 [{cut['score_ci'][0]:.3f}, {cut['score_ci'][1]:.3f}]"
    assert rows["base"][1] == f"100.0% [{base['pass_rate_ci'][0]:.1%}, 100.0%]"
    c = report["comparisons"][0]
    assert c["variant"] == "cut" and c["losses"] == 3 and c["wins"] == 0
    assert rows["cut"][5] == "-25.0% (0W/9T/3L)" and rows["base"][5] == "baseline"
    assert rows["cut"][6] == format(c["mcnemar_p_holm"], ".3g")
    d_low, d_high = c["score_difference_ci"]
    assert rows["cut"][7] == f"{c['score_difference']:+.3f} [{d_low:+.3f}, {d_high:+.3f}]"

    # pass rates as bars with their 95% interval: the interval's line spans the Wilson interval
    svg = text[text.index('<svg id="pass-rates"') : text.index("</svg>")]
    rects = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)"', svg)]
    assert rects == [pytest.approx(520.0), pytest.approx(0.75 * 520, abs=0.1)]
    left = float(re.search(r'<rect x="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    spans = [(float(a) - left, float(b) - left) for a, b in re.findall(r'<line x1="([\d.]+)" x2="([\d.]+)" y1', svg)]
    assert spans[1] == (pytest.approx(low * 520, abs=0.1), pytest.approx(high * 520, abs=0.1))

    # the win/tie/loss matrix and the cost/quality plot
    assert page.tables["wins"][1:] == [["base", "–", "3 / 9 / 0"], ["cut", "0 / 9 / 3", "–"]]
    assert sum(t == "circle" for t, _ in page.tags) == 2

    # the answers side by side, for the cases where the variants disagree (and only those)
    assert report["disagreements"] == ["c1", "c10", "c11"]
    assert f"Where the variants disagree ({len(report['disagreements'])} cases)" in text
    side = page.tables["disagreements"]
    assert side[0] == ["case", "base", "cut"]
    assert {r[0]: r[1] for r in side[1:]} == {f"c{i}": f"#echo the answer is {i}" for i in (1, 10, 11)}
    assert all(r[2].startswith("#echo the answer ") and "answer is 1" not in r[2] for r in side[1:])


def test_html_report_of_a_run_with_errors_says_so_at_the_top(make_gateway: Any, tmp_path: Path) -> None:
    gw: RunningGateway = make_gateway()
    html = tmp_path / "report.html"
    eval_run(
        gw,
        tmp_path,
        "down",
        [{"name": "base", "model": "test-model"}, {"name": "down", "model": "dead-model"}],
        "--html",
        str(html),
    )
    text = html.read_text(encoding="utf-8")
    n = len(CASES)
    banner = text.index("<p id='errors' class='bad'>")
    assert banner < text.index("<h2>Variants</h2>")
    assert f"<b>{n} call(s) ended in an error</b>" in text
    rows = {r[0]: r for r in parse(html).tables["variants"][1:]}
    assert rows["down"][3] == f"{n} of {n} (upstream_unavailable ×{n})" and rows["base"][3] == "0"
