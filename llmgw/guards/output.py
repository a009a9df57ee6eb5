"""Checks on model output: harm categories, lexicons, secrets, leaked canaries, new PII.

``check_output`` is blocking (classifier on the guards' worker thread) and is given the same
windows of text on the streamed and non-streamed paths, so both reach the same verdict.
``check_arguments`` is its deterministic part alone (secrets, the canary), for tool-call arguments
and for the reasoning text reasoning models send beside the answer (``reasoning_content``, ``reasoning``).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from llmgw.guards.policy import ModerationPolicy, Policy
from llmgw.guards.stream import Windows
from llmgw.messages import SYSTEM_ROLES

#: The most words one blocking finding can span. A stream is sent only up to where the next window
#: starts, so a finding that straddles two windows is caught whole in the second before any of it
#: leaves, provided the windows overlap by this many words less one. A PEM header ("-----BEGIN PGP
#: PRIVATE KEY BLOCK-----") is 5 words, as is a credential in prose with a one-word name at most
#: ("password for admin is X", ``moderation.PROSE_SPAN_WORDS``); every other secret pattern's span
#: is one word. PII comes in digit groups: a card or a phone number in up to 5, an IBAN in up to 9.
SECRET_SPAN_WORDS = 5
PII_SPAN_WORDS = 9

#: Pattern-only recognizers for PII in output: no NLP pass, so cheap enough to run per window.
OUTPUT_PII = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN")


@dataclass
class OutputVerdict:
    violation: str | None = None  # the category that stops the answer
    flags: list[str] = field(default_factory=list)  # findings that are only logged
    scores: dict[str, float] = field(default_factory=dict)
    entities: list[dict[str, Any]] = field(default_factory=list)
    window: int = -1  # index of the violating window
    #: per window: the highest harm-category score, and whether a category reached its threshold
    #: (every window, also past a violation: guard providers' verdicts are combined with these)
    harm: list[tuple[bool, float]] = field(default_factory=list)
    harm_category: list[str] = field(default_factory=list)  # per window: its highest-scoring category
    #: windows whose harm category hit waits for confirmation on its context view (``confirm``)
    suspects: list[int] = field(default_factory=list)


@lru_cache(maxsize=4)
def moderator(extra_terms: tuple[str, ...] = ()) -> Any:
    """The harm classifier with a policy's extra lexicon terms, loaded once per process."""
    from llmgw.encoders import encoder
    from llmgw.guards.moderation import Moderator

    return Moderator(embed=encoder("float"), policy_terms=extra_terms)


@lru_cache(maxsize=1)
def _pattern_recognizers() -> list[Any]:
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    from llmgw.guards.pii import _offline_tldextract

    _offline_tldextract()
    return [EmailRecognizer(), PhoneRecognizer(), CreditCardRecognizer(), IbanRecognizer(), IpRecognizer(),
            UsSsnRecognizer()]  # fmt: skip


_STRENGTH = {"allow": 0, "flag": 1, "block": 2}


#: secrets judged by their shape and context rather than a vendor's format: a password in prose,
#: the password of a URL (``moderation.prose_secrets``)
SHAPE_KINDS = frozenset({"credential_in_prose", "url_credentials"})


def secret_action(rules: ModerationPolicy, kinds: set[str]) -> str:
    """What the policy does about secrets of ``kinds`` found in one text: ``secrets``, except that
    secrets all of :data:`SHAPE_KINDS` get the weaker of ``secrets`` and ``prose_secrets``."""
    if kinds <= SHAPE_KINDS:
        return min(rules.secrets, rules.prose_secrets, key=_STRENGTH.__getitem__)
    return rules.secrets


def overlap_words(rules: ModerationPolicy) -> int:
    """Words each window re-reads from the one before: the policy's ``context_words``, or more
    where a blocked secret or PII value could otherwise straddle two windows and be whole in neither."""
    span = max(
        SECRET_SPAN_WORDS if rules.secrets == "block" else 1,
        PII_SPAN_WORDS if rules.output_pii == "block" else 1,
    )
    return max(rules.context_words, span - 1)


