"""A socket for stronger detectors: guard providers outside the gateway's own models.

The shipped injection detector and moderator are small and run anywhere; the strongest detectors
(a hosted moderation endpoint, Llama Guard behind vLLM or Ollama, Bedrock Guardrails, a
fine-tuned classifier) are what production deployments run. Each is a :class:`GuardProvider`
named in a policy's ``providers`` and chosen per check (injection on each source, output
moderation), combined with the built-in detector by :func:`combine`.

A provider is async all the way (HTTP through httpx, anything blocking on a thread of its own), has
its own timeout, and fails open or closed as its spec (or the policy) says: :func:`consult`
turns an error or a timeout into an :class:`Outcome` carrying it, never an exception.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from llmgw.guards.policy import Combination


@dataclass(frozen=True, slots=True)
class Verdict:
    """One provider's reading of one text: flagged or not, and how strongly (0–1)."""

    flagged: bool
    score: float
    categories: dict[str, float] = field(default_factory=dict)
    detail: str = ""


class GuardProvider(Protocol):
    name: str

    async def check(self, texts: list[str], source: str) -> list[Verdict]:
        """A verdict per text; ``source`` is ``user``, ``retrieved``, ``tool`` or ``output``."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """A provider's verdicts on a batch, or why there are none (``error``; ``fail_open`` says what then)."""

    provider: str
    verdicts: list[Verdict] | None
    error: str | None = None
    fail_open: bool = False


@dataclass(frozen=True, slots=True)
class Lined:
    """A provider in a check's lineup: its timeout, whether it fails open, and how its verdicts are
    reused (``memo_key``: one per provider spec; ``ttl``: the spec's ``verdict_ttl_s``)."""

    provider: GuardProvider
    timeout: float
    fail_open: bool
    memo_key: str = ""
    ttl: float = 0.0


class VerdictMemo:
    """Verdicts already given, by provider spec, source and text (a digest: no text is kept), for
    their spec's ``verdict_ttl_s``. A chat client resends the whole conversation every turn: without
    this each turn sent every earlier turn to every provider again, so a conversation of n turns cost
    n²/2 provider reads (a hosted endpoint's bill, Bedrock's one call per text on its threads). An
    error is never kept. One per gateway (``GuardRuntime.verdicts``), used on the event loop only."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, bytes], tuple[float, Verdict]] = OrderedDict()

    @staticmethod
    def _key(memo_key: str, source: str, text: str) -> tuple[str, str, bytes]:
        return memo_key, source, hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, memo_key: str, source: str, text: str) -> Verdict | None:
        key = self._key(memo_key, source, text)
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    def put(self, memo_key: str, source: str, text: str, verdict: Verdict, ttl: float) -> None:
        if ttl <= 0:
            return
        self._entries[self._key(memo_key, source, text)] = (time.monotonic() + ttl, verdict)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


_USERINFO = re.compile(r"(?<=://)[^/\s@'\"]+@")


def scrub(error: str) -> str:
    """An error's text without the credentials a URL may carry (``https://user:token@host``): httpx
    quotes the whole URL, and the text goes to the guardrail log and the request row."""
    return _USERINFO.sub("***@", error)


async def consult(lineup: list[Lined], texts: list[str], source: str, memo: VerdictMemo | None = None) -> list[Outcome]:
    """Every provider (with its timeout and whether it fails open) on ``texts``, concurrently; each
    reads only the texts ``memo`` holds no verdict of its for."""

    async def one(lined: Lined) -> Outcome:
        provider, timeout, fail_open = lined.provider, lined.timeout, lined.fail_open
        known = [memo.get(lined.memo_key, source, t) if memo is not None and lined.ttl > 0 else None for t in texts]
        todo = [i for i, verdict in enumerate(known) if verdict is None]
        if not todo:
            return Outcome(provider.name, [v for v in known if v is not None])
        asked = [texts[i] for i in todo]
        try:
            verdicts = await asyncio.wait_for(provider.check(asked, source), timeout)
        except TimeoutError:
            return Outcome(provider.name, None, f"timed out after {timeout:g}s", fail_open)
        except Exception as exc:  # noqa: BLE001  (a provider's fault is a verdict about it, not a crash)
            return Outcome(provider.name, None, scrub(f"{type(exc).__name__}: {exc}")[:300], fail_open)
        if len(verdicts) != len(asked):
            return Outcome(provider.name, None, f"{len(verdicts)} verdicts for {len(asked)} texts", fail_open)
        if not all(math.isfinite(v.score) and all(map(math.isfinite, v.categories.values())) for v in verdicts):
            # NaN compares false with everything: a weighted mean of it would pass the text silently
            return Outcome(provider.name, None, "a score that is not a finite number", fail_open)
        for i, verdict in zip(todo, verdicts, strict=True):
            known[i] = verdict
            if memo is not None:
                memo.put(lined.memo_key, source, texts[i], verdict, lined.ttl)
        return Outcome(provider.name, [v for v in known if v is not None])

    if not texts or not lineup:
        return []
    return list(await asyncio.gather(*(one(lined) for lined in lineup)))


def combine(rule: Combination, builtin: tuple[bool, float] | None, verdicts: dict[str, Verdict]) -> tuple[bool, float]:
    """The check's decision from the built-in detector's ``(hit, score)`` (None: not taking part)
    and the providers' verdicts on one text (a provider that failed open is simply absent).

    ``any``: one hit is enough; ``all``: every participant must hit; ``weighted``: the weighted mean
    of the scores against ``rule.threshold`` (weights default to 1). The score returned is the
    highest participant's (``weighted``: the mean), for the log.
    """
    votes: list[tuple[str, bool, float]] = [(name, v.flagged, v.score) for name, v in verdicts.items()]
    if builtin is not None and rule.builtin:
        votes.append(("builtin", builtin[0], builtin[1]))
    if not votes:
        return False, 0.0
    if rule.combine == "weighted":
        weights = [rule.weights.get(name, 1.0) for name, _, _ in votes]
        total = sum(weights) or 1.0
        mean = sum(w * score for w, (_, _, score) in zip(weights, votes, strict=True)) / total
        return mean >= rule.threshold, mean
    top = max(score for _, _, score in votes)
    hits = [hit for _, hit, _ in votes]
    return (all(hits) if rule.combine == "all" else any(hits)), top
