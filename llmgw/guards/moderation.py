"""Output moderation: harm categories from a linear classifier on embeddings, lexicons, and secrets.

* Categories (exactly): ``harassment``, ``hate``, ``violence``, ``self-harm``, ``sexual``,
  ``weapons_crime``, over all-MiniLM-L6-v2 embeddings of the normalised text, cut into windows of
  about 700 characters (the score is the max over windows). The shipped model has a harmful unit
  (:class:`HarmfulUnit`, one hidden layer) that decides whether a text is harmful and one logistic
  unit per category that says which (:meth:`Moderator.probabilities`); it is calibrated so 0.5
  flags 5 % of the benign texts of its calibration split, and carries the table from other benign
  false-positive targets to thresholds (:meth:`Moderator.threshold_at`, a policy's
  ``moderation.benign_fpr``). ``thresholds`` overrides the threshold per category. A model with
  the six category units only is read as before.
* Lexicons: ``guardrails/lexicons/<category>.txt``, one term or phrase per line (``#`` comments, a
  trailing ``*`` matches any word ending), matched case-insensitively on whole words of the
  normalised text. A hit lifts its category to ``lexicon_score`` (0.9 by default, so it is
  flagged; a file with a floor says 1.0, so a counted hit flags at any threshold) if the
  classifier's own score for the same text (its top category, before any lexicon) is at least
  ``lexicon_floor``: the model file's ``metadata["lexicon_floor"]``, chosen on
  calibration apart from the threshold (round 4), or 0 for a file without one (every hit counts, as
  before). ``extra_terms`` adds terms per category at construction time; ``policy_terms`` (a
  policy's ``moderation.lexicon``) have no category: a hit is reported as category ``policy``.
* Secrets: regexes for API keys, tokens, private keys and JWTs in the *original* text, returned as
  ``{"type", "start", "end"}`` spans (see :func:`find_secrets`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmgw.guards.classifier import MODELS_DIR, LinearModel, chunk_text, default_embedder, load, sigmoid
from llmgw.guards.normalize import normalize

__all__ = [
    "CATEGORIES",
    "DEFAULT_MODEL",
    "LEXICON_DIR",
    "HarmfulUnit",
    "ModerationResult",
    "Moderator",
    "find_secrets",
    "load_lexicons",
    "save_model",
    "views",
]

CATEGORIES = ("harassment", "hate", "violence", "self-harm", "sexual", "weapons_crime")
DEFAULT_MODEL = MODELS_DIR / "moderation.npz"
LEXICON_DIR = MODELS_DIR.parent / "lexicons"
WINDOW_CHARS = 700


@dataclass(frozen=True)
class HarmfulUnit:
    """Whether a text is harmful at all: a perceptron with one hidden layer (ReLU) over the vector,
    stored beside the category units in the model file (``hidden_weights``, ``hidden_bias``,
    ``out_weights``, ``out_bias``). A linear unit could not tell "X are vermin" from "saying X are
    vermin is hateful": both point the same way in the embedding space."""

    hidden_weights: np.ndarray  # (h, d)
    hidden_bias: np.ndarray  # (h,)
    out_weights: np.ndarray  # (h,)
    out_bias: float

    def proba(self, vectors: np.ndarray) -> np.ndarray:
        hidden = np.maximum(np.asarray(vectors, np.float32) @ self.hidden_weights.T + self.hidden_bias, 0.0)
        return np.asarray(sigmoid(hidden @ self.out_weights + self.out_bias))

    @classmethod
    def load(cls, path: str | Path) -> HarmfulUnit | None:
        with np.load(Path(path), allow_pickle=False) as data:
            if "hidden_weights" not in data.files:
                return None
            return cls(
                data["hidden_weights"].astype(np.float32),
                data["hidden_bias"].astype(np.float32),
                data["out_weights"].astype(np.float32),
                float(data["out_bias"]),
            )

    def arrays(self) -> dict[str, np.ndarray]:
        return {"hidden_weights": self.hidden_weights.astype(np.float16), "hidden_bias": self.hidden_bias,
                "out_weights": self.out_weights, "out_bias": np.array(self.out_bias, np.float32)}  # fmt: skip


