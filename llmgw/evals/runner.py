"""Running a suite: every (variant, case, repeat) through the gateway, each answer cached on disk.

In process (the gateway's own app, started for the run, so templates, guards, retrieval and
routing run as deployed) or against a running gateway (``--url`` and a key). Answers are cached
in SQLite by (gateway, variant fingerprint, case, repeat): an interrupted run resumes where it
stopped, and a rerun costs nothing, but an answer from one gateway (a ``--url``, or an in-process
config) is never served to a run against another. Errors (the gateway gave no verdict on the
case, see :func:`llmgw.evals.checks.is_error`) are not cached: a rerun tries them again.
Concurrency is bounded; a 429 waits for ``Retry-After`` and tries again, and every attempt is
counted in :class:`Tally`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from llmgw.evals.checks import is_error
from llmgw.evals.suite import Check, Suite, Variant

SCHEMA = """create table if not exists answers (
    gateway text not null, variant text not null, fingerprint text not null, case_id text not null,
    repeat integer not null, record text not null, primary key (gateway, fingerprint, case_id, repeat))"""


class EvalError(Exception):
    """A run that cannot go on (an admin-only check without the admin key): a message, not a traceback."""


def gateway_identity(url: str | None, config: Any = None) -> str:
    """Which gateway answers: the ``--url``, or a digest of the in-process config (a digest only:
    the config may hold provider keys). Part of every cached answer's key."""
    if url:
        return url.rstrip("/")
    dumped = config.model_dump_json() if config is not None else "embedded defaults"
    return "in-process:" + hashlib.sha256(dumped.encode()).hexdigest()[:16]


