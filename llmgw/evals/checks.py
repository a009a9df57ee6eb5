"""Scoring one output against one check: pass or fail, and a score in [0, 1] where it is graded."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from llmgw.evals.suite import Check

NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")

# Refusals that are the gateway's (or the provider's) verdict on the case's content: a result the
# checks grade (``blocked``, ``verdict``; a content check fails on them). Any other error status
# (an unknown route or model, a bad key, a missing template variable, 429 after the retries, a
# provider down) says nothing about quality: it is an error, counted apart and never cached.
# ``context_length_exceeded`` is the model's limit against the case (an upstream's own refusal,
# ``upstream_bad_request`` until 2026-12-06, or no model of ``auto`` large enough): a result of
# the model under test, as in a comparison of two models with different windows.
VERDICT_CODES = frozenset(
    {
        "prompt_injection",
        "pii_blocked",
        "content_filter",
        "upstream_content_filter",
        "upstream_bad_request",
        "context_length_exceeded",
    }
)


def is_error(result: dict[str, Any]) -> bool:
    """The call got no verdict on the case: see :data:`VERDICT_CODES`."""
    status = int(result.get("status") or 0)
    return status == 0 or (status >= 400 and result.get("error_code") not in VERDICT_CODES)


@dataclass(slots=True)
class Outcome:
    passed: bool
    score: float
    detail: str = ""


def _expected(check: Check, case: dict[str, Any]) -> Any:
    return check.value if check.value is not None else case.get("expected")


def _norm(text: str, check: Check) -> str:
    return " ".join(text.split()).lower() if check.ignore_case else " ".join(text.split())


def evaluate(check: Check, result: dict[str, Any], case: dict[str, Any]) -> Outcome:
    """``result``: the run's record of one call (output text, status, error code, latency, cost)."""
    output = result.get("output") or ""
    kind = check.type
    if kind == "blocked":
        ok = result.get("status", 200) >= 400 and result.get("error_code") in (
            check.value or [result.get("error_code")]
        )
        return Outcome(ok, float(ok), str(result.get("error_code") or "answered"))
    if kind == "verdict":  # the case says what should happen: "blocked" or "answered"
        expected = str(case.get("expect") or check.value or "answered")
        refused = result.get("status", 200) >= 400
        ok = refused == (expected == "blocked")
        return Outcome(ok, float(ok), f"{'blocked' if refused else 'answered'} ({result.get('error_code') or 'ok'})")
    if kind == "not_blocked":
        ok = result.get("status", 200) < 400
        return Outcome(ok, float(ok), str(result.get("error_code") or ""))
    if result.get("status", 200) >= 400:
        return Outcome(False, 0.0, f"error {result.get('error_code')}")
    if kind in ("recall_at_k", "mrr"):
        return _retrieval(check, result, case)
    if kind == "masked":  # from the guardrail log: these entity types were masked before the model saw them
        wanted = check.value if check.value is not None else case.get("pii") or []
        wanted = {str(w) for w in (wanted if isinstance(wanted, list) else [wanted])}
        masked = set(result.get("masked") or [])
        missing = sorted(wanted - masked)
        return Outcome(not missing, float(not missing), f"not masked: {', '.join(missing)}" if missing else "")
    if kind == "judge":
        grades = (result.get("judge") or {}).get(check.judge_key()) or []
        valid = [g for g in grades if g is not None]
        if not valid:
            return Outcome(False, 0.0, "the judge gave no grade")
        score = sum(valid) / len(valid)
        spread = max(valid) - min(valid)
        return Outcome(score >= check.threshold, score, f"judge {score:.2f} (spread {spread:.2f} over {len(valid)})")
    expected = _expected(check, case)
    if kind == "exact":
        ok = _norm(output, check) == _norm(str(expected), check)
    elif kind in ("contains", "not_contains"):
        values = expected if isinstance(expected, list) else [expected]
        found = all(_norm(str(v), check) in _norm(output, check) for v in values)
        ok = found if kind == "contains" else not any(_norm(str(v), check) in _norm(output, check) for v in values)
    elif kind == "regex":
        ok = re.search(str(expected), output, re.IGNORECASE if check.ignore_case else 0) is not None
    elif kind in ("json_valid", "json_schema"):
        ok, detail = _json(output, expected if kind == "json_schema" else None)
        return Outcome(ok, float(ok), detail)
    elif kind == "numeric":
        numbers = [float(n.replace(",", ".")) for n in NUMBER.findall(output)]
        ok = any(abs(n - float(expected)) <= check.tolerance for n in numbers)
    elif kind == "similarity":
        from llmgw.encoders import encode_query

        cosine = float(encode_query(output) @ encode_query(str(expected)))
        return Outcome(cosine >= check.threshold, max(0.0, cosine), f"cosine {cosine:.3f}")
    elif kind == "max_latency_ms":
        ok = float(result.get("latency_ms") or 0) <= float(expected)
    elif kind == "max_cost_usd":
        ok = float(result.get("cost_usd") or 0) <= float(expected)
    else:  # pragma: no cover - the suite schema lists every type
        raise ValueError(kind)
    return Outcome(ok, float(ok))


def _retrieval(check: Check, result: dict[str, Any], case: dict[str, Any]) -> Outcome:
    """Against the case's ``relevant`` ids (chunk or document ids; a list, or "a|b")."""
    relevant = case.get("relevant") or check.value or []
    relevant = {str(r) for r in (relevant if isinstance(relevant, list) else str(relevant).split("|"))}
    chunks, docs = result.get("sources") or [], result.get("source_docs") or []
    ranked = [c if c in relevant else d for c, d in zip(chunks, docs, strict=False)]
    if check.type == "recall_at_k":
        score = len(relevant & set(ranked[: check.k])) / max(1, len(relevant))
    else:
        score = next((1.0 / (i + 1) for i, r in enumerate(ranked) if r in relevant), 0.0)
    return Outcome(score >= check.threshold, score, f"{check.type} {score:.2f}")


def _json(output: str, schema: dict[str, Any] | None) -> tuple[bool, str]:
    text = output.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return False, f"not JSON: {exc.msg}"
    if schema is None:
        return True, ""
    import jsonschema

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        return False, f"schema: {exc.message}"
    return True, ""