def save_model(path: str | Path, model: LinearModel, harmful: HarmfulUnit | None) -> None:
    """The category units (as :meth:`LinearModel.save` writes them) and the harmful unit, in one file."""
    arrays: dict[str, Any] = {
        "weights": model.weights.astype(np.float16),
        "bias": model.bias.astype(np.float32),
        "classes": np.array(model.classes, dtype=str),
        "metadata": np.array(json.dumps(model.metadata, sort_keys=True)),
        **(harmful.arrays() if harmful is not None else {}),
    }
    np.savez_compressed(path, **arrays)


@dataclass(frozen=True, slots=True)
class ModerationResult:
    categories: dict[str, float]
    flagged: list[str] = field(default_factory=list)
    #: ``{"category", "term"}`` for each lexicon term found
    lexicon_hits: list[dict[str, str]] = field(default_factory=list)
    #: ``{"type", "start", "end"}`` offsets into the original text
    secrets: list[dict[str, Any]] = field(default_factory=list)
    #: the classifier's own top-category score, before any lexicon hit lifted a category
    model_score: float = 0.0

    @property
    def score(self) -> float:
        return max(self.categories.values(), default=0.0)


# -- secrets ---------------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(
    r"^(?:<[^>]*>|\$\{?[A-Za-z_]+\}?|\{\{.*\}\}|%\(?[A-Za-z_]+\)?s?|(?:your|my|the)[-_ ]?\w*|x{4,}|\*{3,}|\.{3,}"
    r"|.*(?:example|placeholder|changeme|change[-_]me|redacted|dummy|sample|insert|replace).*|none|null|true|false)$",
    re.IGNORECASE,
)

_KEY_KIND = r"(?:(?:RSA|DSA|EC|OPENSSH|PGP|ENCRYPTED|SSH2) )?PRIVATE KEY(?: BLOCK)?"
_GENERIC_NAME = (
    r"(?:api[_-]?key|apikey|api[_-]?secret|secret[_-]?key|client[_-]?secret|access[_-]?token|auth[_-]?token"
    r"|bearer[_-]?token|private[_-]?key|password|passwd|pwd|secret|token)"
)

#: (type, pattern, group): the span reported is the match of ``group`` (0 for the whole match)
SECRET_PATTERNS: list[tuple[str, re.Pattern[str], int]] = [
    ("private_key", re.compile(
        rf"-----BEGIN {_KEY_KIND}-----(?:[\s\S]{{0,8000}}?-----END {_KEY_KIND}-----)?"
    ), 0),
    ("aws_access_key", re.compile(
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}(?![A-Z0-9])"
    ), 0),
    ("aws_secret_key", re.compile(
        r"(?i)aws_?secret_?(?:access_?)?key\W{0,5}?[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
    ), 1),
    ("anthropic_key", re.compile(r"(?<![\w-])sk-ant-(?:api|admin|sid)\d{2}-[A-Za-z0-9_\-]{32,}"), 0),
    ("openai_key", re.compile(
        r"(?<![\w-])sk-(?!ant-)(?:(?:proj|svcacct|admin|None)-)?"
        r"(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{20,}(?![\w-])"
    ), 0),
    ("github_token", re.compile(
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])"
    ), 0),
    ("slack_token", re.compile(
        r"(?<![A-Za-z0-9-])xox[abposre]-(?:\d+-)+[A-Za-z0-9-]{8,}(?![A-Za-z0-9-])"
        r"|https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}"
    ), 0),
    ("google_api_key", re.compile(r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_-])"), 0),
    ("stripe_key", re.compile(r"(?<![A-Za-z0-9_])(?:sk|rk)_live_[0-9A-Za-z]{20,}(?![A-Za-z0-9_])"), 0),
    ("jwt", re.compile(
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}(?![A-Za-z0-9_-])"
    ), 0),
    ("url_credentials", re.compile(  # scheme://user:password@host: the password
        r"(?i)(?<![\w+.-])[a-z][a-z0-9+.-]{1,20}://([^\s:/@?#\"'`<>]*):([^\s/@?#\"'`<>]{3,200})@[\w\[]"
    ), 2),
    ("generic_secret", re.compile(
        rf"(?i)\b(?:[a-z0-9_]*_)?{_GENERIC_NAME}\b[\"']?\s*(?::=|=>|[:=])\s*[\"'`]([^\"'`\s]{{8,200}})[\"'`]"
    ), 1),
]  # fmt: skip


