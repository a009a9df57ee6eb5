"""Any OpenAI-compatible moderation endpoint (``POST {url}/moderations``) as a guard provider.

One request per batch (``input`` is a list), over httpx, so it never blocks the event loop, on one
pooled client per event loop (a client per call paid a new connection, and a TLS handshake to a
hosted endpoint, on every guarded request). The endpoint's ``flagged`` is the verdict unless the
policy sets a ``threshold`` on the category scores; ``categories`` narrows which categories count
(all are kept for the log).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx

from llmgw.guards.policy import ModerationEndpoint
from llmgw.guards.providers import Verdict


class ModerationApiProvider:
    def __init__(self, name: str, spec: ModerationEndpoint) -> None:
        self.name = name
        self.spec = spec
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> httpx.AsyncClient:
        """The pooled client of the running loop (a client's connections belong to the loop that
        opened them; each worker process, and each test's gateway, runs its own)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._http, self._loop = httpx.AsyncClient(timeout=None), loop  # the caller's timeout bounds a call
        return self._http

    def _headers(self) -> dict[str, str]:
        """The bearer key from ``api_key_env``. A variable named but not set is an error (the
        provider fails open or closed) rather than a request without a key, which a hosted endpoint
        answers 401 on every text; ``GuardRuntime.warm`` reports it at start-up."""
        if not self.spec.api_key_env:
            return {}
        key = os.environ.get(self.spec.api_key_env)
        if not key:
            raise ValueError(f"guard provider {self.name!r}: environment variable {self.spec.api_key_env} is not set")
        return {"authorization": f"Bearer {key}"}

    async def check(self, texts: list[str], source: str) -> list[Verdict]:
        body: dict[str, Any] = {"input": texts}
        if self.spec.model:
            body["model"] = self.spec.model
        url = self.spec.url.rstrip("/") + "/moderations"
        response = await self._client().post(url, json=body, headers=self._headers())
        response.raise_for_status()
        results = response.json().get("results")
        if not isinstance(results, list):
            raise ValueError("moderation response has no `results` list")
        return [self._verdict(r) for r in results]

    def _verdict(self, result: dict[str, Any]) -> Verdict:
        scores = {k: float(v) for k, v in (result.get("category_scores") or {}).items() if isinstance(v, int | float)}
        if self.spec.categories and not set(self.spec.categories) & (set(scores) | set(result.get("categories") or {})):
            # a watched name the endpoint does not use (``Violence``, or S-codes from a Llama Guard
            # server) would never count: every text would pass, silently
            named = sorted(set(scores) | set(result.get("categories") or {}))[:12]
            raise ValueError(f"none of the watched categories {self.spec.categories} in the answer (it has {named})")
        watched = {k: v for k, v in scores.items() if not self.spec.categories or k in self.spec.categories}
        top = max(watched, key=watched.__getitem__, default="")
        score = watched.get(top, 0.0)
        if self.spec.threshold is not None:
            flagged = score >= self.spec.threshold
        elif self.spec.categories:
            flagged = any(bool((result.get("categories") or {}).get(c)) for c in self.spec.categories)
        else:
            flagged = bool(result.get("flagged"))
        if flagged and self.spec.threshold is None:
            named = [c for c, on in (result.get("categories") or {}).items() if on]
            top = named[0] if named else top
            score = max(score, 0.5)  # flagged by the endpoint: at least "likely" whatever the scores say
        return Verdict(flagged, round(score, 4), {k: round(v, 4) for k, v in scores.items()}, top if flagged else "")
