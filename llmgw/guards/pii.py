"""PII detection with Presidio, and reversible masking within one request.

The analyzer is built explicitly with the spaCy model from PyPI (a bare ``AnalyzerEngine()`` would
try to download one) plus the policy's custom recognizers. Results are cached by content hash:
conversation history is resent on every turn, and each message is analysed once.

A :class:`Masker` lives for one request only: the same value gets the same placeholder
(``<PERSON_1>``) everywhere in that request, the mapping never leaves memory, and it is dropped
with the request. A placeholder is never a string the client itself sent (a client may type
``<PERSON_1>``): restoring the answer then turns back into real values only what the masker put
in, and the client's own text comes back exactly as written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from llmgw.errors import InvalidRequest
from llmgw.guards.cards import card_recognizer
from llmgw.guards.events import value_hash
from llmgw.guards.ibans import iban_end
from llmgw.guards.name_recognizer import name_recognizer
from llmgw.guards.nlp import SPACY_MODEL
from llmgw.guards.phones import phone_recognizer
from llmgw.guards.policy import PiiPolicy
from llmgw.guards.stream import replace_placeholders
from llmgw.guards.versions import is_version

#: what a placeholder looks like (``<PERSON_1>``, ``<EMAIL_ADDRESS_12>``, custom entities too)
PLACEHOLDER = re.compile(r"<[^<>\s]+_\d+>")
#: spaCy components the analysis does without (see build_analyzer)
UNUSED_PIPES = ("parser", "tagger", "attribute_ruler", "tok2vec")


@dataclass(frozen=True, slots=True)
class Finding:
    entity: str
    start: int
    end: int
    score: float


def _offline_tldextract() -> None:
    """Presidio's e-mail recognizer uses tldextract, which fetches a suffix list on first use."""
    import tldextract

    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())


SKIPPED_LANGUAGE = "Recognizer not added to registry because language is not supported"


class _SkippedLanguageFilter(logging.Filter):
    """Drops Presidio's warning for each Spanish, Italian and Polish recognizer of its default list
    that a one-language registry leaves out: that is the point of naming the language, and it was
    two dozen warnings at every start-up."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(SKIPPED_LANGUAGE)


def quiet_presidio() -> None:
    presidio = logging.getLogger("presidio-analyzer")
    if not any(isinstance(f, _SkippedLanguageFilter) for f in presidio.filters):
        presidio.addFilter(_SkippedLanguageFilter())


def build_analyzer(policy: PiiPolicy) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _offline_tldextract()
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp: Any = NlpEngineProvider(  # a SpacyNlpEngine: .nlp and .ner_model_configuration are its own
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": policy.language, "model_name": SPACY_MODEL}],
        }
    ).create_engine()
    pipeline = nlp.nlp[policy.language]
    # Presidio reads tokens, lemmas and entities. The parser is dead weight, and so are the shared
    # tok2vec, the tagger and the attribute ruler: NER has its own embedding layer (same entities
    # without them, tested), and they cost ~40% of analyze(). Without tags the lemmatizer falls back
    # to lower-case forms, which Presidio's context words match as substrings ("cards" has "card").
    for name in UNUSED_PIPES:
        if name in pipeline.pipe_names:
            pipeline.disable_pipes(name)
    warnings.filterwarnings("ignore", message=r"\[W108\]")  # "no POS annotation": on purpose, see above
    # spaCy's labels Presidio maps to no entity (CARDINAL, MONEY, EVENT, ...) can never be asked for;
    # left in, Presidio warns about each one in every message analysed
    mapped = nlp.ner_model_configuration.model_to_presidio_entity_mapping
    nlp.ner_model_configuration.labels_to_ignore = sorted(set(pipeline.get_pipe("ner").labels) - set(mapped))
    quiet_presidio()
    # context words may follow a value too ("555 0100 (office)"): look two tokens past it
    enhancer = LemmaContextAwareEnhancer(context_prefix_count=5, context_suffix_count=2)
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=[policy.language], context_aware_enhancer=enhancer)
    # llmgw's phone recognizer covers what Presidio's does (the phonenumbers matcher run for eight
    # regions), which was a third of the time of analyze() on a 300-character message
    analyzer.registry.remove_recognizer("PhoneRecognizer")
    # llmgw's card recognizer covers every issued length (12-19 digits) and the Mastercard 2-series,
    # which Presidio's pattern (13-17 digits, no leading 2) misses (see llmgw.guards.cards)
    analyzer.registry.remove_recognizer("CreditCardRecognizer")
    # spaCy's PERSON entities are evidence for llmgw's name score, not findings of their own: alone,
    # the small model takes products, places, headlines and capitalised words for people
    for recognizer in analyzer.registry.recognizers:
        if getattr(recognizer, "name", None) == "SpacyRecognizer":
            recognizer.supported_entities = [e for e in recognizer.supported_entities if e != "PERSON"]
    for recognizer in builtin_recognizers(policy.language):
        analyzer.registry.add_recognizer(recognizer)
    for i, spec in enumerate(policy.recognizers):
        analyzer.registry.add_recognizer(
            PatternRecognizer(
                supported_entity=spec.entity,
                name=f"custom_{i}_{spec.entity}",
                # None where the spec has none: Presidio's own default (its stubs say list only)
                patterns=[Pattern(p.name, p.regex, p.score) for p in spec.patterns] or None,  # type: ignore[arg-type]
                deny_list=spec.deny_list or None,  # type: ignore[arg-type]
                context=spec.context or None,  # type: ignore[arg-type]
                supported_language=policy.language,
            )
        )
    return analyzer


@lru_cache(maxsize=8)
def presidio_engine(policy_json: str) -> Any:
    """The Presidio engine of a PII policy (given as its JSON), loaded once per process (spaCy
    takes about a second): every gateway's analyzer of that policy shares it."""
    return build_analyzer(PiiPolicy.model_validate_json(policy_json))


