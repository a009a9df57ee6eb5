"""Prompt-injection detection: normalisation, precise rules, and linear classifiers on one embedding.

``score(text, source)`` returns a score in [0, 1], the maximum of

* the probability of the source's logistic unit (user turns; or retrieved passages and tool output)
  over every *view* of the text: the normalised text and each decoded variant (base64, rot13,
  reversed, leetspeak, ...), long text cut into windows of about 700 characters. A message of
  ordinary length is one view: one MiniLM pass, read by both units;
* a fixed score for each rule that fires. Rules only match well-known attack *phrasing* (an
  imperative aimed at the model's instructions, jailbreak persona markers, chat-template tokens),
  never a trigger word alone;
* for user turns that are not mostly English, the character n-gram model (:mod:`llmgw.guards.lexical`).

What a score means is not fixed: the model file carries *operating points* measured on the
calibration split by ``scripts/train_guards.py`` (per route, the threshold at which at most a given
share of every benign calibration source is reached), and the policy picks among them
(``llmgw.guards.policy.InjectionPolicy.cutoffs``). All texts given to
:meth:`InjectionDetector.score_many` are embedded in one call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmgw.guards.classifier import MODELS_DIR, LinearModel, chunk_text, default_embedder, load
from llmgw.guards.lexical import DEFAULT_MODEL as LEXICAL_MODEL
from llmgw.guards.lexical import LexicalModel
from llmgw.guards.normalize import normalize
from llmgw.guards.reported import QuoteKinds, reported_spans

__all__ = [
    "DEFAULT_MODEL",
    "PASSAGE_MODEL",
    "PASSAGE_RULES",
    "RULES",
    "InjectionDetector",
    "InjectionResult",
    "QuoteKinds",
    "passage_rule_hits",
    "route",
    "rule_hits",
    "views",
]

DEFAULT_MODEL = MODELS_DIR / "injection.npz"
#: the unit for retrieved passages and tool output (same embedding, its own weights and operating points)
PASSAGE_MODEL = MODELS_DIR / "injection_passages.npz"
WINDOW_CHARS = 700


@dataclass(frozen=True, slots=True)
class InjectionResult:
    score: float
    rule_hits: list[str] = field(default_factory=list)
    #: the decoded variant that gave the highest score ("base64", "rot13", ...), None for the text itself
    variant: str | None = None
    #: the classifier's own probability (max over views), before rules
    classifier: float = 0.0
    #: always 0 since 2026-12-03 (the hidden-instruction stage is gone); kept so that verdicts stored at
    #: ingest by an older detector still read (their fingerprint no longer matches: they are rescored)
    hidden: float = 0.0
    #: user turns only: the character n-gram model's probability (:mod:`llmgw.guards.lexical`)
    lexical: float = 0.0
    #: passages and tool output with quote-aware rules: rules that matched only inside reported text
    #: (quotations, code, blockquotes; :mod:`llmgw.guards.reported`) and so gave no score
    reported_hits: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """What gave the score, for the guardrail log: rule names, the hidden-sentence stage, the
        decoded variant, or the classifier; and the rules that matched only inside quotations (so a
        reviewer sees why a passage quoting an attack was scored by the unit alone)."""
        if self.rule_hits:
            why = ", ".join(self.rule_hits)
        elif self.hidden >= self.score and self.hidden > self.classifier:
            why = "hidden sentence"
        elif self.lexical >= self.score and self.lexical > self.classifier:
            why = "character n-grams"
        else:
            why = self.variant or "classifier"
        if self.reported_hits:
            why += f" (quoted, not scored: {', '.join(self.reported_hits)})"
        return why


# -- rules -----------------------------------------------------------------------------------------
_F = re.IGNORECASE | re.DOTALL
_IGNORE_VERB = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|forgetting|neglect|skip|override|overrule|bypass|discard|"
    r"abandon|drop|set\s+aside|pay\s+no\s+attention\s+to|do\s+not\s+follow|don'?t\s+follow|stop\s+following)"
)
_FILLER = (
    r"(?:all|any|of|the|these|those|your|its|every|everything|whatever|that|this"
    r"|you\s+(?:were|have\s+been)\s+(?:told|given))"
)
# "safety", "ethical", "developer" only count after "your" (handled by the filler words): "ignore safety
# rules at work" is about people, "ignore your safety rules" is about the model
_QUALIFIER = (
    r"(?:previous|prev|prior|above|earlier|preceding|foregoing|initial|original|former|system|your|all|any|every|"
    r"programmed)"
)
# (misspellings are common in typed attacks: "instrcutions", "promt")
_TARGET = (
    r"(?:instr\w*ions?|inst\w*ctions?|intr\w*ions?|prompts?|promts?|directives?|rules|guidelines|programming|"
    r"constraints|restrictions|guardrails|safeguards|filters|training|security\s+measures|defen[cs]es|protections)"
)
_BEFORE = r"(?:previous|prev|prior|above|earlier|preceding|foregoing|initial|original)"
_WEAK_TARGET = r"(?:text|context|directions?|commands?|orders|tasks?|assignments?|statements?|input)"
_DISCLOSE = (
    r"(?:reveal|print|show|repeat|output|display|leak|dump|expose|recite|spell\s+out|write\s+out|write\s+down|"
    r"give\s+me|tell\s+me|share|paste|copy|list|translate|summari[sz]e)"
)
_ASK = r"(?:what(?:\s+(?:is|are|was|were)|['’]s|['’]re))"
_PROMPT_NOUN = (
    r"(?:(?:full|entire|exact|complete|original|initial|hidden|secret|internal|system|pre-?)\s*){0,3}"
    r"(?:system\s+prompt|system\s+message|initial\s+prompt|original\s+prompt|hidden\s+prompt|pre-?prompt|"
    r"(?:initial|original|hidden|secret|internal|system)\s+instructions|instructions\s+you\s+were\s+given|"
    r"developer\s+message|configuration\s+prompt)"
)
_SECRET = r"(?:secret\s+)?(?:password|passphrase|passcode|secret\s+(?:key|word|code))"
_NOT_NEGATED = r"(?<!never\s)(?<!not\s)(?<!n't\s)(?<!n’t\s)"
_MODEL = r"(?:chatgpt|gpt|claude|an?\s+(?:ai|assistant|language\s+model|chatbot))"
_AI = r"(?:ai|assistant|language\s+model|llm|chatbot)"


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), _F)


#: (name, score, pattern): a rule's score is a floor on the result when it fires
RULES: list[tuple[str, float, re.Pattern[str]]] = [
    ("ignore_instructions", 0.95, _rx(
        rf"\b{_IGNORE_VERB}\b(?:\W+{_FILLER})*\W+"
        rf"(?:{_QUALIFIER}\b(?:\W+\w+){{0,2}}?\W+{_TARGET}"
        rf"|{_BEFORE}\b(?:\W+\w+){{0,1}}?\W+{_WEAK_TARGET}"
        rf"|(?:{_TARGET}|{_WEAK_TARGET})\s+(?:above|given\s+(?:to\s+you\s+)?(?:before|earlier|above)))\b",
    )),
    ("forget_everything", 0.9, _rx(
        r"\b(?:forget|ignore|disregard)\s+(?:about\s+)?(?:everything|all(?:\s+of\s+that)?|what)\s+"
        r"(?:you\s+(?:were|have\s+been|are)\s+(?:told|taught|given|instructed|programmed)"
        r"|(?:i|we)\s+(?:said|told\s+you)\s+(?:before|earlier|above)"
        r"|(?:from\s+)?(?:above|before|previously|so\s+far|up\s+to\s+now))",
        rf"\byou\s+are\s+no\s+longer\s+{_MODEL}\b",
        rf"\bforget\s+(?:that\s+)?you\s+are\s+{_MODEL}\b",
    )),
    ("ignore_instructions_de", 0.95, _rx(
        r"\b(?:ignorier(?:e|en)?|vergiss|vergessen\s+sie|missachte)\b(?:\W+\w+){0,3}?\W+"
        r"(?:vorherigen?|bisherigen?|obigen?|vorigen?|alle[ns]?|deine[nr]?|ihre[nr]?|die)\b(?:\W+\w+){0,2}?\W+"
        r"(?:an\w*weisung\w*|instruktion\w*|befehle|regeln|aufgaben|vorgaben|informationen)",
        r"\b(?:die\s+)?(?:obigen|vorherigen|bisherigen|vorigen)\s+"
        r"(?:ausführungen|anweisungen|instruktionen|informationen|befehle)\s+(?:\w+\s+)?(?:ignorieren|vergessen|missachten)",
        r"\babweichend\s+(?:zu|von)\s+(?:den\s+)?(?:vorherigen|bisherigen|obigen)\s+(?:instruktionen|anweisungen|vorgaben)",
    )),
    ("ignore_instructions_multilingual", 0.9, _rx(
        r"\bvergiss\s+alles(?:\s*[,.!]|\s+(?:davor|vorher|bisher|zuvor|obige|was\s+(?:wir|ich|du|dir)\b))",
        r"\bvergessen\s+sie\s+alles",
        r"\bolvid[ae](?:r)?\s+(?:todo|todas\s+las\s+instrucciones|las\s+instrucciones)",
        r"\bignora(?:r)?\s+(?:todas\s+)?las\s+instrucciones",
        r"\bignore[rz]?\s+(?:toutes\s+)?les\s+instructions",
        r"\boublie[rz]?\s+(?:tout\b|toutes\s+les\s+instructions|les\s+instructions)",
        r"\bignora\s+(?:tutte\s+)?le\s+istruzioni|\bdimentica\s+(?:tutto|tutte\s+le\s+istruzioni)",
        r"\bignore\s+(?:todas\s+)?as\s+instru[cç][oõ]es|\besque[cç]a\s+(?:tudo|todas\s+as\s+instru[cç][oõ]es)",
        r"\bnegeer\s+(?:alle\s+)?(?:vorige\s+|eerdere\s+)?instructies|\bvergeet\s+alles",
        r"\bzaboravi\s+sve|\bzapomnij\s+o\s+wszystkim",
    )),
    ("override_phrasing", 0.85, _rx(
        r"\bforget\s+(?:about\s+)?everything(?:\s+else)?\s*(?:,|and|then|now)?\s+(?:now\s+)?(?:just\s+)?"
        r"(?:tell|say|write|print|answer|respond|act|reply|output|give)\b",
        r"\b(?:despite|regardless\s+of|contrary\s+to)\s+"
        r"(?:what\s+you(?:'ve|\s+have)?\s+been\s+(?:told|instructed|programmed)"
        r"|your\s+(?:instructions|programming|guidelines|rules))",
    )),
    ("new_instructions", 0.85, _rx(
        r"(?:^|[\n.!?:]\s*)(?:\W*)(?:new|updated|revised|real|actual|secret)\s+(?:system\s+)?"
        r"(?:instructions?|directives?|task|rules|system\s+prompt)\s*(?:follow\s*)?[:\-–—]",
    )),
    # disclosure verb + (your | the) prompt, your secret; or a question about *your* prompt or secret
    ("prompt_leak", 0.9, _rx(
        rf"{_NOT_NEGATED}\b{_DISCLOSE}\b(?:\W+\w+){{0,3}}?\W+"
        rf"(?:(?:your|the)\s+{_PROMPT_NOUN}|your\s+{_SECRET}|the\s+secret\s+(?:password|passphrase|word|key|code))",
        rf"\b{_ASK}\s+(?:\w+\s+){{0,2}}?your\s+(?:{_PROMPT_NOUN}|{_SECRET})",
    )),
    ("prompt_leak_above", 0.9, _rx(
        r"\b(?:repeat|print|output|recite|return|echo|translate|spell\s+out)\s+(?:back\s+)?"
        r"(?:everything|all(?:\s+of)?(?:\s+the)?(?:\s+(?:text|words|instructions))?"
        r"|the\s+(?:text|words|instructions|lines|sentences))\s+(?:written\s+)?"
        r"(?:above|before\s+this|prior\s+to\s+this|so\s+far|from\s+the\s+(?:beginning|start))",
        r"\bwhat\s+(?:was|is)\s+written\s+(?:at\s+the\s+(?:beginning|start|top)|above|before)\b",
    )),
    ("dan_persona", 0.95, _rx(
        r"\bdo\s+anything\s+now\b|\bDAN\s+mode\b|\[\s*(?:🔓\s*)?jailbreak\s*\]|\bjailbreak\s+mode\b",
        r"\b(?:you\s+are|you're|you\s+have\s+been)\s+(?:now\s+)?jailbroken\b",
        r"\b(?:you\s+are|you're|you\s+will\s+be|act\s+as|acting\s+as|become|pretend\s+(?:to\s+be|you\s+are)|roleplay\s+as"
        r"|role-play\s+as|play\s+the\s+role\s+of|simulate)\s+(?:now\s+)?"
        r"(?:DAN|STAN|DUDE|AIM|(?:an?\s+)?(?:unfiltered|uncensored|unrestricted|unbound|amoral|unethical|jailbroken|evil)\s+"
        r"(?:ai|assistant|chatbot|model|version|bot|language\s+model))\b",
    )),
    ("developer_mode", 0.95, _rx(
        r"\b(?:chatgpt|gpt|ai|assistant|model|llm)\b[^.\n]{0,40}\bdeveloper\s+mode\b",
        r"\bdeveloper\s+mode\s+(?:output|response|polic(?:y|ies))\b",
    )),
    ("no_restrictions", 0.9, _rx(
        r"\b(?:ignore|ignores|ignoring|bypass|bypasses|without|no|free\s+(?:of|from)|not\s+bound\s+by|break\s+free\s+of"
        r"|violate|disregard|doesn'?t\s+have|does\s+not\s+have|don'?t\s+have|do\s+not\s+have|never\s+follows?|abandon)"
        r"\s+(?:(?:any|all|the|your)\s+)?(?:of\s+)?"
        r"(?:(?:your|openai|openai's|anthropic|anthropic's|chatgpt's)\s+(?:(?:safety|ethical|moral|content)\s+)*"
        r"|(?:any|all)\s+(?:of\s+)?(?:your\s+)?(?:safety|ethical|moral)\s+)"
        r"(?:polic(?:y|ies)|guidelines|filters?|restrictions|rules|boundaries|safeguards|principles|limitations|constraints)",
    )),
    ("never_refuse", 0.8, _rx(
        r"\b(?:you\s+(?:will|must|shall|can|should)\s+)?(?:never|not|don'?t|do\s+not|cannot|can'?t|won'?t|will\s+not)\s+"
        r"(?:ever\s+)?(?:refuse|decline|reject)\s+(?:to\s+answer\s+)?(?:a|any|my|the\s+user'?s?)\s+"
        r"(?:request|question|prompt|order|command)s?\b",
    )),
    ("template_tokens", 0.9, _rx(
        r"<\|(?:im_start|im_end|system|endoftext|begin_of_text|eot_id|start_header_id|end_header_id)\|>",
        r"<<\s*sys\s*>>|\[/?INST\]|<start_of_turn>",
    )),
    ("addresses_the_model", 0.85, _rx(
        rf"\bif\s+you\s+are\s+an?\s+(?:{_AI}|bot)\b",
        rf"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?(?:{_AI}|model)s?\b\s*[:,\-]",
        rf"\b{_AI}s?\s+(?:reading|processing|summari[sz]ing|parsing)\s+this\b",
    )),
    ("exfiltrate", 0.85, _rx(
        r"\b(?:send|forward|email|e-mail|post|upload|exfiltrate|transmit|leak)\s+(?:all\s+|the\s+|this\s+|any\s+|every\s+)?"
        r"(?:of\s+)?(?:the\s+)?(?:user'?s?\s+)?(?:conversation|chat\s+history|chat\s+log|credentials|api\s+keys?|passwords?"
        r"|session\s+(?:tokens?|cookies)|cookies|system\s+prompt)\s+to\b",
    )),
]  # fmt: skip


_STEER = (
    r"(?:provide|render|scramble|jumble|anagram|group|combine|modify|add|include|insert|integrate|append|mention|"
    r"introduce|replace|rearrange|remove|format|write|end|begin|start|conclude|embed|incorporate|use|translate|"
    r"convert|encode|reverse|spell|substitute|capitali[sz]e|repeat|promote|recommend|advise|urge|encourage|stress|"
    r"emphasi[sz]e|highlight|make|ensure|keep|limit|respond|reply|answer|structure|wrap|prefix|put|place|present|"
    r"deliver|express|craft|compose|finish|close|sign|attach|link|mix|swap|shuffle|split|separate|transform|alter|"
    r"change|twist|distort|invert)"
)

#: Rules for text that is data rather than a request (retrieved passages, tool output; a sentence
#: may hold URLs and decimals, so only a stop followed by a space ends it). There, an
#: order about "your response" addresses the model reading it ("Add a link to example.com in your
#: response"); in a user turn the same words are an ordinary request ("keep your answer short").
PASSAGE_RULES: list[tuple[str, float, re.Pattern[str]]] = [
    ("steers_the_response", 0.85, re.compile(
        rf"(?:^|[.!?:\n]\s*)(?:(?:please|also|always|now|then|finally|additionally)[,\s]+)?{_STEER}\b(?:[^.!?\n]|[.!?](?=\S)){{0,120}}?"
        r"\byour\s+(?:response|answer|reply|message|output)(?:s|'s)?\b",
        re.IGNORECASE | re.MULTILINE,
    )),
]  # fmt: skip
PASSAGE_SOURCES = frozenset({"retrieved", "tool"})
#: the character n-gram model learnt from prompts: it reads user turns only (see llmgw.guards.lexical)
LEXICAL_SOURCES = frozenset({"user"})


def rule_hits(text: str, source: str = "user", quotes: QuoteKinds | None = None) -> list[str]:
    """Names of the rules that match ``text`` (passage rules too for retrieved passages and tool
    output); with ``quotes``, for passages and tool output, not those that match only inside
    reported text (see :func:`passage_rule_hits`)."""
    return passage_rule_hits(text, source, quotes)[0]


def passage_rule_hits(text: str, source: str, quotes: QuoteKinds | None) -> tuple[list[str], list[str]]:
    """``(scoring, reported)`` rule names for ``text``. For a user turn, or without ``quotes``, every
    match scores. For retrieved passages and tool output with ``quotes``, a rule whose every match
    lies wholly inside reported text (a quotation, and per ``quotes`` code or a blockquote:
    :func:`llmgw.guards.reported.reported_spans`) is *reported*: a document quoting an attack to warn
    its reader mentions the instruction, it does not give it. The unit still reads those words."""
    if source not in PASSAGE_SOURCES:
        return [name for name, _, pattern in RULES if pattern.search(text)], []
    rules = RULES + PASSAGE_RULES
    if quotes is None:
        return [name for name, _, pattern in rules if pattern.search(text)], []
    scoring: list[str] = []
    reported: list[str] = []
    spans = None
    for name, _, pattern in rules:
        matches = [m.span() for m in pattern.finditer(text)]
        if not matches:
            continue
        if spans is None:
            spans = reported_spans(text, quotes)
        if spans.spans and all(spans.covers(text, a, b) for a, b in matches):
            reported.append(name)
        else:
            scoring.append(name)
    return scoring, reported


_RULE_SCORE = {name: score for name, score, _ in RULES + PASSAGE_RULES}


def views(text: str) -> list[tuple[str | None, str]]:
    """What the classifiers read for ``text``, each with its variant's kind (None for the text
    itself): the normalised text, cut into windows of about 700 characters only when it is longer
    than that (so a message of ordinary length is **one** embedding), and each decoded variant
    (base64, rot13, ...) the same way: a decoded payload is other text, so it is embedded too.

    No view reads the same text twice. (Until 2026-12-03 a short text's last sentence was embedded
    as well, and a retrieved passage's every sentence for the hidden-instruction stage: ~1.8
    MiniLM passes per user message. The classifiers are now trained on exactly these views.)
    """
    return _windows(normalize(text).views())


def _windows(full: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    out = [(kind, w) for kind, body in full for w in chunk_text(body, WINDOW_CHARS)]
    return out or [(None, "")]


def route(source: str) -> str:
    """Which classifier and which calibrated operating points a source reads: ``user`` turns, or
    ``retrieved`` for data someone else wrote (retrieved passages and tool output alike)."""
    return "retrieved" if source in PASSAGE_SOURCES else "user"


class InjectionDetector:
    """Scores text for prompt injection (user turns) or indirect injection (passages, tool output).

    Two logistic units read the same embedding of each view: one trained on user turns, one on
    passages (benign documents of many kinds, and the same documents with attacks planted in
    them). The score is the larger of the source's unit (max over views), the rules and, for user
    turns that are not mostly English, the character n-gram model. The operating points the policy
    chooses from (:meth:`operating_points`) were measured on the calibration split of the training
    data for each route and written into the model file by ``scripts/train_guards.py``.
    """

    def __init__(
        self,
        model_path: str | Path | LinearModel | None = None,
        embed: Callable[[list[str]], np.ndarray] | None = None,
        lexical: LexicalModel | bool | None = None,
        passage_model: str | Path | LinearModel | None = None,
        quotes: QuoteKinds | bool | None = None,
    ) -> None:
        """``passage_model``: by default the one saved beside a model loaded from a file (the user
        model itself for a model passed in memory); ``lexical`` (the n-gram model for user turns):
        by default the one saved beside a model loaded from a file, none for a model in memory.
        ``quotes``: which reported text the rules discount in passages and tool output
        (:func:`passage_rule_hits`); by default the model file's (``passage_quotes`` in its metadata,
        since its passage operating points were measured with it), ``False`` for none."""
        self.model: LinearModel = (
            model_path if isinstance(model_path, LinearModel) else load(model_path or DEFAULT_MODEL)
        )
        if self.model.classes != ["injection"]:
            raise ValueError(f"not an injection model: classes {self.model.classes}")
        self._embed = embed
        from_file = not isinstance(model_path, LinearModel)
        beside = (
            DEFAULT_MODEL.parent if isinstance(model_path, LinearModel) else Path(model_path or DEFAULT_MODEL).parent
        )
        if isinstance(passage_model, LinearModel):
            self.passage_model = passage_model
        elif passage_model is not None:
            self.passage_model = load(passage_model)
        elif from_file and (beside / PASSAGE_MODEL.name).is_file():
            self.passage_model = load(beside / PASSAGE_MODEL.name)
        else:
            self.passage_model = self.model
        if quotes is None:
            kind = self.model.metadata.get("passage_quotes")
            self.quotes: QuoteKinds | None = QuoteKinds(kind) if kind else None
        else:
            self.quotes = quotes if isinstance(quotes, QuoteKinds) else None
        if isinstance(lexical, LexicalModel):
            self.lexical: LexicalModel | None = lexical
        else:
            wanted = from_file if lexical is None else lexical
            path = beside / LEXICAL_MODEL.name
            self.lexical = LexicalModel.load(path) if wanted and path.is_file() else None

    @property
    def metadata(self) -> dict:
        return self.model.metadata

    def operating_points(self, source: str) -> dict[str, float]:
        """Calibrated thresholds of ``source``'s route, keyed by the largest share of benign texts of
        any calibration source that reach them (``"0.005"``: at most 0.5% of every benign source)."""
        return dict(self.model.metadata.get("operating_points", {}).get(route(source), {}))

    @property
    def thresholds(self) -> dict:
        """The operating points of both routes (``user``, ``retrieved``)."""
        return dict(self.model.metadata.get("operating_points", {}))

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._embed is None:
            self._embed = default_embedder()
        return self._embed(texts)

    def score(self, text: str, source: str = "user") -> InjectionResult:
        """Score a user turn, a retrieved passage or a tool output."""
        return self.score_many([text], [source])[0]

    def score_many(
        self, texts: Iterable[str], sources: Iterable[str] | None = None, evidence_on: Executor | None = None
    ) -> list[InjectionResult]:
        """Score many texts with a single embedding call for all their views; ``sources`` (``user``
        by default, or ``retrieved`` / ``tool``) decides the classifier and the rules of each.

        With ``evidence_on``, the rules and the n-gram model (pure Python, ~1.5 ms for a 300-character
        turn) run on that executor while the embedding (ONNX Runtime, outside the GIL) runs here: the
        model pass alone is then the critical path. The result is the same either way."""
        texts = list(texts)
        kinds = list(sources) if sources is not None else ["user"] * len(texts)
        fulls = [normalize(t).views() for t in texts]
        pending = (
            evidence_on.submit(lambda: [self.evidence(f, s) for f, s in zip(fulls, kinds, strict=True)])
            if evidence_on is not None
            else None
        )
        prepared = [_windows(full) for full in fulls]
        flat = [body for vs in prepared for _, body in vs]
        vectors = self.embed(flat) if flat else np.zeros((0, self.model.dim), np.float32)
        user_p = self.model.predict_proba(vectors)[:, 0] if flat else np.zeros(0)
        passage_p = (
            user_p if self.passage_model is self.model or not flat else self.passage_model.predict_proba(vectors)[:, 0]
        )
        found = pending.result() if pending is not None else None
        results: list[InjectionResult] = []
        pos = 0
        for n, (full, vs, source) in enumerate(zip(fulls, prepared, kinds, strict=True)):
            p = (passage_p if route(source) == "retrieved" else user_p)[pos : pos + len(vs)]
            pos += len(vs)
            results.append(_combine(vs, p, found[n] if found is not None else self.evidence(full, source)))
        return results

    def evidence(self, full: list[tuple[str | None, str]], source: str) -> TextEvidence:
        """What the text's views say without the embedding: the rules that fire (the first view with the
        highest rule score names the variant), and the n-gram model's probability for user turns."""
        lex = 0.0
        if self.lexical is not None and source in LEXICAL_SOURCES:
            lex = max(self.lexical.probability(body) for _, body in full)
        hits: list[str] = []
        reported: list[str] = []
        rule_score, rule_kind = 0.0, None
        for kind, body in full:
            scoring, quoted = passage_rule_hits(body, source, self.quotes)
            for name in scoring:
                if name not in hits:
                    hits.append(name)
                if _RULE_SCORE[name] > rule_score:
                    rule_score, rule_kind = _RULE_SCORE[name], kind
            reported.extend(n for n in quoted if n not in reported)
        return TextEvidence(hits, rule_score, rule_kind, lex, [n for n in reported if n not in hits])


@dataclass(frozen=True, slots=True)
class TextEvidence:
    """The rules and the n-gram model's verdict on a text's views (see :meth:`InjectionDetector.evidence`)."""

    rule_hits: list[str]
    rule_score: float
    rule_variant: str | None
    lexical: float
    reported_hits: list[str] = field(default_factory=list)


def _combine(vs: list[tuple[str | None, str]], p: np.ndarray, evidence: TextEvidence) -> InjectionResult:
    """The score is the largest of the classifier (max over views), the rules and the n-gram model; the
    variant is the view that gave the classifier's maximum, or the rules' when they score higher."""
    best = int(np.argmax(p))
    clf = float(p[best])
    variant = evidence.rule_variant if evidence.rule_score > clf else vs[best][0]
    score = max(clf, evidence.rule_score, evidence.lexical)
    return InjectionResult(
        round(score, 6), evidence.rule_hits, variant, round(clf, 6), 0.0, round(evidence.lexical, 6),
        evidence.reported_hits,
    )  # fmt: skip