#: A credential written in prose or loose notes, not as a quoted field: "the DB password is
#: Tr0ub4dor&3", "user admin / pwd: hunter22x", ``export DB_PASS=s3cr3tVal``. A credential word,
#: at most two words after it ("password for admin is"), a link (is, was, to, ``:``, ``=``, ``->``),
#: and one token judged by :func:`_prose_value_ok`; with no link, a token of three character
#: classes ("use token 7fA9c2e81bD04f3a9"). With a one-word name the span is at most
#: :data:`PROSE_SPAN_WORDS` words, as the stream windows' overlap expects (``output.SECRET_SPAN_WORDS``);
#: a two-word name ("API key for prod is X") can make it six or seven, and a stream window boundary
#: that falls inside such a span hides it.
_PROSE_NAME = (
    rf"(?:[a-z0-9_]*_)?(?:{_GENERIC_NAME}|pass(?:word)?s?|passphrase|passcode|pw|api\s+key|access\s+key"
    r"|secret\s+key|credentials?|contrase(?:ñ|n)a|clave|mot\s+de\s+passe|passwort|kennwort|senha|wachtwoord)"
)
_PROSE_LINK = (
    r"(?:\s*(?::|=|->|=>|-|\u2014|\u2013)\s*|[^\S\n]+(?:is|was|are|were|reads|to"
    r"|es|era|est|\u00e9tait|ist|war|lautet|\u00e9)[^\S\n]*:?[^\S\n]+)"  # and Spanish, French, German, Portuguese
)
_PROSE_VALUE = r"[\"'`\u201c\u2018]?([^\s\"'`\u201d\u2019]{8,200})"
PROSE_CREDENTIAL = re.compile(  # words after the name only before a link: "password for db: X" is linked
    rf"(?i)(?<![\w-]){_PROSE_NAME}(?![\w-])"
    rf"(?:((?:[^\S\n]+[\w'-]+){{0,2}}?){_PROSE_LINK}{_PROSE_VALUE}|[^\S\n]+([^\s\"'`]{{8,200}}))"
)
#: words of the span with a one-word name: the name, two after it, the link, the value
PROSE_SPAN_WORDS = 5
#: words between the name and the link that make the value something else than the credential
_PROSE_NOT_VALUE = re.compile(
    r"(?i)\b(?:hash(?:ed|es)?|digest|checksum|length|policy|policies|rules?|requirements?|id|ids|count|limit"
    r"|expir\w*|strength|format|field|prompt|hint|budget|usage|window|reset|manager|must|should)\b"
)
_NOT_A_SECRET_VALUE = re.compile(
    r"(?i)^(?:v?\d+(?:[.,:/-]\d+)+\w{0,3}|[^@\s]+@[^@\s]+\.[a-z]{2,}|[a-z][a-z0-9+.-]*://\S*|www\.\S+|/\S*)$"
)


def _prose_value_ok(value: str, linked: bool) -> bool:
    """Whether a token after a credential word reads as a chosen or generated secret, not as
    language, a number, a version, an address or code: no placeholder; a digit, or three character
    classes; some letter run mixed with digits or case (``12-character`` and ``case-sensitive``
    are words); entropy as the generic rule asks."""
    if _PLACEHOLDER.match(value) or _NOT_A_SECRET_VALUE.match(value) or any(c in value for c in "()[]{}<>"):
        return False
    classes = _char_classes(value)
    if not (classes[2] or sum(classes) >= 3) or not (classes[0] or classes[1]):
        return False
    runs = re.findall(r"[A-Za-z0-9]+", value)
    if all(r.isdigit() or (r.isalpha() and (r.islower() or r.isupper() or r.istitle())) for r in runs):
        return False  # words and numbers joined by punctuation: language, a date, a size
    return _entropy(value) >= 2.5 and (linked or sum(classes) >= 3)


#: what stands for a password in a documented URL (``postgresql://user:password@host``)
_URL_PLACEHOLDER = re.compile(
    r"(?i)^(?:pass(?:word|wd)?|pwd|pw|secret|token|key|api[_-]?key|credentials?|\w*_(?:password|pass|token|secret|key))$"
)


def _url_password_ok(user: str, value: str) -> bool:
    """Whether the password part of a URL is a value, not a placeholder (``password``, ``<pw>``,
    ``${DB_PASSWORD}``, ``****``, ``YOUR_TOKEN``), a port (``host:443@``, a disguise trick) or a
    product's documented default (the user's name again: ``guest:guest``, ``admin:admin``)."""
    return not (
        _PLACEHOLDER.match(value)
        or _URL_PLACEHOLDER.match(value)
        or (value.isdigit() and len(value) <= 5)
        or value.lower() == user.lower()
    )


