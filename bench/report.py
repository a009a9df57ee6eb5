"""Markdown tables and target checks from a ``bench.run`` result file.

python -m bench.report bench/results/2025-11-27.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

#: The issues' targets: added latency (ms) with optional stages off (issue 21 tightened p50 to 0.5 ms
#: and p99 to 2 ms), and throughput vs LiteLLM (issue 21: 20x with one worker).
TARGETS = {"added_p50_ms": 0.5, "added_p99_ms": 2.0, "added_ttft_p50_ms": 1.0, "throughput_ratio": 20.0}


def _get(d: dict[str, Any], *path: str) -> float:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return math.nan
        d = d[key]
    return float(d)  # type: ignore[arg-type]


def derive(results: dict[str, Any]) -> dict[str, Any]:
    """Added latency of each gateway over the direct calls measured beside it, and ratios."""
    out: dict[str, Any] = {}
    for name, ref in (("llmgw", "direct"), ("litellm", "direct_litellm_run")):
        gw, base = results.get(name), results.get(ref)
        if not gw or not base:
            continue
        out[name] = {
            "added_p50_ms": _get(gw, "seq", "latency_ms", "p50") - _get(base, "seq", "latency_ms", "p50"),
            "added_p99_ms": _get(gw, "seq", "latency_ms", "p99") - _get(base, "seq", "latency_ms", "p99"),
            "added_ttft_p50_ms": _get(gw, "seq_stream", "ttft_ms", "p50") - _get(base, "seq_stream", "ttft_ms", "p50"),
            "added_ttft_p99_ms": _get(gw, "seq_stream", "ttft_ms", "p99") - _get(base, "seq_stream", "ttft_ms", "p99"),
            "added_stream_p50_ms": _get(gw, "seq_stream", "latency_ms", "p50")
            - _get(base, "seq_stream", "latency_ms", "p50"),
            "rps": _get(gw, "tput", "rate_per_s"),
            "streams_per_s": _get(gw, "tput_stream", "rate_per_s"),
        }
    if "llmgw" in out and "litellm" in out:
        a, b = out["llmgw"], out["litellm"]
        out["ratio_rps"] = a["rps"] / b["rps"] if b["rps"] else math.nan
        out["ratio_streams"] = a["streams_per_s"] / b["streams_per_s"] if b["streams_per_s"] else math.nan
    return out


def checks(derived: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each of the issue's targets; met is None when not measured."""
    gw = derived.get("llmgw", {})
    rows: list[tuple[str, str, bool | None]] = []
    latency = (
        ("added_p50_ms", f"added latency p50 ≤ {TARGETS['added_p50_ms']:g} ms"),
        ("added_p99_ms", f"added latency p99 ≤ {TARGETS['added_p99_ms']:g} ms"),
        ("added_ttft_p50_ms", f"added TTFT p50 ≤ {TARGETS['added_ttft_p50_ms']:g} ms"),
    )
    for key, label in latency:
        value = gw.get(key, math.nan)
        if math.isnan(value):
            rows.append((label, "not measured", None))
        else:
            rows.append((label, f"{value:+.2f} ms", value <= TARGETS[key]))
    ratio = f"{TARGETS['throughput_ratio']:g}×"
    ratios = (("ratio_rps", f"non-streamed req/s ≥ {ratio} LiteLLM"), ("ratio_streams", f"streams/s ≥ {ratio} LiteLLM"))
    for key, label in ratios:
        value = derived.get(key, math.nan)
        if math.isnan(value):
            rows.append((label, "not measured", None))
        else:
            rows.append((label, f"{value:.1f}×", value >= TARGETS["throughput_ratio"]))
    return rows


def _ms(d: dict[str, Any], *path: str) -> str:
    value = _get(d, *path)
    return "–" if math.isnan(value) else f"{value:.2f}"


