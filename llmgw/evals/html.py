"""A run report as one self-contained HTML file: no scripts, no fonts, no links to fetch.

Pass rates with their intervals, the win/tie/loss matrix of every pair of variants on the same
cases, tokens against pass rate, and the outputs side by side where the variants disagree. Plots
are inline SVG drawn here; every value from the run is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{white-space:nowrap}pre{white-space:pre-wrap;margin:0;max-width:40em}.bad{color:#a00}.note{color:#555}"""


CHAR_PX = 8.5  # an upper bound on one character's width at 14px system-ui: labels are sized from it


def _text_px(text: str) -> float:
    return len(text) * CHAR_PX


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _bars(variants: dict[str, Any]) -> str:
    """Pass rate per variant: a bar to the estimate, a line across the 95% interval.

    Names take a column as wide as the longest (shortened past 28 characters, the full name in a
    tooltip) and the rate its own column after the bars, so neither is ever cut by the svg's edge."""
    width, row = 520, 26
    names = {name: _short(name) for name in variants}
    left = max(_text_px(n) for n in names.values()) + 12
    right = _text_px("100.0%") + 12
    height = row * len(variants) + 34
    parts = [
        f'<svg id="pass-rates" width="{left + width + right:.0f}" height="{height}" role="img" aria-label="pass rates">'
    ]
    for i, (name, v) in enumerate(variants.items()):
        y = 10 + i * row
        low, high = v["pass_rate_ci"]
        parts.append(
            f'<text class="name" x="{left - 8:.1f}" y="{y + 13}" text-anchor="end"><title>{escape(name)}</title>'
            f"{escape(names[name])}</text>"
        )
        parts.append(f'<rect x="{left:.1f}" y="{y}" width="{v["pass_rate"] * width:.1f}" height="16" fill="#7aa6d8"/>')
        parts.append(
            f'<line x1="{left + low * width:.1f}" x2="{left + high * width:.1f}" y1="{y + 8}" y2="{y + 8}" '
            'stroke="#000" stroke-width="2"/>'
        )
        parts.append(f'<text class="rate" x="{left + width + 8:.1f}" y="{y + 13}">{v["pass_rate"]:.1%}</text>')
    axis = height - 20
    parts.append(f'<line x1="{left:.1f}" x2="{left + width:.1f}" y1="{axis}" y2="{axis}" stroke="#999"/>')
    parts.append(
        f'<text x="{left:.1f}" y="{height - 4}">0%</text>'
        f'<text x="{left + width:.1f}" y="{height - 4}" text-anchor="end">100%</text></svg>'
    )
    return "".join(parts)


def _scatter(variants: dict[str, Any]) -> str:
    """Cost per case (from the gateway's prices; tokens where it reported none) against pass rate.

    A point's label goes on the side with room (left of points in the right half) and stays inside
    the plot vertically, so no label runs off the svg."""
    width, height, margin = 420, 240, 30
    use_cost = any(v.get("cost_usd_per_case") for v in variants.values())
    axis = "cost_usd_per_case" if use_cost else "tokens_per_case"
    most = max((v.get(axis) or 0.0) for v in variants.values()) or 1.0
    parts = [
        f'<svg id="cost-quality" width="{width + margin + 10}" height="{height + 30}" role="img" '
        'aria-label="cost and quality">',
        f'<rect x="{margin}" y="0" width="{width}" height="{height}" fill="none" stroke="#999"/>',
    ]
    for name, v in variants.items():
        x = margin + 10 + (v.get(axis) or 0.0) / most * (width - 20)
        y = height - 10 - v["pass_rate"] * (height - 20)
        label = _short(name, 24)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#d86f3a"/>')
        right_half = x > margin + width / 2
        lx, anchor = (x - 8, "end") if right_half else (x + 8, "start")
        ly = min(max(y + 4, 14), height - 4)
        parts.append(
            f'<text class="point" x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}"><title>{escape(name)}</title>'
            f"{escape(label)}</text>"
        )
    label = f"cost per case → (max ${most:.6f})" if use_cost else f"tokens per case → (max {most:.0f})"
    parts.append(f'<text x="{margin}" y="{height + 20}">{label}</text>')
    parts.append(f'<text x="{margin - 4}" y="14" text-anchor="end" font-size="11">pass</text></svg>')
    return "".join(parts)