def _prose_credentials(text: str) -> list[tuple[int, int]]:
    found = []
    for m in PROSE_CREDENTIAL.finditer(text):
        if _PROSE_NOT_VALUE.search(m.group(1) or ""):
            continue
        group = 2 if m.group(2) is not None else 3
        value = m.group(group).rstrip(".,;:?)]}")
        if len(value) >= 8 and _prose_value_ok(value, linked=group == 2):
            start = m.start(group)
            found.append((start, start + len(value)))
    return found


#: ``name = "value"`` names the generic rule matches that are not credentials: a pagination or
#: sync cursor (``page_token``, ``next_page_token``), passed back to an API as it came (tool calls)
_CURSOR_NAME = re.compile(r"(?i)(?:[a-z0-9_]*_)?(?:page|next|prev|previous|continuation|sync|resume)_token\b")


def _entropy(value: str) -> float:
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


_CLASSES = tuple(re.compile(p) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))


def _char_classes(value: str) -> list[bool]:
    """Whether ``value`` has a lowercase letter, an uppercase one, a digit, anything else."""
    return [pattern.search(value) is not None for pattern in _CLASSES]


def _generic_ok(value: str) -> bool:
    if _PLACEHOLDER.match(value):
        return False
    return sum(_char_classes(value)) >= 2 and _entropy(value) >= 2.5


def find_secrets(text: str) -> list[dict[str, Any]]:
    """API keys, tokens, private keys and JWTs in ``text``: ``[{"type", "start", "end"}]``, sorted.

    Specific formats win over the generic ``name = "value"`` rule when spans overlap; generic
    values that look like placeholders (``"YOUR_API_KEY"``, ``"<token>"``, ``"xxxx"``) or have
    low entropy are skipped.
    """
    found: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern, group in SECRET_PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span(group)
            if kind == "generic_secret" and (not _generic_ok(m.group(group)) or _CURSOR_NAME.match(m.group(0))):
                continue
            if kind == "url_credentials" and not _url_password_ok(m.group(1), m.group(group)):
                continue
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            found.append({"type": kind, "start": start, "end": end})
    for start, end in _prose_credentials(text):
        if not any(start < e and s < end for s, e in taken):
            taken.append((start, end))
            found.append({"type": "credential_in_prose", "start": start, "end": end})
    return sorted(found, key=lambda f: (f["start"], f["end"]))


# -- lexicons --------------------------------------------------------------------------------------
def _term_pattern(term: str) -> str:
    parts = []
    for word in term.split():
        if word.endswith("*"):
            parts.append(re.escape(word[:-1]) + r"\w*")
        else:
            parts.append(re.escape(word))
    return r"\s+".join(parts)


def load_lexicons(directory: str | Path | None = None) -> dict[str, list[str]]:
    """Terms per category from ``<directory>/<category>.txt`` (missing files mean no terms)."""
    root = Path(directory) if directory is not None else LEXICON_DIR
    out: dict[str, list[str]] = {}
    for cat in CATEGORIES:
        path = root / f"{cat}.txt"
        if not path.is_file():
            continue
        terms = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip().lower()
            if line:
                terms.append(line)
        out[cat] = terms
    return out


def _compile(terms: Iterable[str]) -> re.Pattern[str] | None:
    terms = sorted({t.strip().lower() for t in terms if t.strip()}, key=len, reverse=True)
    if not terms:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(_term_pattern(t) for t in terms) + r")(?!\w)", re.IGNORECASE)


def views(text: str) -> list[str]:
    """What the classifier reads: windows of the normalised text."""
    return chunk_text(normalize(text).text, WINDOW_CHARS) or [""]


