"""An eval suite: ``evals/<name>.yaml``: a dataset, the variants to compare, and how to score them.

Each case is a row of the dataset (JSONL, CSV or inline): ``id``, the user ``input`` (or full
``messages``), optional ``expected`` and template ``vars``. A variant is one way of answering:
a template version, a model, retrieval on or off, decoding parameters. The first variant (or the
one marked ``baseline``) is what the others are compared with.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Dataset(Strict):
    path: str | None = Field(None, description="JSONL or CSV, relative to the suite file")
    inline: list[dict[str, Any]] | None = None


class Variant(Strict):
    name: str
    model: str = "auto"
    prompt: str | None = Field(None, description="template id@version from prompts/")
    retrieval: str | bool | dict[str, Any] | None = Field(
        None, description="a collection name, {collection, k, mode, filters, min_score}, or false to turn it off"
    )
    route: str | None = None
    params: dict[str, Any] = Field({}, description="decoding parameters: temperature, max_tokens, ...")
    baseline: bool = False

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


AssertionType = Literal[
    "exact",
    "contains",
    "not_contains",
    "regex",
    "json_valid",
    "json_schema",
    "numeric",
    "similarity",
    "max_latency_ms",
    "max_cost_usd",
    "blocked",
    "not_blocked",
    "recall_at_k",
    "mrr",
    "judge",
    "masked",
    "verdict",
]


class Check(Strict):
    type: AssertionType
    value: Any = Field(None, description="the text, pattern, schema or limit; default: the case's expected")
    tolerance: float = Field(0.0, ge=0, description="numeric: allowed absolute difference")
    threshold: float = Field(0.8, description="similarity: cosine needed; recall_at_k and mrr: the score needed")
    k: int = Field(5, ge=1, description="recall_at_k: how many retrieved sources count")
    judge_model: str = Field("auto", description="judge: the model grading through the gateway")
    judge_repeats: int = Field(
        3, ge=1, le=10, description="judge: gradings per answer (their spread is the judge's noise)"
    )

    def judge_key(self) -> str:
        return hashlib.sha256(f"{self.value}|{self.judge_model}|{self.judge_repeats}".encode()).hexdigest()[:12]

    ignore_case: bool = True


class Suite(Strict):
    name: str = ""
    description: str = ""
    dataset: Dataset
    variants: list[Variant] = Field(min_length=1)
    checks: list[Check] = Field(min_length=1)
    repeats: int = Field(1, ge=1, le=20)
    concurrency: int = Field(4, ge=1, le=64)
    system: str | None = Field(None, description="a system message added to every case")
    root: str = Field("", exclude=True)
    source: str = Field("", exclude=True, description="the suite's file, for messages")

    @model_validator(mode="after")
    def _names(self) -> Suite:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        if sum(v.baseline for v in self.variants) > 1:
            raise ValueError("at most one variant is the baseline")
        if self.dataset.path is None and self.dataset.inline is None:
            raise ValueError("dataset needs path or inline")
        return self

    @property
    def baseline(self) -> Variant:
        return next((v for v in self.variants if v.baseline), self.variants[0])


class SuiteError(Exception):
    pass


def load_suite(path: str | Path) -> Suite:
    """The suite at ``path``; every way it cannot be read is a :class:`SuiteError` naming the file and
    the problem (the CLI prints it and exits 2), never a traceback."""
    file = Path(path)
    if not file.is_file():
        raise SuiteError(f"no suite at {file}")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise SuiteError(f"{file}: a suite is a mapping (dataset, variants, checks), not a {type(data).__name__}")
        data.setdefault("name", file.stem)
        suite = Suite.model_validate(data)
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{file}: not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{file}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        lines = [f"{file}:"] + [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise SuiteError("\n".join(lines)) from None
    suite.root = str(file.parent.resolve())
    suite.source = str(file)
    return suite


def _rows(file: Path) -> list[Any]:
    """The rows of a JSONL or CSV dataset; a line that is not JSON is a :class:`SuiteError` naming it."""
    try:
        if file.suffix == ".csv":
            with file.open(newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f))
        rows = []
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise SuiteError(f"{file}: line {number} is not JSON: {exc.msg}") from None
        return rows
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{file}: not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def _is_messages(value: Any) -> bool:
    """A list of message objects, or JSON text of one (a CSV cell): what the runner will send."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return False
    return isinstance(value, list) and all(isinstance(m, dict) for m in value)


def load_cases(suite: Suite) -> list[dict[str, Any]]:
    """Every case with an ``id`` (given, or its row number). A bad case is a :class:`SuiteError` naming
    the file (the dataset, or the suite for inline cases) and the case, and so is a dataset without
    cases: a run of nothing would report rates of 0 of 0."""
    if suite.dataset.inline is not None:
        rows: list[Any] = suite.dataset.inline
        where = f"{suite.source or suite.name} (dataset.inline)"
    else:
        assert suite.dataset.path is not None
        file = Path(suite.root) / suite.dataset.path
        if not file.is_file():
            raise SuiteError(f"dataset {file} does not exist")
        rows, where = _rows(file), str(file)
    cases = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise SuiteError(f"{where}: case {n} is a {type(row).__name__}, not an object with 'input' or 'messages'")
        if "input" not in row and "messages" not in row:
            raise SuiteError(f"{where}: case {n} needs 'input' or 'messages'")
        if "messages" in row and not _is_messages(row["messages"]):
            raise SuiteError(f"{where}: case {n}'s 'messages' is not a list of messages (or one as JSON text)")
        cases.append({"id": str(row.get("id") or n), **row})
    if not cases:
        raise SuiteError(f"{where}: no cases")
    seen: set[str] = set()
    for case in cases:
        if case["id"] in seen:
            raise SuiteError(f"{where}: case ids must be unique, {case['id']!r} is used twice")
        seen.add(case["id"])
    return cases