def _matrix(summary: dict[str, Any]) -> str:
    names = list(summary["passed"])
    rows = ["<table id='wins'><tr><th>row vs column: wins / ties / losses</th>"]
    rows += [f"<th>{escape(n)}</th>" for n in names] + ["</tr>"]
    for a in names:
        rows.append(f"<tr><th>{escape(a)}</th>")
        for b in names:
            if a == b:
                rows.append("<td>–</td>")
                continue
            pa, pb = summary["passed"][a], summary["passed"][b]
            wins = sum(x and not y for x, y in zip(pa, pb, strict=True))
            losses = sum(y and not x for x, y in zip(pa, pb, strict=True))
            rows.append(f"<td>{wins} / {len(pa) - wins - losses} / {losses}</td>")
        rows.append("</tr>")
    return "".join(rows) + "</table>"


def _errors(v: dict[str, Any]) -> str:
    if not v.get("errors"):
        return "0"
    codes = ", ".join(f"{escape(str(code))} ×{n}" for code, n in v["error_codes"].items())
    return f"<span class='bad'>{v['errors']} of {v['answers']}</span> ({codes})"


def _error_banner(summary: dict[str, Any]) -> str:
    """A run with errors measured less than it seems: said first, not left to a column."""
    if not summary.get("errors"):
        return ""
    return (
        f"<p id='errors' class='bad'><b>{summary['errors']} call(s) ended in an error</b> and got no answer to grade: "
        "their cases count as not passed and <code>llmgw eval gate</code> refuses the comparison.</p>"
    )


def render(summary: dict[str, Any]) -> str:
    variants = summary["variants"]
    comparisons = {c["variant"]: c for c in summary["comparisons"]}
    table = [
        "<table id='variants'><tr><th>variant</th><th>pass rate [95% CI]</th><th>score [95% CI]</th>"
        "<th>errors</th><th>p50 ms</th><th>vs baseline</th><th>McNemar p (Holm)</th><th>score Δ [95% CI]</th></tr>"
    ]
    for name, v in variants.items():
        c = comparisons.get(name)
        versus = f"{c['pass_rate_difference']:+.1%} ({c['wins']}W/{c['ties']}T/{c['losses']}L)" if c else "baseline"
        worse = c is not None and c["pass_rate_difference"] < 0 and c["mcnemar_p_holm"] < summary["alpha"]
        ci = c.get("score_difference_ci") if c else None
        delta = f"{c['score_difference']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if c and ci else ""
        table.append(
            f"<tr class='{'bad' if worse else ''}'><td>{escape(name)}</td>"
            f"<td class='num'>{v['pass_rate']:.1%} [{v['pass_rate_ci'][0]:.1%}, {v['pass_rate_ci'][1]:.1%}]</td>"
            f"<td class='num'>{v['score']:.3f} [{v['score_ci'][0]:.3f}, {v['score_ci'][1]:.3f}]</td>"
            f"<td>{_errors(v)}</td><td class='num'>{v['latency_ms_p50']:.0f}</td><td class='num'>{versus}</td>"
            f"<td class='num'>{'' if c is None else format(c['mcnemar_p_holm'], '.3g')}</td>"
            f"<td class='num'>{delta}</td></tr>"
        )
    table.append("</table>")
    notes = "".join(
        f"<p class='note'>{escape(c['variant'])}: {escape(c['power_note'])}</p>"
        for c in summary["comparisons"]
        if c.get("power_note")
    )
    names = list(summary["passed"])
    side = ["<table id='disagreements'><tr><th>case</th>"] + [f"<th>{escape(n)}</th>" for n in names] + ["</tr>"]
    for case_id, outputs in summary.get("outputs", {}).items():
        side.append(f"<tr><td>{escape(case_id)}</td>")
        for n in names:
            o = outputs[n]
            failed = "<br><span class='bad'>" + escape("; ".join(o["failures"])) + "</span>" if o["failures"] else ""
            side.append(f"<td><pre>{escape(o['output'])}</pre>{failed}</td>")
        side.append("</tr>")
    side.append("</table>")
    title = f"{summary['suite']}: {len(summary['case_ids'])} cases, baseline {summary['baseline']}"
    meta = (
        f"{escape(str(summary.get('started_at', '')))} · gateway {escape(str(summary.get('gateway', '')))} · "
        f"prompts {escape(str(summary.get('prompts_commit') or 'unknown'))} · {summary['repeats']} repeat(s)"
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1><p class='note'>{meta}</p>{_error_banner(summary)}"
        f"<h2>Variants</h2>{''.join(table)}{notes}<h2>Pass rates</h2>{_bars(variants)}"
        f"<h2>Wins, ties and losses</h2>{_matrix(summary)}<h2>Cost and quality</h2>{_scatter(variants)}"
        f"<h2>Where the variants disagree ({len(summary['disagreements'])} cases)</h2>{''.join(side)}</body></html>"
    )
