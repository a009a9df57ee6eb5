"""An LLM judge as a guard provider: any catalog model (Llama Guard behind vLLM or Ollama, or a
general model with a JSON verdict), prompted by a template from ``prompts/``.

The judge reaches the model through the gateway's own providers (``Hooks.complete``, given by the
stage layer: this domain knows no gateway), one call per text, concurrently; its reply is parsed
by :func:`parse_verdict`. A reply that is neither form is an error, so it fails open or closed as
the policy says rather than passing silently.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from llmgw.guards.policy import LlmJudge
from llmgw.guards.providers import Verdict

_CODES = re.compile(r"\bS\d{1,2}\b")
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Hooks:
    """What a judge needs from the gateway: a template's messages, and a chat completion's text."""

    messages: Callable[[str, dict[str, Any]], Awaitable[list[dict[str, str]]]]
    complete: Callable[[str, list[dict[str, str]], int], Awaitable[str]]


def parse_verdict(reply: str, style: str = "auto") -> Verdict:
    """``safe`` / ``unsafe\\nS1,S2`` (Llama Guard) or ``{"flagged": .., "score": .., "categories": [..]}``
    (also ``{"verdict": "unsafe"}``); ``auto`` tells them apart by the first character."""
    text = reply.strip()
    if style == "json" or (style == "auto" and text.startswith(("{", "```"))):
        return _parse_json(text)
    first, _, rest = text.partition("\n")
    word = first.strip().strip(".").lower()
    if word == "safe":
        return Verdict(False, 0.0)
    if word == "unsafe":
        codes = _CODES.findall(rest or first)
        return Verdict(True, 1.0, {c: 1.0 for c in codes}, ",".join(codes) or "unsafe")
    # the reply is not quoted: a judge may echo the text it read (a passage, an answer window: not
    # masked), and this message goes to the guardrail log, which never holds raw text
    raise ValueError(f"judge reply is neither 'safe' nor 'unsafe' ({len(text)} characters)")


#: what a JSON judge's ``flagged`` / ``verdict`` may say; anything else is an unreadable reply (an
#: error that fails open or closed), never read as "safe": ``{"verdict": "harmful"}`` is not a pass
_YES = frozenset({"true", "yes", "1", "unsafe", "flagged", "flag", "block", "blocked", "injection", "harmful",
                  "malicious", "jailbreak"})  # fmt: skip
_NO = frozenset({"false", "no", "0", "safe", "allow", "allowed", "benign", "clean", "ok", "pass"})


def _decision(value: object, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | str):
        word = str(value).strip().lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
    raise ValueError(f"judge reply's `{key}` is neither a yes nor a no ({type(value).__name__})")


_LABEL = re.compile(r"[A-Za-z][\w\-/ ]{0,39}")


def _label(name: str) -> str:
    """A category as the log may hold it: a short label, else ``other``. A judge asked for short
    names may still write free text (``"contains the e-mail ada@example.com"``), and category names
    become the event's ``scores`` keys and ``detail``: the log never holds raw text."""
    return name if _LABEL.fullmatch(name) else "other"


def _parse_json(text: str) -> Verdict:
    match = _OBJECT.search(text)
    if match is None:
        raise ValueError("judge reply holds no JSON object")
    try:
        data = json.loads(match.group())
    except json.JSONDecodeError as exc:  # the reply itself is not quoted: it may echo the text judged
        raise ValueError(f"judge reply holds no valid JSON object ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("judge reply is not a JSON object")
    if "flagged" in data:
        flagged = _decision(data["flagged"], "flagged")
    elif "verdict" in data:
        flagged = _decision(data["verdict"], "verdict")
    else:
        raise ValueError("judge reply has neither `flagged` nor `verdict`")
    score = data.get("score")
    score = (
        float(score) if isinstance(score, int | float) and not isinstance(score, bool) else (1.0 if flagged else 0.0)
    )
    if not math.isfinite(score):
        raise ValueError("judge reply's `score` is not a finite number")
    score = min(max(score, 0.0), 1.0)
    categories = [_label(str(c)) for c in data.get("categories") or [] if isinstance(c, str | int)]
    return Verdict(flagged, score, {c: score for c in categories}, ",".join(categories) if flagged else "")


class JudgeProvider:
    def __init__(self, name: str, spec: LlmJudge, hooks: Hooks) -> None:
        self.name = name
        self.spec = spec
        self.hooks = hooks

    async def check(self, texts: list[str], source: str) -> list[Verdict]:
        return list(await asyncio.gather(*(self._one(text, source) for text in texts)))

    async def _one(self, text: str, source: str) -> Verdict:
        messages = await self.hooks.messages(self.spec.prompt, {"content": text, "source": source})
        reply = await self.hooks.complete(self.spec.model, messages, self.spec.max_tokens)
        verdict = parse_verdict(reply, self.spec.format)
        watched = set(self.spec.categories)
        if watched and verdict.flagged and verdict.categories and not set(verdict.categories) & watched:
            return Verdict(False, 0.0, verdict.categories, "")  # only categories the policy does not watch
        return verdict