EMAIL_SHAPE = r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"


def builtin_recognizers(language: str) -> list[Any]:
    """Recognizers llmgw adds to Presidio's own (see the comments for why each is needed)."""
    from presidio_analyzer import Pattern, PatternRecognizer

    return [
        # Presidio validates e-mail domains against the public suffix list, so addresses at private
        # or reserved domains would pass unmasked: match the shape too.
        PatternRecognizer(
            supported_entity="EMAIL_ADDRESS",
            name="llmgw_email_shape",
            patterns=[Pattern("email-shape", EMAIL_SHAPE, 0.9)],
            supported_language=language,
        ),
        # cards of every issued length and the 2-series, Luhn-validated (llmgw.guards.cards)
        card_recognizer(language),
        # local phone formats and context words Presidio's recognizer misses (see llmgw.guards.phones)
        phone_recognizer(language),
        # names spaCy's small model misses: census name lists plus capitalisation (llmgw.guards.names)
        name_recognizer(language),
    ]


def resolve_overlaps(findings: list[Finding]) -> list[Finding]:
    """Keep non-overlapping spans, preferring the higher score, then the longer span."""
    chosen: list[Finding] = []
    for f in sorted(findings, key=lambda f: (-f.score, -(f.end - f.start), f.start)):
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)


class PiiAnalyzer:
    """Presidio behind a content-hash cache; ``analyze`` is blocking (run it off the event loop)."""

    def __init__(self, policy: PiiPolicy, cache_size: int = 4096) -> None:
        self.policy = policy
        self.entities = policy.watched()
        self._engine: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, list[Finding]] = OrderedDict()
        self.cache_size = cache_size
        self.calls = 0
        self.thresholds = {entity: rule.threshold for entity, rule in policy.entities.items()}
        if policy.person_precision is not None:
            from llmgw.guards.person_score import person_scorer

            self.thresholds["PERSON"] = person_scorer().threshold_for(policy.person_precision)

    def threshold(self, entity: str) -> float:
        return self.thresholds.get(entity, self.policy.default.threshold)

    @property
    def engine(self) -> Any:
        with self._lock:
            if self._engine is None:
                self._engine = presidio_engine(self.policy.model_dump_json())
            return self._engine

    def analyze(self, text: str) -> list[Finding]:
        if not text.strip() or self.entities == []:
            return []
        key = hashlib.sha256(text.encode()).hexdigest()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        self.calls += 1
        raw = self.engine.analyze(text, language=self.policy.language, entities=self.entities, score_threshold=0.0)
        findings = [
            Finding(
                r.entity_type,
                r.start,
                iban_end(text, r.start, r.end) if r.entity_type == "IBAN_CODE" else r.end,
                float(r.score),
            )
            for r in raw
            if r.score >= self.threshold(r.entity_type)
            and not (r.entity_type == "IP_ADDRESS" and is_version(text, r.start))
        ]
        result = resolve_overlaps(findings)
        self._cache[key] = result
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result


