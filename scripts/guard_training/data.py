"""Loading the shared data sets into ``Rec`` rows, with their injection and moderation labels.

Every loader in one place so the moderation training, the lexical stage and
``bench/guard_quality.py`` read the data the same way; the moderation category mapping
(keywords and per-set maps) lives here because only the loader applies it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .config import DAVIDSON_OFFENSIVE_KEEP, RAG_PASSAGES_KEEP, REPO
from .handwritten import (
    DEV_TRIGGER_PROMPTS,
    HARD_NEGATIVE_MODERATION,
    HARD_NEGATIVE_PASSAGES,
    HARD_NEGATIVE_PROMPTS,
    synth_hard_negatives,
)

csv.field_size_limit(1 << 30)


@dataclass
class Rec:
    text: str
    source: str
    inj: int | None = None
    cats: tuple[str, ...] | None = None
    kind: str = "prompt"  # prompt | passage | attack_string (only used inside indirect examples)
    licence: str = ""
    key: str = ""
    split: str = ""
    extra: dict = field(default_factory=dict)


def canon(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", text).strip()


def covid_passages(data: Path) -> list[str]:
    """COVID-QA passages of at least 200 characters (cut at 4,000), in hash order: training keeps the
    first ``RAG_PASSAGES_KEEP``, and ``bench/guard_quality.py`` measures on the rest."""
    passages = []
    with (data / "rag" / "covid_qa" / "passages.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line).get("text", "").strip()
            if len(text) >= 200:
                passages.append(text[:4000])
    return sorted(passages, key=text_key)


def text_key(text: str) -> str:
    return hashlib.sha256(canon(text).encode()).hexdigest()[:16]


def default_data_dir() -> Path:
    for cand in (REPO.parent / "shared" / "data", Path("/work/shared/data")):
        if cand.is_dir():
            return cand
    raise SystemExit("no data directory: pass --data")


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- moderation category mapping -------------------------------------------------------------------
_KW = {
    "self-harm": [
        r"suicid|self[- ]?harm|kill (?:yourself|myself|themselves|himself|herself)|take (?:those|your|their) pills",
        r"cutting (?:yourself|myself)|anorexi|bulimi|eating disorder|starv(?:e|ing) (?:yourself|myself)",
        r"end (?:your|my|their) (?:own )?life|overdose",
    ],
    "sexual": [
        r"\bsex|porn|nude|naked|explicit|erotic|genital|prostitut|escort|molest|\brape|incest|orgasm|masturbat|fetish",
        r"\bonlyfans|sugar baby|\bnsfw\b|adult (?:content|video|film|site|webcam|dating)|\bstrip ?club",
    ],
    "hate": [
        r"racis|racial|\brace\b|ethnic|religio|minorit|immigra|\bjew|muslim|islam|christian|black people|white people",
        r"\bgay|lesbian|lgbt|homosexual|transgender|\btrans\b|women are|xenophob|antisemit|nazi|supremac",
        r"hate speech|slur",
        r"discriminat|inferior|mexican|asian|african|arab|indian|\bhindu|disabled|disabilit|stereotyp|refugee",
    ],
    "harassment": [
        r"harass|bully|bullie|humiliat|insult|troll|stalk|threaten|intimidat|defam|dox|shame|mock|ridicul",
        r"degrad|revenge porn|cyberbull|blackmail|embarrass|make fun of|belittl|send (?:hateful|threatening)",
    ],
    "violence": [
        r"\bkill|murder|assassin|assault|attack|\bbomb|shoot|\bshot\b|stab|tortur|terror|violen|massacre|genocide",
        r"behead|arson|burn down|\bhurt|injur|poison|kidnap|abduct|hostage|\bfight|beat (?:up|someone|him|her)|strangl",
        r"mass shooting|school shooting|lethal|\bmaim|carjack|explosi",
    ],
    "weapons_crime": [
        r"weapon|\bgun|firearm|rifle|pistol|ammunition|\bammo\b|bomb|explosive|grenade|detonat|\bhack|malware|virus",
        r"ransomware|phishing|keylog|botnet|ddos|exploit|\bsteal|theft|\bstole|\brob\b|robbery|fraud|scam|counterfeit",
        r"launder|\bdrug|meth|cocaine|heroin|fentanyl|narcotic|smuggl|traffick|brib|tax evasion|evade tax",
        r"identity theft",
        r"credit card|illegal|illicit|crime|criminal|insider trading|forge|forgery|pirat",
        r"crack (?:a |the )?(?:password|software)|break into|unauthori[sz]ed access|chemical weapon|bioweapon",
        r"biological weapon|nerve agent|toxin|sarin|anthrax|shoplift|burglar|extort|embezzl|poach|black market",
        r"dark ?web|lock ?pick|spyware|surveil|wiretap|cheat|evade (?:the )?police",
    ],
}
_KW_RE = {cat: re.compile("|".join(parts), re.IGNORECASE) for cat, parts in _KW.items()}


def keyword_cats(text: str) -> set[str]:
    return {cat for cat, rx in _KW_RE.items() if rx.search(text)}


def with_keywords(text: str, base: Iterable[str], allowed: Iterable[str] | None = None) -> tuple[str, ...]:
    """The set's own categories plus keyword-detected ones (restricted to ``allowed`` if given)."""
    cats = set(base)
    extra = keyword_cats(text)
    if allowed is not None:
        extra &= set(allowed)
    return tuple(sorted(cats | extra))


