"""Benign passage sources written for the passage calibration (issue 17, "over-defence first").

On two blind sets 2.5 % of benign passages were dropped, in kinds the passage calibration had no
source for: security documentation that discusses attacks defensively, changelogs and release notes,
code answers with comments, work e-mails with instructions. Four sources of such documents, typed
for this project (never copied from an evaluation set; ``handwritten_passages_*.py``), 84 passages
each, 60-140 words, about 10 % not in English:

    passage/security_docs   advisories, OWASP-style guidance, incident write-ups, prompt-injection and
                            jailbreak explainers for defenders, red-team scope, phishing awareness
    passage/changelogs      release notes, commit logs, migration guides ("breaking", "removed", "override")
    passage/code_answers    Q&A answers with code and comments, shell snippets, configuration files
    passage/email_ops       work e-mails with instructions, forwarded threads, IT and office notices

**They enter the operating points only, never the fit** (``CALIBRATION_ONLY``): the passage unit's
weights stay those of the shipped file. Every passage has a topic group (12 per source, 7 passages
each), and whole groups go to one split, so no test passage shares a topic with a calibration one.
Since no row is trained on, a train share would be wasted; the groups are split half and half between
calibration and test, in the order of a seeded hash of ``source:group`` (6 groups each: 42 rows, above
the 30 rows a source needs to count for the operating points, ``calibrated.MIN_SOURCE_ROWS``).
"""

from __future__ import annotations

import hashlib

from .broad import Row
from .handwritten_passages_changelogs import CHANGELOGS
from .handwritten_passages_code import CODE_ANSWERS
from .handwritten_passages_email import EMAIL_OPS
from .handwritten_passages_security import SECURITY_DOCS
from .handwritten_passages_train import TRAIN_PASSAGES

SEED = 17
SOURCES: dict[str, list[tuple[str, str]]] = {
    "security_docs": SECURITY_DOCS,
    "changelogs": CHANGELOGS,
    "code_answers": CODE_ANSWERS,
    "email_ops": EMAIL_OPS,
}
#: of the 12 calibration-or-test groups per source, this many go to calibration (the rest to test)
CALIBRATION_GROUPS = 8


def group_splits(name: str, groups: list[str]) -> dict[str, str]:
    """Topic group -> ``calibration`` | ``test``: groups in seeded-hash order, the first
    ``CALIBRATION_GROUPS`` calibration; training groups (``train_*``) -> ``train``."""
    held = sorted({g for g in groups if not g.startswith("train_")},
                  key=lambda g: hashlib.sha1(f"{SEED}:group:{name}:{g}".encode()).hexdigest())  # fmt: skip
    out = {g: ("calibration" if i < CALIBRATION_GROUPS else "test") for i, g in enumerate(held)}
    out.update({g: "train" for g in groups if g.startswith("train_")})
    return out


def _items(name: str) -> list[tuple[str, str]]:
    return SOURCES[name] + TRAIN_PASSAGES[name]


def rows() -> list[Row]:
    """The hand-written benign passages as rows of the ``retrieved`` route, each with its split."""
    out: list[Row] = []
    for name in SOURCES:
        items = _items(name)
        split = group_splits(name, [g for g, _ in items])
        out.extend(Row(text.strip(), f"passage/{name}", 0, "retrieved", "project", split[g]) for g, text in items)
    return out


def topic_groups() -> dict[str, dict[str, str]]:
    """``{source: {group: split}}``, for the data card and the tests."""
    return {f"passage/{n}": group_splits(n, [g for g, _ in _items(n)]) for n in SOURCES}
