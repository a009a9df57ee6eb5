"""Amazon Bedrock Guardrails as a guard provider: ``ApplyGuardrail`` on each text.

Bedrock assesses all content blocks of one call together and answers one action, so each text is
its own call (concurrently). boto3 is blocking: the client is built and every call runs on this
provider's own threads (as ``llmgw.providers.bedrock`` does), never on the event loop. Inputs
(``user``, ``retrieved``, ``tool``) are sent as ``source: INPUT``, answer windows as ``OUTPUT``.
``GUARDRAIL_INTERVENED`` is the verdict, narrowed to ``categories`` when the policy lists some
(content filter types such as ``PROMPT_ATTACK``, denied topic names, ``WORDS``, PII entity types).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llmgw.guards.policy import BedrockGuardrail
from llmgw.guards.providers import Verdict

#: the content filters' confidence as a score
CONFIDENCE = {"NONE": 0.0, "LOW": 0.35, "MEDIUM": 0.65, "HIGH": 0.95}


def findings(assessments: list[dict[str, Any]]) -> dict[str, float]:
    """What the guardrail acted on, by category, with a score (content filters by their confidence)."""
    found: dict[str, float] = {}

    def add(name: str, score: float) -> None:
        found[name] = max(found.get(name, 0.0), score)

    for a in assessments:
        for f in (a.get("contentPolicy") or {}).get("filters") or []:
            if f.get("action") == "BLOCKED" or f.get("detected"):
                add(f["type"], CONFIDENCE.get(f.get("confidence", ""), 1.0))
        for t in (a.get("topicPolicy") or {}).get("topics") or []:
            if t.get("action") == "BLOCKED" or t.get("detected"):
                add(t["name"], 1.0)
        words = a.get("wordPolicy") or {}
        for w in [*(words.get("customWords") or []), *(words.get("managedWordLists") or [])]:
            if w.get("action") == "BLOCKED" or w.get("detected"):
                add("WORDS", 1.0)
        pii = a.get("sensitiveInformationPolicy") or {}
        for e in [*(pii.get("piiEntities") or []), *(pii.get("regexes") or [])]:
            if e.get("action") in ("BLOCKED", "ANONYMIZED") or e.get("detected"):
                add(e.get("type") or e.get("name") or "PII", 1.0)
    return found


class BedrockGuardrailProvider:
    def __init__(self, name: str, spec: BedrockGuardrail, client: Any = None, timeout: float = 60.0) -> None:
        self.name = name
        self.spec = spec
        self.client = client  # tests give a stubbed one
        #: the check's timeout, also the socket's: the caller stops waiting then, and a call hanging
        #: on for botocore's default 60 s would hold one of ``max_concurrency`` threads, so that a
        #: Bedrock hiccup queues every later text behind the stuck ones (all timing out)
        self.timeout = timeout
        self._session: Any = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=spec.max_concurrency, thread_name_prefix=f"guardrail-{name}")

    def warm(self) -> None:
        """Build the client now (blocking) and ask the AWS chain for credentials: without any, every
        call fails (``NoCredentialsError``); found at start-up (``/readyz`` says ``guards: false``,
        the log names the provider) rather than on each request. A client given (tests) is kept."""
        if self.client is not None:
            return
        self._client()
        if self._session is not None and self._session.get_credentials() is None:
            where = f"profile {self.spec.profile!r}, " if self.spec.profile else ""
            raise ValueError(f"guard provider {self.name!r}: no AWS credentials (environment, {where}role)")

    def _client(self) -> Any:
        with self._lock:
            if self.client is None:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(profile_name=self.spec.profile, region_name=self.spec.region)
                self._session = session
                config = Config(retries={"total_max_attempts": 2, "mode": "standard"},
                                max_pool_connections=self.spec.max_concurrency,
                                connect_timeout=self.timeout, read_timeout=self.timeout)  # fmt: skip
                self.client = session.client("bedrock-runtime", endpoint_url=self.spec.endpoint_url, config=config)
            return self.client

    def _apply(self, text: str, source: str) -> dict[str, Any]:
        return self._client().apply_guardrail(
            guardrailIdentifier=self.spec.guardrail_id,
            guardrailVersion=self.spec.guardrail_version,
            source="OUTPUT" if source == "output" else "INPUT",
            content=[{"text": {"text": text}}],
        )

    async def check(self, texts: list[str], source: str) -> list[Verdict]:
        loop = asyncio.get_running_loop()
        answers = await asyncio.gather(*(loop.run_in_executor(self._executor, self._apply, t, source) for t in texts))
        return [self._verdict(a) for a in answers]

    def _verdict(self, answer: dict[str, Any]) -> Verdict:
        found = findings(answer.get("assessments") or [])
        counted = {k: v for k, v in found.items() if not self.spec.categories or k in self.spec.categories}
        intervened = answer.get("action") == "GUARDRAIL_INTERVENED"
        flagged = intervened and (bool(counted) if self.spec.categories else True)
        score = max(counted.values(), default=1.0 if flagged else 0.0)
        detail = ",".join(sorted(counted)) or (answer.get("actionReason") or "intervened") if flagged else ""
        return Verdict(flagged, round(score, 4), found, detail)