class AnswerCache:
    def __init__(self, path: Path, gateway: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.gateway = gateway
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("pragma journal_mode=wal")
        columns = {row[1] for row in self.db.execute("pragma table_info(answers)")}
        if columns and "gateway" not in columns:
            # a cache from before answers were keyed by gateway: which gateway gave them is unknown,
            # and serving them to another one is the bug this key prevents
            self.db.execute("drop table answers")
        self.db.execute(SCHEMA)

    @staticmethod
    def key(variant: Variant, request: dict[str, Any] | None) -> str:
        """The variant's fingerprint and, given the request that asks for the answer, a digest of it: an
        edited case (input, messages, vars) or a suite's new system message is another question, whose
        answer is not the one cached under the same case id."""
        if request is None:
            return variant.fingerprint()
        digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return f"{variant.fingerprint()}:{digest}"

    def get(
        self, variant: Variant, case_id: str, repeat: int, request: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        row = self.db.execute(
            "select record from answers where gateway = ? and fingerprint = ? and case_id = ? and repeat = ?",
            (self.gateway, self.key(variant, request), case_id, repeat),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def put(
        self, variant: Variant, case_id: str, repeat: int, record: dict[str, Any], request: dict[str, Any] | None = None
    ) -> None:
        self.db.execute(
            "insert or replace into answers values (?, ?, ?, ?, ?, ?)",
            (self.gateway, variant.name, self.key(variant, request), case_id, repeat, json.dumps(record)),
        )

    def close(self) -> None:
        self.db.close()


def request_body(suite: Suite, variant: Variant, case: dict[str, Any], repeat: int) -> dict[str, Any]:
    if "messages" in case:
        messages = case["messages"] if isinstance(case["messages"], list) else json.loads(case["messages"])
    else:
        messages = [{"role": "user", "content": str(case["input"])}]
    if suite.system:
        messages = [{"role": "system", "content": suite.system}, *messages]
    options: dict[str, Any] = {}
    if variant.prompt:
        vars_ = case.get("vars") or {}
        options["prompt"] = {"id": variant.prompt.split("@")[0], "variables": vars_ if isinstance(vars_, dict) else {}}
        if "@" in variant.prompt:
            options["prompt"]["version"] = variant.prompt.split("@", 1)[1]
    if variant.retrieval is not None:
        options["retrieval"] = variant.retrieval
    if variant.route:
        options["route"] = variant.route
    body = {"model": variant.model, "messages": messages, **variant.params}
    if repeat and "seed" in variant.params:
        body["seed"] = int(variant.params["seed"]) + repeat  # a repeat is another sample, not the same one
    if options:
        body["llmgw"] = options
    return body


ATTEMPTS = 10  # per answer, when the gateway keeps answering 429 with Retry-After


@dataclass(slots=True)
class Tally:
    """Every HTTP request the run made to the gateway (answers, judge gradings, retries after 429):
    what it cost, as opposed to how many answers it got."""

    requests: int = 0
    rate_limited: int = 0  # of those, answered 429 and tried again


async def call(
    client: httpx.AsyncClient, body: dict[str, Any], key: str | None, tally: Tally | None = None
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    tally = tally if tally is not None else Tally()
    for attempt in range(ATTEMPTS):
        started = time.perf_counter()
        response = await client.post("/v1/chat/completions", json=body, headers=headers)
        latency = (time.perf_counter() - started) * 1000.0
        tally.requests += 1
        if response.status_code == 429 and "retry-after" in response.headers and attempt + 1 < ATTEMPTS:
            tally.rate_limited += 1
            await asyncio.sleep(min(30.0, float(response.headers["retry-after"])))
            continue
        break
    record: dict[str, Any] = {
        "status": response.status_code,
        "latency_ms": round(latency, 2),
        "request_id": response.headers.get("x-llmgw-request-id"),
        "model": response.headers.get("x-llmgw-model"),
    }
    data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code >= 400:
        error = data.get("error") or {}
        record.update(error_code=error.get("code"), output="", error=error.get("message"))
        return record
    choice = (data.get("choices") or [{}])[0]
    record["output"] = (choice.get("message") or {}).get("content") or ""
    usage = data.get("usage") or {}
    record["prompt_tokens"], record["completion_tokens"] = usage.get("prompt_tokens"), usage.get("completion_tokens")
    sources = (data.get("llmgw") or {}).get("sources", [])
    record["sources"] = [s.get("id") for s in sources]
    record["source_docs"] = [s.get("doc_id") for s in sources]
    record["prompt"] = response.headers.get("x-llmgw-prompt")
    record["cost_usd"] = float(response.headers.get("x-llmgw-cost-usd") or 0.0)
    return record


JUDGE_SYSTEM = "You grade answers strictly against a rubric. Reply with one integer from 1 (worst) to 5 (best)."
GRADE = re.compile(r"\b([1-5])\b")


async def judge(
    client: httpx.AsyncClient, check: Check, case: dict[str, Any], output: str, key: str | None, tally: Tally
) -> list[float | None]:
    """Grades in [0, 1] from ``judge_repeats`` calls (None where the judge's reply had no grade)."""
    question = case.get("input") or json.dumps(case.get("messages"))
    prompt = f"Rubric: {check.value}\n\nQuestion: {question}\n\nAnswer: {output}\n\nGrade (1-5):"
    grades: list[float | None] = []
    for i in range(check.judge_repeats):
        body = {
            "model": check.judge_model,
            "temperature": 1.0 if check.judge_repeats > 1 else 0.0,
            "seed": i,
            "messages": [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}],
        }
        record = await call(client, body, key, tally)
        found = GRADE.search(record.get("output") or "")
        grades.append((int(found.group(1)) - 1) / 4 if found else None)
    return grades


async def guard_events(client: httpx.AsyncClient, params: dict[str, Any], key: str | None) -> list[dict[str, Any]]:
    """``/admin/guard-events``; an :class:`EvalError` naming the fix when the key may not read it."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = await client.get("/admin/guard-events", params=params, headers=headers)
    if response.status_code != 200:
        raise EvalError(
            f"the `masked` check reads the guardrail log (/admin/guard-events), which needs the admin key; "
            f"the gateway answered {response.status_code}: run with --key set to auth.admin_key "
            "(in process: set auth.admin_key in the config)"
        )
    return response.json().get("data") or []


async def masked_types(client: httpx.AsyncClient, request_id: str, key: str | None) -> list[str]:
    """Entity types the input guards masked or redacted for one request (needs the admin key)."""
    for _ in range(50):  # the guardrail log is written off the request path: wait for the row
        events = await guard_events(client, {"request_id": request_id, "guard": "pii"}, key)
        if events:
            return sorted(
                {e["type"] for ev in events for e in ev.get("entities") or [] if e.get("action") in ("mask", "redact")}
            )
        await asyncio.sleep(0.1)
    return []


async def run(
    suite: Suite,
    cases: list[dict[str, Any]],
    cache: AnswerCache,
    *,
    url: str | None = None,
    key: str | None = None,
    config: Any = None,
    progress: Callable[[bool], None] | None = None,
    tally: Tally | None = None,
) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Every answer, from the cache or the gateway, keyed by (variant, case id, repeat).

    Raises :class:`EvalError` before any call when a ``masked`` check cannot read the guardrail log."""
    tally = tally if tally is not None else Tally()
    answers: dict[tuple[str, str, int], dict[str, Any]] = {}
    judges = [c for c in suite.checks if c.type == "judge"]
    masks = any(c.type == "masked" for c in suite.checks)
    todo = []
    for variant in suite.variants:
        for case in cases:
            for repeat in range(suite.repeats):
                cached = cache.get(variant, case["id"], repeat, request_body(suite, variant, case, repeat))
                if cached is not None:
                    answers[(variant.name, case["id"], repeat)] = cached
                    if progress:
                        progress(True)
                    graded = cached.get("judge") or {}
                    if any(c.judge_key() not in graded for c in judges) and cached.get("status", 200) < 400:
                        todo.append((variant, case, repeat))  # a new or changed judge: grade the cached answer
                else:
                    todo.append((variant, case, repeat))
    if not todo:
        return answers
    async with AsyncExitStack() as stack:
        if url:
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=600))
        else:
            from litestar.testing import AsyncTestClient

            from llmgw.app import create_app

            app = create_app(config)
            test_client = await stack.enter_async_context(AsyncTestClient(app=app, timeout=600))
            client = test_client  # an httpx.AsyncClient talking to the app in process, lifespan included
            key = key or getattr(getattr(config, "auth", None), "admin_key", None)
        if masks:  # before spending a single call on answers the check could not grade
            await guard_events(client, {"limit": 1}, key)
        limit = asyncio.Semaphore(suite.concurrency)

        async def one(variant: Variant, case: dict[str, Any], repeat: int) -> None:
            async with limit:
                body = request_body(suite, variant, case, repeat)
                record = answers.get((variant.name, case["id"], repeat))
                fresh = record is None
                if record is None:
                    record = await call(client, body, key, tally)
                if masks and "masked" not in record and record.get("request_id"):
                    record["masked"] = await masked_types(client, record["request_id"], key)
                graded = record.setdefault("judge", {})
                for check in judges:
                    if check.judge_key() not in graded and record.get("status", 200) < 400:
                        output = record.get("output") or ""
                        graded[check.judge_key()] = await judge(client, check, case, output, key, tally)
            if not is_error(record):  # written as it comes: a stop loses nothing done; an error is retried
                cache.put(variant, case["id"], repeat, record, body)
            answers[(variant.name, case["id"], repeat)] = record
            if progress and fresh:
                progress(False)

        await asyncio.gather(*(one(v, c, r) for v, c, r in todo))
    return answers