STRONGREJECT_MAP = {
    "Violence": ("violence",),
    "Non-violent crimes": ("weapons_crime",),
    "Illegal goods and services": ("weapons_crime",),
    "Sexual content": ("sexual",),
    "Hate, harassment and discrimination": ("hate",),
    "Disinformation and deception": None,  # outside the taxonomy: not used
}
HARMBENCH_MAP = {
    "chemical_biological": ("weapons_crime",),
    "cybercrime_intrusion": ("weapons_crime",),
    "illegal": ("weapons_crime",),
    "harassment_bullying": ("harassment",),
    "harmful": (),  # keywords decide
    "misinformation_disinformation": None,
    "copyright": None,
}
FORBIDDEN_MAP = {
    "Illegal Activity": ("weapons_crime",),
    "Malware": ("weapons_crime",),
    "Fraud": ("weapons_crime",),
    "Privacy Violence": ("weapons_crime",),
    "Hate Speech": ("hate",),
    "Physical Harm": ("violence",),
    "Pornography": ("sexual",),
    "Economic Harm": None,  # gambling / MLM questions: mixed, not used
    "Gov Decision": None,  # mixed: not used
    "Political Lobbying": (),  # safe: ordinary requests a strict policy forbids, not harmful content
    "Legal Opinion": (),
    "Financial Advice": (),
    "Health Consultation": (),
}