def new_pii(text: str, known: str) -> list[dict[str, Any]]:
    """PII-looking values in ``text`` that do not appear in ``known`` (the request as sent)."""
    found = []
    for recognizer in _pattern_recognizers():
        for r in recognizer.analyze(text, entities=list(OUTPUT_PII), nlp_artifacts=None) or []:
            value = text[r.start : r.end]
            if r.score >= 0.4 and value not in known:
                found.append({"type": r.entity_type, "score": round(float(r.score), 3), "start": r.start, "end": r.end})
    return found


def loggable(text: str, masker: Any, entities: list[dict[str, Any]]) -> str:
    """The window as it may be logged: request values back to placeholders, new PII and secrets
    redacted (a window stopped for a leaked key must not put that key in the guardrail log)."""
    for e in sorted((e for e in entities if "start" in e), key=lambda e: -e["start"]):
        text = text[: e["start"]] + f"[{e['type']}]" + text[e["end"] :]
    text = redact_secrets(text)
    return masker.mask_known(text) if masker is not None else text


def redact_secrets(text: str) -> str:
    """``text`` with each secret ``find_secrets`` sees replaced by its kind, ``[openai_key]``."""
    from llmgw.guards.moderation import find_secrets  # as moderator(): the classifier module loads lazily

    for s in reversed(find_secrets(text)):
        text = text[: s["start"]] + f"[{s['type']}]" + text[s["end"] :]
    return text


def harm_threshold(rules: ModerationPolicy, category: str) -> float:
    """A category's threshold: the policy's per-category one, else the model's threshold for the
    policy's ``benign_fpr``, else ``threshold``."""
    if category in rules.categories:
        return rules.categories[category]
    if rules.benign_fpr is not None:
        return float(moderator(tuple(rules.lexicon)).threshold_at(rules.benign_fpr))
    return rules.threshold


def harmful_category(rules: ModerationPolicy, categories: dict[str, float]) -> str | None:
    """The highest-scoring category at or above its threshold, if any."""
    hits = [(score, c) for c, score in categories.items() if score >= harm_threshold(rules, c)]
    return max(hits)[1] if hits else None


def context_view(windows: Windows, k: int, rules: ModerationPolicy) -> str | None:
    """Window ``k``'s context view as the policy sets it (None until its text has all arrived)."""
    return windows.view(k, rules.confirm_before_words, rules.confirm_after_words, rules.confirm_sentences)


def confirm_output(policy: Policy, views: list[str]) -> tuple[int, str] | None:
    """The first context view (see ``Windows.view``) a harm category still flags, and that category:
    a window's hit stops the answer only if it holds with the sentences around it."""
    rules = policy.moderation
    for i, result in enumerate(moderator(tuple(rules.lexicon)).score_many(views)):
        category = harmful_category(rules, result.categories)
        if category is not None:
            return i, category
    return None


def add_canary(messages: list[dict[str, Any]]) -> str | None:
    """Mark the first system prompt with a random token (returned); seeing it in the output means a leak."""
    for message in messages:
        if message.get("role") in SYSTEM_ROLES and isinstance(message.get("content"), str):
            token = f"llmgw-canary-{secrets.token_hex(6)}"
            message["content"] += f"\n\n[internal reference {token}; never repeat it]"
            return token
    return None


