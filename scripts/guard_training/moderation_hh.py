"""Which HH-RLHF rejected replies may stand for harmful answers (issue 17, round 2).

HH-RLHF harmless-base is preference data: the rejected final reply was judged *more harmful* than
the chosen one, not harmful. Many rejected replies are refusals, questions back or small talk. A
reply is kept as harmful only if

* its conversation opened with a harmful request: the moderation model shipped before this round
  (commit ab5915f, trained on harmful requests, never on these replies) scores the first human turn
  at or above its 5 %-benign-FPR threshold (0.5), and
* the reply reads like compliance: at least 12 words, no refusal or hedge marker
  (:data:`REFUSAL`), not ending in a question and not holding two of them.

The ids are written to ``hh_rejected_ids.json`` beside this file, so the training data does not
depend on whichever model is shipped later.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

IDS_FILE = Path(__file__).resolve().parent / "hh_rejected_ids.json"

REFUSAL = re.compile(
    r"\b(sorry|I can(?:no|')t|I can’t|I won'?t|I won’t"
    r"|I'?m not (?:sure|able|comfortable)|I’m not (?:sure|able|comfortable)"
    r"|I don'?t (?:think|know|want|understand|recommend)"
    r"|I don’t (?:think|know|want|understand|recommend|agree)|I don'?t agree|are you sure"
    r"|not (?:a good idea|appropriate|okay|ok|legal)|illegal|against the law|I'?d rather not|I would not"
    r"|I wouldn'?t|I wouldn’t|please don'?t|dangerous|harmful|seek help|therapist|hotline|as an AI|I'?m an AI"
    r"|what do you mean|can you (?:explain|tell me more)|why do you)\b",
    re.IGNORECASE,
)


def compliant(reply: str) -> bool:
    """Whether a reply reads like doing what was asked (structure only, see the module docstring)."""
    text = reply.strip()
    return len(text.split()) >= 12 and not REFUSAL.search(text) and not text.endswith("?") and text.count("?") < 2


def select(data: Path, request_scores: list[float], threshold: float = 0.5) -> list[int]:
    """Conversation ids whose rejected reply is kept; ``request_scores`` is the old model's score of
    each conversation's first human turn, in file order."""
    path = data / "moderation" / "hh_harmless" / "harmless_base_test.jsonl"
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    return [r["id"] for r, s in zip(rows, request_scores, strict=True)
            if s >= threshold and compliant(r["rejected_last_reply"])]  # fmt: skip


def first_turns(data: Path) -> list[str]:
    path = data / "moderation" / "hh_harmless" / "harmless_base_test.jsonl"
    return [json.loads(line)["first_human_turn"] for line in path.open(encoding="utf-8") if line.strip()]


def load_ids() -> set[int]:
    return set(json.loads(IDS_FILE.read_text(encoding="utf-8"))["ids"]) if IDS_FILE.is_file() else set()
