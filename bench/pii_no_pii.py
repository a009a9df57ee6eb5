"""Over-masking on informal text without PII: which rows get a mask, from which entity and recognizer.

    .venv/bin/python -m bench.pii_no_pii [--split calibration|test] [--policy guardrails/default.yaml] [--show N]

A row is *no PII* when it names no person at all (real, public, historical or a fictional
character), holds no contact detail, card, account or identity number. Public figures count as
names: the policy masks every PERSON, since the gateway cannot tell a senator from a neighbour,
and "Who wrote Hamlet? <PERSON_1>" is restored in the answer; rows that name only public figures
are therefore left out of the no-PII rows (and counted on their own, ``*_public_names``), not
scored as misses or false masks. Titles of works, products, brands, eponyms used as terms ("Bode
plot") and places are no PII.

Sources, each cut into a calibration part (every choice is made there) and a test part (reported):

* ``wnut17``: WNUT17 sentences with no entity of any type (train tweets: calibration; the dev set's
  YouTube / Reddit / StackExchange comments: test);
* ``chat``: benign chat prompts (``injection/benign_chat_prompts``), 160 drawn at random
  (``random.Random(17)``, at most 400 characters) and checked by hand: the 12 that name a person
  (:data:`CHAT_NAMED`, 3 of them private people) are left out; split by a hash;
* ``nq_open``: 120 search questions drawn the same way, checked by hand (:data:`NQ_NAMED` name a
  person); split by a hash;
* ``clinc150``: task-assistant queries of the intents that hold no names (:data:`CLINC_NAME_INTENTS`
  are left out: intents where census first names were frequent in the *train* split, e.g.
  "share my location with david"); train and val splits: calibration, test split: test;
* ``handwritten``: ``scripts/guard_training/person_hard_negatives.txt``, ~100 sentences written for
  this purpose (capitalised ordinary words, titles, products, headings, version and order numbers):
  calibration only, never reported as a test figure.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from bench.pii_quality import data_dir

ROOT = Path(__file__).resolve().parent.parent
HANDWRITTEN = ROOT / "scripts" / "guard_training" / "person_hard_negatives.txt"
#: indices (in the drawn sample) of chat prompts that name a person; 36, 91 and 152 private people
CHAT_NAMED = frozenset({2, 15, 17, 36, 42, 57, 60, 80, 91, 129, 137, 152})
#: indices of nq_open questions that name a person or character ("who played dwight's brother")
NQ_NAMED = frozenset({18, 60, 62, 63, 97, 106, 113})
#: clinc150 intents with five or more train queries holding a common census first name
CLINC_NAME_INTENTS = frozenset(
    {
        "share_location",
        "text",
        "change_user_name",
        "change_ai_name",
        "restaurant_reservation",
        "confirm_reservation",
        "make_call",
        "cancel_reservation",
        "mpg",
        "meeting_schedule",
        "schedule_meeting",
        "calendar_update",
        "restaurant_reviews",
        "distance",
        "accept_reservations",
        "oil_change_when",
        "tire_change",
        "measurement_conversion",
        "update_playlist",
        "user_name",
        "what_is_your_name",
        "play_music",
    }
)


def half(text: str) -> str:
    return "calibration" if hashlib.sha256(b"nopii:" + text.encode()).digest()[0] % 2 == 0 else "test"


def _drawn(path: Path, column: str, n: int, max_len: int | None = None) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if max_len is not None:
        rows = [r for r in rows if len(r[column]) <= max_len]
    random.Random(17).shuffle(rows)
    return [" ".join(r[column].split()) for r in rows[:n]]


def wnut_no_entity(data: Path, file: str) -> list[str]:
    out, tokens, tagged = [], [], False
    for line in [*(data / "pii" / "wnut17" / file).read_text().splitlines(), ""]:
        if line.strip():
            token, _, tag = line.rpartition("\t") if "\t" in line else line.rpartition(" ")
            tokens.append(token)
            tagged |= tag != "O"
            continue
        if tokens and not tagged and len(tokens) >= 4:
            out.append(" ".join(tokens))
        tokens, tagged = [], False
    return out


def no_pii_sets(data: Path, split: str) -> dict[str, list[str]]:
    """Texts without PII per source, of the ``calibration`` or ``test`` part."""
    inj = data / "injection"
    chat = _drawn(inj / "benign_chat_prompts" / "benign_chat_prompts.csv", "text", 160, 400)
    nq = _drawn(inj / "nq_open" / "nq_open_questions.csv", "question", 120)
    with (inj / "clinc150" / "clinc150_data_full.csv").open(newline="", encoding="utf-8") as f:
        clinc = [r for r in csv.DictReader(f) if r["intent"] not in CLINC_NAME_INTENTS]
    clinc_splits = ("train", "val", "oos_train", "oos_val") if split == "calibration" else ("test", "oos_test")
    sets = {
        "wnut17": wnut_no_entity(data, "wnut17train.conll" if split == "calibration" else "emerging.dev.conll"),
        "chat": [t for i, t in enumerate(chat) if i not in CHAT_NAMED and half(t) == split],
        "nq_open": [t for i, t in enumerate(nq) if i not in NQ_NAMED and half(t) == split],
        "clinc150": sorted(
            (r["text"] for r in clinc if r["split"] in clinc_splits), key=lambda t: hashlib.sha256(t.encode()).digest()
        )[:600],
    }
    if split == "calibration":
        lines = HANDWRITTEN.read_text(encoding="utf-8").splitlines()
        sets["handwritten"] = [t for t in lines if t.strip() and not t.startswith("#")]
    return sets


def named_sets(data: Path, split: str) -> dict[str, list[str]]:
    """The hand-checked rows that name a person (mostly public figures), per source."""
    inj = data / "injection"
    chat = _drawn(inj / "benign_chat_prompts" / "benign_chat_prompts.csv", "text", 160, 400)
    nq = _drawn(inj / "nq_open" / "nq_open_questions.csv", "question", 120)
    return {
        "chat_named": [t for i, t in enumerate(chat) if i in CHAT_NAMED and half(t) == split],
        "nq_open_named": [t for i, t in enumerate(nq) if i in NQ_NAMED and half(t) == split],
    }


def recognizer_of(result: Any) -> str:
    meta = getattr(result, "recognition_metadata", None) or {}
    return str(meta.get("recognizer_name", "?"))


def over_masking(analyzer: Any, texts: list[str], show: int = 0) -> dict[str, Any]:
    """Rows with a masked span, and the masked spans by entity and by recognizer."""
    engine = analyzer.engine
    by_entity: Counter[str] = Counter()
    by_recognizer: Counter[str] = Counter()
    masked_rows = 0
    examples: list[str] = []
    for text in texts:
        found = [f for f in analyzer.analyze(text) if analyzer.policy.rule(f.entity).action != "allow"]
        if not found:
            continue
        masked_rows += 1
        raw = engine.analyze(text, language=analyzer.policy.language, entities=analyzer.entities, score_threshold=0.0)
        for f in found:
            by_entity[f.entity] += 1
            who = next(
                (recognizer_of(r) for r in raw if (r.entity_type, r.start, r.end) == (f.entity, f.start, f.end)), "?"
            )
            by_recognizer[f"{f.entity}:{who}"] += 1
        if len(examples) < show:
            examples.append(
                " | ".join(f"{f.entity}={text[f.start : f.end]!r}@{f.score:.2f}" for f in found) + "  <- " + text[:160]
            )
    return {
        "rows": len(texts),
        "rows_masked": masked_rows,
        "share": round(masked_rows / len(texts), 4) if texts else None,
        "by_entity": dict(by_entity.most_common()),
        "by_recognizer": dict(by_recognizer.most_common()),
        **({"examples": examples} if show else {}),
    }


def main() -> None:
    from llmgw.guards.pii import PiiAnalyzer
    from llmgw.guards.policy import load_policy

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument("--split", default="test", choices=["calibration", "test"])
    parser.add_argument("--policy", default=str(ROOT / "guardrails" / "default.yaml"))
    parser.add_argument("--show", type=int, default=0, help="print up to N masked rows per source")
    args = parser.parse_args()
    data = data_dir(args.data)
    policy = load_policy(Path(args.policy))
    analyzer = PiiAnalyzer(policy.pii, cache_size=0)
    result: dict[str, Any] = {"policy": policy.label, "split": args.split}
    sets = no_pii_sets(data, args.split)
    for source, texts in sets.items():
        result[source] = over_masking(analyzer, texts, args.show)
    total = sum(r["rows"] for k, r in result.items() if k in sets)
    masked = sum(r["rows_masked"] for k, r in result.items() if k in sets)
    result["all_no_pii"] = {"rows": total, "rows_masked": masked, "share": round(masked / total, 4)}
    for source, texts in named_sets(data, args.split).items():
        m = over_masking(analyzer, texts)
        result[source] = {"rows": m["rows"], "rows_masked": m["rows_masked"]}
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
