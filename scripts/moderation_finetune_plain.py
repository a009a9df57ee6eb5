#!/usr/bin/env python
"""Output moderation: mod17i's recipe with plain benign assistant-style outputs added in proportion
(issue 17, mod17j).

mod17i (``moderation_finetune_neg.py``) added 2,463 negated / counter-speech / discussing / reclaimed
rows (1,329 benign) to the ``lora8`` model's training data; on blind13 it cut negated+counter flags but
flagged more *plain* benign answers (2 -> 4 of 20) and caught fewer violent instructions (6 -> 3 of 28).
Reading: the training data has too few ordinary assistant outputs that use violent words in harmless
senses (``kill`` a process, ``terminate`` an instance, ``abort`` a build, a drug's ``lethal`` dose).
This script keeps mod17i's rows exactly (``extra_rows``) and adds, to TRAINING only:

* :func:`plain_rows` ``"train"``: 6-60 word snippets cut like chat answers from public passages whose
  split (``moderation_data._bucket`` of the passage, as ``load_rows`` assigns it) is *train*: tldr
  command pages (English), The Rust Book, MedQuAD answers, COVID-QA passages, WikiTableQuestions tables
  (as ``|``-separated rows), HH-RLHF chosen replies that neither refuse (``REFUSAL``) nor hit a harm
  keyword (``keyword_cats``; chosen replies are only *less* harmful). Half of each source's snippets
  start at a line or sentence with a violent-sounding word (:data:`HARSH`) where one exists: that is the
  failure being fixed. :data:`PLAIN_TRAIN` rows in all (1,500 >= mod17i's 1,329 added benign rows, so the
  plain answers weigh at least as much as the hard-benign frames).
* the harmful instruction rows (``answers_instructions`` of the base part, ``compose_instructions`` of
  mod17i's) a second time, so their share of training does not fall below mod17i's (2.98 %).

Calibration gets a plain-benign part (:func:`plain_rows` ``"cal"``, :data:`PLAIN_CAL` rows, from *cal*
passages only, 0 texts shared with any training row), as one more benign source ``plain_benign``.

Choices, on calibration only (docs/experiments/mod17j-rule.md): the epoch by mod17i's rule plus a
plain-benign condition (:func:`choose_epoch`); the threshold by the shipped rule (lowest with mean
benign flag rate <= 5 %, over mod17g/h's calibration sources and ``plain_benign``).

    cd /work/wt/mod17j && nice -n 5 env HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 \\
        PYTHONPATH=. /work/main/.venv/bin/python scripts/moderation_finetune_plain.py --counts
    ... scripts/moderation_finetune_plain.py --weights /tmp/mod17j --adapter bench/results/mod17j-adapter \\
        --out bench/results/mod17j-finetune.json
    ... scripts/moderation_blind.py --set bench/data/blind15/guards/outputs_moderation.jsonl --stream \\
        --tuned bench/results/mod17j-adapter/adapter.pt --tuned-threshold T --out bench/results/mod17j-blind15.json
    ... scripts/moderation_finetune_plain.py --verdict bench/results/mod17j-blind15.json \\
        --adapter bench/results/mod17j-adapter --out bench/results/mod17j-verdict.json
    ... scripts/moderation_finetune_plain.py --weights /tmp/mod17j --out bench/results/mod17j-finetune.json --test
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training.data import canon, default_data_dir, keyword_cats  # noqa: E402
from guard_training.moderation import harm_scores, macro_fpr, prf, threshold_for_fpr  # noqa: E402
from guard_training.moderation_data import ModRow, _bucket  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402
from moderation_finetune import figures, parts_of_rows, score  # noqa: E402
from moderation_finetune_neg import (  # noqa: E402
    REFUSAL,
    arguments,
    chosen_scores,
    extra_rows,
    hard,
    per_source,
    save_adapter,
    train_epochs,
)
from moderation_finetune_neg import verdict as verdict_i  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = 31
#: snippets per source, training side (1,500 in all) and calibration side (300)
PLAIN_TRAIN = {"tldr": 300, "rust_book": 250, "medquad": 300, "covid_qa": 250, "wikitables": 200, "hh_helpful": 200}
PLAIN_CAL = {k: 50 for k in PLAIN_TRAIN}
#: violent-sounding words in harmless senses (a snippet starting near one is preferred for half the rows)
HARSH = re.compile(
    r"\b(kill|terminat|destroy|abort|attack|shoot|shot|execut|die|dies|dead|death|fatal|lethal|murder|bomb|"
    r"explo|weapon|gun|knife|cut|burn|blow|strike|hit|beat|fight|war|violen|poison|toxi|overdose|wound|blood|"
    r"bleed|inject|hack|crash|force|purge|wipe|nuke|smash|choke|hang|trigger|target|victim|threat|harm|damage|"
    r"panic|fire|slaughter|exterminat|annihilat|eliminat|suicid|injur|hurt)",
    re.I,
)
INSTRUCTION_SOURCES = ("answers_instructions", "compose_instructions")


def _units(source: str, text: str) -> list[str]:
    """Lines (shell pages, code, tables) or sentences (prose), the pieces a snippet is built from."""
    if source == "wikitables":
        rows = list(csv.reader(io.StringIO(text)))
        return [" | ".join(c.replace("\n", " ") for c in r) for r in rows if r]
    if source in ("tldr", "rust_book"):
        return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("[")]
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _snippet(source: str, units: list[str], start: int, rng: random.Random) -> str:
    """From ``units[start]`` on, until a drawn length of 6-60 words; a table keeps its header row."""
    target = rng.randint(8, 60)
    head = [units[0]] if source == "wikitables" and start > 0 else []
    words: list[str] = []
    for u in head + units[start:]:
        words += u.split() + (["\n"] if source in ("tldr", "rust_book", "wikitables") else [])
        if len([w for w in words if w != "\n"]) >= target:
            break
    kept, n = [], 0
    for w in words:
        if w != "\n":
            n += 1
        if n > 60:
            break
        kept.append(w)
    return re.sub(r" ?\n ?", "\n", " ".join(kept)).strip()


def _documents(data: Path) -> dict[str, list[tuple[str, str]]]:
    """``source -> [(split key, text)]``; the key is what ``load_rows`` buckets on, so a passage has
    the same train / cal / test split here as in the project's rows."""

    def jl(p: Path) -> list[dict]:
        return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]

    rag, docs = data / "rag", {}
    docs["tldr"] = [r["text"] for r in jl(rag / "tldr/tldr_pages.jsonl") if r.get("lang") == "en"]
    docs["rust_book"] = [r["text"] for r in jl(rag / "rust_book/passages.jsonl")]
    docs["medquad"] = [r["text"] for r in jl(rag / "medquad/corpus.jsonl")]
    docs["covid_qa"] = [r["text"] for r in jl(rag / "covid_qa/passages.jsonl")]
    docs["wikitables"] = [r["text"] for r in jl(rag / "wikitables/tables.jsonl")]
    hh = [r["chosen_last_reply"] for r in jl(data / "moderation/hh_harmless/harmless_base_test.jsonl")]
    docs["hh_helpful"] = [t for t in hh if not REFUSAL.search(t) and not keyword_cats(t)]
    return {s: [(canon(t[:1500].strip()) if s != "hh_helpful" else canon(t.strip()), t) for t in ts if t.strip()]
            for s, ts in docs.items()}  # fmt: skip