def _other(d: dict[str, Any], phases: tuple[str, ...]) -> str:
    """CPU used by processes outside the benchmark during these phases (a noisy machine shows here)."""
    values = [d[p]["cpu_pct"]["other"] for p in phases if "other" in d.get(p, {}).get("cpu_pct", {})]
    return f"{max(values):.0f}%" if values else "–"


def _rate(d: dict[str, Any], phase: str) -> str:
    value = _get(d, phase, "rate_per_s")
    return "–" if math.isnan(value) else f"{value:.0f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cpu(d: dict[str, Any], phase: str) -> str:
    cpu = d.get(phase, {}).get("cpu_pct", {})
    return ", ".join(f"{k} {v:.0f}%" for k, v in cpu.items() if v >= 1.0) or "–"


def markdown(report: dict[str, Any]) -> str:
    results = report["results"]
    derived = derive(results)
    names = [n for n in ("direct", "llmgw", "direct_litellm_run", "litellm") if n in results]
    label = {"direct": "direct (llmgw run)", "direct_litellm_run": "direct (LiteLLM run)"}
    block = report.get("params", {}).get("seq_block")
    method = (
        f"each gateway alternating with direct calls in blocks of {block}"
        if block
        else "each gateway interleaved request by request with direct calls"
    )
    lines = [
        f"Sequential (one request at a time; {method}):",
        "",
        "| target | p50 ms | p99 ms | added p50 | added p99 | TTFT p50 | TTFT p99 | added TTFT p50 "
        "| stream p50 | stream p99 | CPU of others |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        r, d = results[name], derived.get(name, {})
        added = [f"{d[k]:+.2f}" if k in d else "–" for k in ("added_p50_ms", "added_p99_ms", "added_ttft_p50_ms")]
        cells = [
            label.get(name, name),
            _ms(r, "seq", "latency_ms", "p50"),
            _ms(r, "seq", "latency_ms", "p99"),
            added[0],
            added[1],
            _ms(r, "seq_stream", "ttft_ms", "p50"),
            _ms(r, "seq_stream", "ttft_ms", "p99"),
            added[2],
            _ms(r, "seq_stream", "latency_ms", "p50"),
            _ms(r, "seq_stream", "latency_ms", "p99"),
            _other(r, ("seq", "seq_stream")),
        ]
        lines.append(_row(cells))
    conc = next((r["tput"].get("concurrency") for r in results.values() if "tput" in r), 32)
    lines += [
        "",
        f"Throughput at concurrency {conc} (CPU as % of one core, whole process tree, over the phase):",
        "",
        "| target | req/s | p50 ms | p99 ms | errors | CPU | streams/s | TTFT p50 | stream p50 | stream p99 "
        "| errors | CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        r = results[name]
        if "tput" not in r and "tput_stream" not in r:
            continue
        errors = [str(r.get(p, {}).get("requests", 0) - r.get(p, {}).get("ok", 0)) for p in ("tput", "tput_stream")]
        cells = [
            label.get(name, name),
            _rate(r, "tput"),
            _ms(r, "tput", "latency_ms", "p50"),
            _ms(r, "tput", "latency_ms", "p99"),
            errors[0],
            _cpu(r, "tput"),
            _rate(r, "tput_stream"),
            _ms(r, "tput_stream", "ttft_ms", "p50"),
            _ms(r, "tput_stream", "latency_ms", "p50"),
            _ms(r, "tput_stream", "latency_ms", "p99"),
            errors[1],
            _cpu(r, "tput_stream"),
        ]
        lines.append(_row(cells))
    if "ratio_rps" in derived:
        lines += [
            "",
            f"llmgw / LiteLLM: {derived['ratio_rps']:.1f}× req/s, {derived['ratio_streams']:.1f}× streams/s.",
        ]
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for target, measured, met in checks(derived):
        lines.append(f"| {target} | {measured} | {'–' if met is None else 'yes' if met else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m bench.report RESULT.json")
    print(markdown(json.loads(Path(args[0]).read_text())), end="")


if __name__ == "__main__":
    main()
