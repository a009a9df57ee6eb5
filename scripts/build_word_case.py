"""Build ``guardrails/lexicons/word_case.tsv``: how often each word is written in lower case, and how
often capitalised where a capital says something (not the first word of a sentence), in public text.

    PYTHONPATH=. .venv/bin/python scripts/build_word_case.py [--data /work/shared/data]

Why: a census list holds "Bill", "Rose", "Grace" and "Major"; what tells the name from the word is
how people write it. "bill" is in lower case nearly every time it is not first in a sentence, "Tom"
never is. The person-name score (``llmgw.guards.person_score``) reads these counts as evidence.

Text read (none of it is a test split of the PII benchmarks): HotpotQA's Wikipedia paragraphs,
XQuAD's English passages, PubMedQA abstracts, COVID-QA passages, GSM8K word problems (full of
first names) and the Davidson tweets (informal writing). A word is kept when it was seen at least
``MIN_COUNT`` times in those two shapes together.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections import Counter
from pathlib import Path

from bench.pii_quality import data_dir
from llmgw.guards.names import _fold

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "guardrails" / "lexicons" / "word_case.tsv"
MIN_COUNT = 3
WORD = re.compile(r"[A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f'’]*|[.!?:;\"“”()\[\]\n|#@*•-]")
BREAKS = frozenset('.!?:;"“”()[]\n|#@*•-')


def texts(data: Path) -> list[str]:
    out: list[str] = []

    def jsonl(path: Path, key: str, where: str | None = None) -> None:
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                row = json.loads(line)
                if where is None or row.get("lang") == where:
                    out.append(row[key])

    def csv_column(path: Path, key: str) -> None:
        with path.open(newline="", encoding="utf-8") as f:
            out.extend(row[key] for row in csv.DictReader(f))

    jsonl(data / "rag" / "hotpotqa" / "corpus.jsonl", "text")
    jsonl(data / "rag" / "xquad" / "passages.jsonl", "text", "en")
    jsonl(data / "rag" / "pubmedqa" / "corpus.jsonl", "text")
    jsonl(data / "rag" / "covid_qa" / "passages.jsonl", "text")
    csv_column(data / "injection" / "gsm8k" / "gsm8k_questions.csv", "question")
    csv_column(data / "moderation" / "davidson" / "labeled_data.csv", "tweet")
    return out


def count(corpus: list[str]) -> tuple[Counter[str], Counter[str]]:
    """(lower-case uses, capitalised uses past a sentence's first word) per folded word."""
    lower: Counter[str] = Counter()
    cap: Counter[str] = Counter()
    for text in corpus:
        first = True
        for tok in WORD.findall(text):
            if tok in BREAKS:
                first = True
                continue
            if tok.islower():
                lower[_fold(tok)] += 1
            elif not first and tok[0].isupper() and (len(tok) == 1 or not tok[1:].isupper()):
                cap[_fold(tok)] += 1
            first = False
    return lower, cap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    args = parser.parse_args()
    lower, cap = count(texts(data_dir(args.data)))
    words = sorted(w for w in set(lower) | set(cap) if lower[w] + cap[w] >= MIN_COUNT and len(w) > 1)
    header = (
        "# word<TAB>lower-case uses<TAB>capitalised uses not first in a sentence; built by"
        " scripts/build_word_case.py from public text (see its docstring)\n"
    )
    OUT.write_text(header + "".join(f"{w}\t{lower[w]}\t{cap[w]}\n" for w in words), encoding="utf-8")
    print(f"{len(words)} words -> {OUT}")


if __name__ == "__main__":
    main()