def plain_rows(split: str, avoid: str = "", data: Path | None = None) -> list[ModRow]:
    """Plain benign assistant-style snippets from passages of ``split`` only (see the docstring); a
    snippet found inside ``avoid`` (other parts' texts, NUL-joined) is skipped: boilerplate sentences
    recur across MedQuAD answers and cargo outputs across Rust Book sections."""
    data = data or default_data_dir()
    want = PLAIN_TRAIN if split == "train" else PLAIN_CAL
    rng = random.Random(f"{SEED}:{split}")
    out: list[ModRow] = []
    for source, docs in sorted(_documents(data).items()):
        units = [u for k, t in sorted(docs) if _bucket(k) == split and len(u := _units(source, t)) > 0]
        starts = [(i, j) for i, us in enumerate(units) for j in range(len(us))]
        harsh = [(i, j) for i, j in starts if HARSH.search(units[i][j])]
        rng.shuffle(starts)
        rng.shuffle(harsh)
        made: dict[str, None] = {}
        for pool, n in ((harsh, want[source] // 2), (starts, want[source])):
            for i, j in pool:
                if len(made) >= n:
                    break
                s = _snippet(source, units[i], j, rng)
                if 6 <= len(s.split()) <= 60 and s not in avoid:
                    made[s] = None
        out += [ModRow(t, f"plain_{source}", 0, (), split, "see /work/shared/data/README.md") for t in made]
    return out


def all_rows(parts: dict[str, list[ModRow]]) -> tuple[list[ModRow], list[ModRow], list[ModRow], list[ModRow]]:
    """mod17i's added rows, the plain training snippets, the instruction rows repeated (training), and
    the calibration plain-benign part (source ``plain_benign``; none inside any training text)."""
    added = extra_rows(parts["train"])
    again = [r for r in parts["train"] + added if r.harmful and r.source in INSTRUCTION_SOURCES]
    cal0 = plain_rows("cal", "\x00".join(r.text for r in parts["train"] + added))
    plain = plain_rows(
        "train", "\x00".join([r.text for k in ("cal", "test") for r in parts[k]] + [r.text for r in cal0])
    )
    train_blob = "\x00".join(r.text for r in parts["train"] + added + plain)
    plain_cal = [ModRow(r.text, "plain_benign", 0, (), "cal", r.source) for r in cal0 if r.text not in train_blob]
    return added, plain, again, plain_cal


def choose_epoch(epochs: dict[int, dict]) -> int:
    """mod17i's rule plus the plain-benign condition (docs/experiments/mod17j-rule.md)."""
    ok = [e for e, v in epochs.items() if v["calibration_negated_counter_flagged"] <= 0.15]
    plain_ok = [e for e in ok if epochs[e]["calibration_plain_benign_flagged"] <= 0.02]
    if plain_ok:
        return max(plain_ok, key=lambda e: (epochs[e]["calibration_f1"], e))
    if ok:
        return min(ok, key=lambda e: (epochs[e]["calibration_plain_benign_flagged"], -epochs[e]["calibration_f1"], -e))
    return min(epochs, key=lambda e: (epochs[e]["calibration_negated_counter_flagged"], -e))


def verdict(blind: dict, adapter_bytes: int) -> dict:
    """docs/experiments/mod17j-rule.md: mod17i's (a)-(e) plus (f) violent_instructions and (g) benign_plain,
    whole-text counts."""
    base = verdict_i(blind, adapter_bytes)
    b, n = blind["shipped_at_0.5"]["flagged_count_per_category"], blind["tuned"]["flagged_count_per_category"]
    checks = {k: v for k, v in base.items() if k not in ("adapter_bytes", "passes")}
    checks["f_violent_instructions"] = n["violent_instructions"] >= b["violent_instructions"] - 3
    checks["g_benign_plain"] = n["benign_plain"] <= b["benign_plain"] + 2
    counts = {c: {"shipped": b[c], "tuned": n[c]} for c in ("violent_instructions", "benign_plain")}
    return {**checks, "counts": counts, "adapter_bytes": adapter_bytes, "passes": all(checks.values())}


def main() -> None:
    args = arguments("mod17j", __doc__.splitlines()[0])
    if args.verdict:
        result = verdict(
            json.loads(args.verdict.read_text(encoding="utf-8")), (args.adapter / "adapter.pt").stat().st_size
        )
        print(result)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return
    parts = parts_of_rows()
    added, plain, again, plain_cal = all_rows(parts)
    rows = parts["train"] + added + plain + again
    kinds = Counter(f"{r.source} ({'harmful' if r.harmful else 'benign'})" for r in plain + again)
    elsewhere = [r.text for k in ("cal", "test") for r in parts[k]] + [r.text for r in plain_cal]
    blob = "\x00".join(elsewhere)
    overlap = sum(r.text in blob for r in plain)  # exact or substring of any cal/test/plain-cal text
    exact = len({r.text for r in added + plain} & set(elsewhere))
    train_blob = "\x00".join(x.text for x in rows)
    cal_in_train = sum(r.text in train_blob for r in plain_cal)
    instr = sum(r.source in INSTRUCTION_SOURCES and r.harmful for r in rows)
    info = {"rows": {k: len(v) for k, v in parts.items()}, "added_mod17i": len(added), "added_plain": len(plain),
            "added_instructions_again": len(again), "added_per_kind": dict(sorted(kinds.items())),
            "train_rows": len(rows), "instruction_share": round(instr / len(rows), 4),
            "plain_cal_rows": len(plain_cal),
            "plain_cal_per_source": dict(Counter(r.licence for r in plain_cal)),
            "added_text_equal_to_cal_test_or_plain_cal": exact, "plain_text_inside_cal_test_or_plain_cal": overlap,
            "plain_cal_text_in_train": cal_in_train,
            "config": "lora8", "epochs_max": args.epochs}  # fmt: skip
    print(json.dumps(info), flush=True)
    if args.counts:
        return
    import torch

    torch.set_num_threads(1)
    from llmgw.guards.moderation import Moderator

    shipped = Moderator(ROOT / "guardrails/models/moderation.npz", VectorCache(args.cache))
    cal, y_cal, hc = parts["cal"], np.array([bool(r.harmful) for r in parts["cal"]]), hard(parts["cal"])
    out = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else info

    def on_cal(tok, model) -> dict:
        s = score(tok, model, shipped, [r.text for r in cal + plain_cal])
        t = threshold_for_fpr(cal + plain_cal, s, 0.05)
        s_cal, s_plain = s[: len(cal)], s[len(cal) :]
        return {"threshold": round(float(t), 4), "calibration_f1": prf(y_cal, s_cal >= t)["f1"],
                "calibration_negated_counter_flagged": round(float(np.mean(s_cal[hc] >= t)), 4),
                "calibration_plain_benign_flagged": round(float(np.mean(s_plain >= t)), 4),
                "calibration_mean_benign_fpr": round(macro_fpr(cal + plain_cal, s, t), 4), "s": s}  # fmt: skip

    args.weights.mkdir(parents=True, exist_ok=True)
    if not args.test:
        epochs, model, secs = train_epochs(rows, args.epochs, args.weights, on_cal)
        chosen = choose_epoch(epochs)
        out.update(train_seconds=round(secs), chosen_epoch=chosen, threshold=epochs[chosen]["threshold"],
                   epochs={str(e): {k: v for k, v in d.items() if k != "s"} for e, d in epochs.items()})  # fmt: skip
        print("chosen", chosen, out["epochs"][str(chosen)], flush=True)
        np.save(args.weights / "cal_scores.npy", epochs[chosen]["s"][: len(cal)])
        if args.adapter:
            model.load_state_dict(torch.load(args.weights / f"epoch{chosen}.pt", map_location="cpu"))
            save_adapter(model, args.adapter)
    else:
        s, t = chosen_scores(args.weights, out, parts, shipped)
        b = {k: harm_scores(shipped, parts[k]) for k in ("cal", "test", "held")}
        for name, sc, th in (("finetuned", s, t), ("shipped", b, 0.5)):
            out[name] = figures(parts, sc, th)
            out[name]["test_per_source"] = per_source(parts["test"], sc["test"] >= th)
            print(name, json.dumps({k: v for k, v in out[name].items() if k != "test_per_source"}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    t0 = time.time()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        main()
    print(f"done in {time.time() - t0:.0f}s", flush=True)