class Moderator:
    """Scores (model output) text over :data:`CATEGORIES`, plus lexicon hits and secrets."""

    def __init__(
        self,
        model_path: str | Path | LinearModel | None = None,
        embed: Callable[[list[str]], np.ndarray] | None = None,
        *,
        lexicon_dir: str | Path | None = None,
        extra_terms: Mapping[str, Iterable[str]] | None = None,
        thresholds: Mapping[str, float] | None = None,
        lexicon_score: float | None = None,
        policy_terms: Iterable[str] = (),
        harmful: HarmfulUnit | None = None,
        lexicon_floor: float | None = None,
    ) -> None:
        if isinstance(model_path, LinearModel):
            self.model, self.harmful = model_path, harmful
        else:
            self.model = load(model_path or DEFAULT_MODEL)
            self.harmful = harmful or HarmfulUnit.load(model_path or DEFAULT_MODEL)
        if sorted(self.model.classes) != sorted(CATEGORIES):
            raise ValueError(f"not a moderation model: classes {self.model.classes}")
        self._index = [self.model.classes.index(c) for c in CATEGORIES]
        self._embed = embed
        terms = load_lexicons(lexicon_dir)
        for cat, extra in (extra_terms or {}).items():
            if cat not in CATEGORIES:
                raise ValueError(f"unknown moderation category {cat!r}")
            terms.setdefault(cat, []).extend(extra)
        self._lexicons = {cat: p for cat, ts in terms.items() if (p := _compile(ts)) is not None}
        self.thresholds = {c: 0.5 for c in CATEGORIES}
        self.thresholds.update(thresholds or {})
        #: what a counted lexicon hit lifts its category to: the file's ``metadata["lexicon_score"]`` (1.0 for a
        #: file with a floor, so a counted hit flags at any threshold), else 0.9
        self.lexicon_score = float(self.metadata.get("lexicon_score", 0.9) if lexicon_score is None else lexicon_score)
        #: a category lexicon's hit counts only where the classifier's own score reaches this
        self.lexicon_floor = float(self.metadata.get("lexicon_floor", 0.0) if lexicon_floor is None else lexicon_floor)
        self._policy = _compile(policy_terms)

    @property
    def metadata(self) -> dict:
        return self.model.metadata

    def threshold_at(self, benign_fpr: float) -> float:
        """The threshold that flagged ``benign_fpr`` of the benign texts of the model's calibration
        split (interpolated in its table, ``metadata["fpr_thresholds"]``); 0.5 if it has none."""
        table = sorted((float(k), float(v)) for k, v in (self.metadata.get("fpr_thresholds") or {}).items())
        if not table:
            return 0.5
        fprs, thresholds = zip(*table, strict=True)
        return float(np.interp(benign_fpr, fprs, thresholds))

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, 6)`` category scores. With a :class:`HarmfulUnit` that unit decides *whether* (its
        probability is the top category's score) and the category units only *which*: each category
        scores the harmful probability times its share of the top category's."""
        cats = self.model.predict_proba(vectors)[:, self._index]
        if self.harmful is None:
            return cats
        top = np.maximum(cats.max(axis=1, keepdims=True), 1e-9)
        return self.harmful.proba(vectors)[:, None] * cats / top

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._embed is None:
            self._embed = default_embedder()
        return self._embed(texts)

    def lexicon_hits(self, text: str) -> list[dict[str, str]]:
        hits = []
        lexicons = [*self._lexicons.items(), *([("policy", self._policy)] if self._policy else [])]
        for cat, pattern in lexicons:
            seen = set()
            for m in pattern.finditer(text):
                term = m.group(0).lower()
                if term not in seen:
                    seen.add(term)
                    hits.append({"category": cat, "term": term})
        return hits

    def score(self, text: str) -> ModerationResult:
        return self.score_many([text])[0]

    def score_many(self, texts: Iterable[str]) -> list[ModerationResult]:
        texts = list(texts)
        normed = [normalize(t).text for t in texts]
        windows = [chunk_text(n, WINDOW_CHARS) or [""] for n in normed]
        flat = [w for ws in windows for w in ws]
        probs = self.probabilities(self.embed(flat)) if flat else np.zeros((0, 6))
        results = []
        pos = 0
        for text, norm, ws in zip(texts, normed, windows, strict=True):
            p = probs[pos : pos + len(ws)].max(axis=0)
            pos += len(ws)
            scores = {c: round(float(p[i]), 6) for i, c in enumerate(CATEGORIES)}
            own = max(scores.values())
            hits = self.lexicon_hits(norm)
            for hit in hits:
                # a policy term has no category: the output check stops on it; a category term lifts
                # its category only where the classifier itself reads the text as at least a little harmful
                if hit["category"] in scores and own >= self.lexicon_floor:
                    scores[hit["category"]] = max(scores[hit["category"]], self.lexicon_score)
            flagged = [c for c in CATEGORIES if scores[c] >= self.thresholds[c]]
            results.append(ModerationResult(scores, flagged, hits, find_secrets(text), own))
        return results