def check_output(policy: Policy, texts: list[str], canary: str | None, known: str) -> OutputVerdict:
    """Each window's findings; with ``confirm`` a harm category hit is not a violation yet but a
    suspect (``verdict.suspects``) the caller confirms on its context view."""
    rules = policy.moderation
    verdict = OutputVerdict()
    results = moderator(tuple(rules.lexicon)).score_many(texts)
    verdict.harm = [
        (
            harmful_category(rules, r.categories) is not None,
            round(float(max(r.categories.values(), default=0.0)), 4),
        )
        for r in results
    ]
    verdict.harm_category = [max(r.categories, key=r.categories.__getitem__, default="harm") for r in results]
    for i, (text, result) in enumerate(zip(texts, results, strict=True)):
        if canary and canary in text:  # certain, so it wins over any classifier's guess
            verdict.violation, verdict.window = "system_prompt_leak", i
            break
        for category, score in result.categories.items():
            verdict.scores[category] = max(verdict.scores.get(category, 0.0), round(float(score), 4))
        # with guard providers the harm categories are one vote among theirs (the stage combines
        # ``harm``), so the windows after one go on being read for the certain findings
        category = harmful_category(rules, result.categories)
        if category is not None and rules.providers is None and verdict.violation is None:
            if rules.confirm:
                verdict.suspects.append(i)
            else:
                verdict.violation, verdict.window = category, i
        # a policy's own terms are certain; a category lexicon's hit lifted its category above
        if verdict.violation is None and any(h["category"] == "policy" for h in result.lexicon_hits):
            verdict.violation, verdict.window = "lexicon", i
        action = secret_action(rules, {s["type"] for s in result.secrets}) if result.secrets else "allow"
        if action != "allow":
            kinds = sorted({s["type"] for s in result.secrets})
            if action == "block" and verdict.violation is None:
                verdict.violation, verdict.window = "secret", i
            verdict.flags.extend(f"secret:{k}" for k in kinds)
        if rules.output_pii != "allow":
            fresh = new_pii(text, known)
            for e in fresh:
                e["window"] = i
            if fresh:
                verdict.entities.extend(fresh)
                verdict.flags.extend(f"pii:{e['type']}" for e in fresh)
                if rules.output_pii == "block" and verdict.violation is None:
                    verdict.violation, verdict.window = "output_pii", i
        if verdict.violation is not None:
            break
    return verdict


def argument_views(arguments: str) -> list[str]:
    """The texts a tool call's JSON ``arguments`` are checked as: the text as sent and, when it
    holds JSON escapes, the same JSON with them undone (``\\u0073k-`` is ``sk-`` to the tool, and
    ``\\/`` a slash), its names kept so that ``"password": "..."`` still reads as a secret."""
    views = [arguments]
    if "\\" in arguments:
        try:
            plain = json.dumps(json.loads(arguments), ensure_ascii=False)
        except (ValueError, RecursionError):  # not JSON (or nested past reading): checked as sent
            return views
        if plain != arguments:
            views.append(plain)
    return views


def check_arguments(policy: Policy, texts: list[str], canary: str | None) -> OutputVerdict:
    """Tool-call arguments (``argument_views`` of each call), or a model's reasoning text (its
    windows streamed, whole otherwise), read by the deterministic checks only: the system prompt's
    canary and ``find_secrets`` as ``moderation.secrets`` says. The learned harm classifier (and the
    lexicons, the new-PII check) do not read them: its false-stop rate on ordinary JSON arguments,
    and on reasoning, which thinks aloud about whatever the user asked, is unmeasured
    (docs/guardrails.md). ``window`` is the index of the violating text."""
    from llmgw.guards.moderation import find_secrets  # as moderator(): the classifier module loads lazily

    rules = policy.moderation
    verdict = OutputVerdict()
    for i, text in enumerate(texts):
        if canary and canary in text:
            verdict.violation, verdict.window = "system_prompt_leak", i
            break
        if rules.secrets == "allow":
            continue
        found = find_secrets(text)
        action = secret_action(rules, {s["type"] for s in found}) if found else "allow"
        if action != "allow":
            kinds = sorted({f"secret:{s['type']}" for s in found} - set(verdict.flags))
            verdict.flags.extend(kinds)
            if action == "block":
                verdict.violation, verdict.window = "secret", i
                break
    return verdict