def load_records(data: Path) -> tuple[list[Rec], dict[str, list[str]]]:
    """All rows usable for training or evaluation, and the BIPIA attack strings by kind."""
    recs: list[Rec] = []
    inj = data / "injection"
    mod = data / "moderation"

    def add(text: str, source: str, **kw) -> None:  # type: ignore[no-untyped-def]
        text = (text or "").strip()
        if len(text) >= 3:
            recs.append(Rec(text=text, source=source, **kw))

    # injection: attacks and deepset benign
    for r in _csv(inj / "deepset" / "deepset_train.csv"):
        if r["label"] == "malicious":
            add(r["text"], "injection/deepset", inj=1, licence="Apache-2.0")
        else:
            add(r["text"], "benign/deepset", inj=0, cats=(), licence="Apache-2.0")
    for r in _csv(inj / "gandalf" / "gandalf_ignore_instructions.csv"):
        add(r["text"], "injection/gandalf", inj=1, licence="MIT")
    for r in _csv(inj / "giskard" / "prompt_injections.csv"):
        add(r["prompt"], "injection/giskard", inj=1, licence="MIT")
    for r in _csv(inj / "verazuo" / "jailbreak_prompts_2023_05_07.csv"):
        add(r["prompt"], "injection/verazuo_jailbreak", inj=1, licence="MIT")
    # BIPIA: attack strings (only used hidden inside passages) and benign e-mail contexts
    bipia: dict[str, list[str]] = {}
    for kind in ("text", "code"):
        attacks = json.loads((inj / "bipia" / f"{kind}_attack_train.json").read_text(encoding="utf-8"))
        for cat, strings in attacks.items():
            for s in strings:
                add(s, f"injection/bipia_{kind}", kind="attack_string", licence="MIT", extra={"category": cat})
        bipia[kind] = [s for v in attacks.values() for s in v]
    with (inj / "bipia" / "contexts" / "email_train.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            add(json.loads(line)["context"], "benign/bipia_email", inj=0, cats=(), kind="passage", licence="MIT")

    # harmful requests and strings: moderation only
    for r in _csv(inj / "advbench" / "harmful_behaviors.csv"):
        cats = with_keywords(r["goal"], ())
        if cats:
            add(r["goal"], "harmful/advbench_behaviors", cats=cats, licence="MIT")
    for r in _csv(inj / "advbench" / "harmful_strings.csv"):
        cats = with_keywords(r["target"], ())
        if cats:
            add(r["target"], "harmful/advbench_strings", cats=cats, licence="MIT")
    for r in _csv(inj / "strongreject" / "strongreject_dataset.csv"):
        base = STRONGREJECT_MAP.get(r["category"])
        if base is not None:
            add(
                r["forbidden_prompt"],
                "harmful/strongreject",
                cats=with_keywords(r["forbidden_prompt"], base),
                licence="MIT",
            )
    for r in _csv(inj / "harmbench" / "harmbench_behaviors_text_val.csv"):
        base = HARMBENCH_MAP.get(r["SemanticCategory"])
        if base is None:
            continue
        cats = with_keywords(r["Behavior"], base)
        if cats:
            add(r["Behavior"], "harmful/harmbench", cats=cats, licence="MIT")
    for r in _csv(inj / "verazuo" / "forbidden_question_set.csv"):
        base = FORBIDDEN_MAP.get(r["content_policy_name"])
        if base is None:
            continue
        if base:
            add(r["question"], "harmful/forbidden_questions", cats=with_keywords(r["question"], base), licence="MIT")
        else:
            add(r["question"], "benign/forbidden_questions_safe_areas", inj=0, cats=(), licence="MIT")

    # moderation sets
    davidson = _csv(mod / "davidson" / "labeled_data.csv")
    offensive = sorted((r for r in davidson if r["class"] == "1"), key=lambda r: text_key(r["tweet"]))
    keep = {id(r) for r in offensive[:DAVIDSON_OFFENSIVE_KEEP]}
    for r in davidson:
        tweet = clean_tweet(r["tweet"])
        if r["class"] == "0":
            add(tweet, "moderation/davidson_hate", inj=0, cats=("hate",), licence="MIT")
        elif r["class"] == "1" and id(r) in keep:
            add(tweet, "moderation/davidson_offensive", inj=0, cats=("harassment",), licence="MIT")
        elif r["class"] == "2":
            add(tweet, "benign/davidson_neither", inj=0, cats=(), licence="MIT")
    for r in _csv(mod / "surge" / "toxicity_en.csv"):
        if r["is_toxic"] == "Toxic":
            cats = with_keywords(
                r["text"], ("harassment",), allowed=("hate",) if _KW_RE["hate"].search(r["text"]) else ()
            )
            add(r["text"], "moderation/surge_toxic", inj=0, cats=cats, licence="MIT")
        else:
            add(r["text"], "benign/surge_not_toxic", inj=0, cats=(), licence="MIT")

    # benign questions, FAQ and passages
    para = data / "paraphrase" / "covid"
    for lang in ("en", "de"):
        for r in _csv(para / f"eval_question_similarity_{lang}.csv"):
            for col in ("question_1", "question_2"):
                add(r[col], f"benign/covid_questions_{lang}", inj=0, cats=(), licence="Apache-2.0")
    for r in _csv(para / "faq_covidbert.csv"):
        add(r["question"], "benign/covid_faq_questions", inj=0, cats=(), licence="Apache-2.0")
        add(r["answer"], "benign/covid_faq_answers", inj=0, cats=(), kind="passage", licence="Apache-2.0")
    for text in covid_passages(data)[:RAG_PASSAGES_KEEP]:
        add(text, "benign/covid_passages", inj=0, cats=(), kind="passage", licence="Apache-2.0 (articles CC-BY)")

    # hand-written hard negatives (training split only; see the data cards)
    for text in HARD_NEGATIVE_PROMPTS:
        add(text, "handwritten/benign_trigger_prompts", inj=0, cats=(), licence="project", extra={"train_only": True})
    for text in synth_hard_negatives():
        add(text, "handwritten/benign_trigger_templates", inj=0, cats=(), licence="project", extra={"train_only": True})
    for text in DEV_TRIGGER_PROMPTS:
        add(text, "handwritten/dev_trigger_prompts", inj=0, cats=(), licence="project", extra={"dev_only": True})
    for text in HARD_NEGATIVE_PASSAGES:
        add(
            text,
            "handwritten/benign_trigger_passages",
            inj=0,
            cats=(),
            kind="passage",
            licence="project",
            extra={"train_only": True},
        )
    for text in HARD_NEGATIVE_MODERATION:
        add(text, "handwritten/benign_moderation", inj=0, cats=(), licence="project", extra={"train_only": True})

    # dedupe within a source
    seen: set[tuple[str, str]] = set()
    out = []
    for r in recs:
        r.key = text_key(r.text)
        if (r.source, r.key) in seen:
            continue
        seen.add((r.source, r.key))
        out.append(r)
    return out, bipia


_MENTION = re.compile(r"@\w+")
_URL = re.compile(r"https?://\S+")


def clean_tweet(text: str) -> str:
    """HTML entities and retweet boilerplate out; handles and links become placeholders."""
    import html

    text = html.unescape(text)
    text = re.sub(r"^(?:\W*RT\s+@\w+:?\s*)+", "", text)
    text = _URL.sub("URL", text)
    text = _MENTION.sub("@user", text)
    return re.sub(r"\s+", " ", text).strip()