@dataclass
class Masker:
    """Placeholders for one request. ``placeholders`` maps placeholder → raw value (memory only)."""

    policy: PiiPolicy
    salt: bytes = field(default_factory=lambda: os.urandom(16))
    placeholders: dict[str, str] = field(default_factory=dict)
    #: placeholder-shaped strings the client sent itself (see :meth:`reserve`): never handed out
    taken: set[str] = field(default_factory=set)
    #: (entity, value) of every redacted value, in order (memory only; see ``fingerprint``)
    redacted: list[tuple[str, str]] = field(default_factory=list)
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    def reserve(self, texts: Any) -> None:
        """Keep every placeholder-shaped string in ``texts`` (the request as the client sent it)
        out of this request's placeholders, so that restoring the answer leaves it alone."""
        for text in texts:
            if "<" in text:
                self.taken.update(PLACEHOLDER.findall(text))

    def placeholder(self, entity: str, value: str) -> str:
        key = (entity, value)
        existing = self._by_value.get(key)
        if existing is not None:
            return existing
        n = self._counts.get(entity, 0) + 1
        while f"<{entity}_{n}>" in self.taken:
            n += 1
        self._counts[entity] = n
        token = f"<{entity}_{n}>"
        self._by_value[key] = token
        self.placeholders[token] = value
        return token

    def apply(self, text: str, findings: list[Finding], where: str) -> tuple[str, list[dict[str, Any]]]:
        """Masked text and the entity records for the log (offsets into the original, hashed values)."""
        out: list[str] = []
        records: list[dict[str, Any]] = []
        cursor = 0
        for f in findings:
            rule = self.policy.rule(f.entity)
            value = text[f.start : f.end]
            records.append({"type": f.entity, "start": f.start, "end": f.end, "score": round(f.score, 3),
                            "action": rule.action, "value_hash": value_hash(self.salt, value)})  # fmt: skip
            if rule.action == "allow":
                continue
            if rule.action == "block":
                raise InvalidRequest(
                    f"{where} contains {f.entity}, which this route's policy does not allow to leave",
                    param=where,
                    code="pii_blocked",
                )
            out.append(text[cursor : f.start])
            if rule.action == "redact":
                self.redacted.append((f.entity, value))
            out.append(self.placeholder(f.entity, value) if rule.action == "mask" else f"[{f.entity}]")
            cursor = f.end
        out.append(text[cursor:])
        return "".join(out), records

    def fingerprint(self) -> str | None:
        """A keyed hash of every value this request masked or redacted, in order; None when none was.

        Masking makes different requests look alike ("Lake <PERSON_1>" for Lake Como and for Lake
        Constance): whoever must tell requests apart by what the client sent (the response cache)
        adds this to the masked text. Equal values in the same order give an equal fingerprint,
        and so do equal placeholder numbers; the values never leave memory, and without the salt
        the hash cannot be matched against guessed names.
        """
        if not self.placeholders and not self.redacted:
            return None
        values = json.dumps([list(self.placeholders.items()), self.redacted], ensure_ascii=False)
        return hmac.new(self.salt, b"masked-values:" + values.encode(), hashlib.sha256).hexdigest()

    def mask_values(self, text: str) -> str:
        """Every value masked in this request, whole, back to its placeholder, in one pass: the exact
        inverse of :meth:`restore` (an answer kept by the cache is served restored as it was). Parts
        of a value are left alone: put back as the whole placeholder, "Dana" of "Dana Reyes" would
        come back as "Dana Reyes" (see :meth:`mask_known`, for logs)."""
        values = sorted({value for (_, value) in self._by_value if value}, key=len, reverse=True)
        if not values:
            return text
        tokens = {value: token for (_, value), token in reversed(list(self._by_value.items()))}
        pattern = re.compile("|".join(re.escape(v) for v in values))
        return pattern.sub(lambda m: tokens[m.group()], text)

    def mask_known(self, text: str) -> str:
        """Put placeholders back over every value masked in this request (for logging answers).

        Parts of a value count too ("Reyes" of "Dana Reyes"): a window may cut a value in two.
        """
        pairs = [(value, token) for (_, value), token in self._by_value.items()]
        pairs += [(part, token) for value, token in pairs for part in value.split() if len(part) >= 3 and part != value]
        for value, token in sorted(pairs, key=lambda p: -len(p[0])):
            if value in text:
                text = text.replace(value, token)
        return text

    def restore(self, text: str) -> str:
        return replace_placeholders(text, self.placeholders)
