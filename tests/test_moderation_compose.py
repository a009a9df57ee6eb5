"""Round-3 moderation training rows (``scripts/guard_training/moderation_compose.py``): a composed
test sentence must share neither its frame nor any phrase with a training sentence, or its figures
would measure memory of the phrases (round 2's weakness), and benign twins must use the harmful
kinds' phrases."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from guard_training import moderation_compose as mc


def test_every_split_has_every_kind_and_frames_do_not_straddle_splits() -> None:
    rows = mc.composed_rows()
    splits = mc.frame_splits()
    assert all(split == splits[frame] for _, _, _, _, frame, split in rows)
    for kind in mc.KINDS:
        assert {split for _, source, _, _, _, split in rows if source == f"compose_{kind}"} == set(mc.SPLITS), kind


def test_a_phrase_appears_in_one_split_only() -> None:
    rows = mc.composed_rows()
    phrases = mc.slot_splits()
    for slot in ("ACT", "INSULT", "SH", "BLOW", "INDIRECT", "FIG"):
        test_only = [p for p in phrases["test"][slot] if len(p) > 12]
        assert test_only, slot
        for p in test_only:  # a test phrase (as written, or capitalised) is in no training sentence
            for text, _, _, _, _, split in rows:
                if split == "train":
                    assert p not in text and mc._cap(p) not in text, (slot, p, text)


def test_benign_twins_reuse_the_harmful_phrases() -> None:
    rows = mc.composed_rows()
    train_acts = mc.slot_splits()["train"]["ACT"]
    benign = [t for t, source, harmful, *_ in rows if not harmful and source in ("compose_negated", "compose_counter")]
    harmful = [t for t, _, h, *_ in rows if h]
    shared = [a for a in train_acts if any(a in t for t in benign) and any(a in t for t in harmful)]
    assert len(shared) >= len(train_acts) // 2
    assert all(cats for _, _, h, cats, *_ in rows if h) and not any(cats for _, _, h, cats, *_ in rows if not h)


def test_round4_calibration_frames_stay_in_calibration_and_leave_round3_rows_alone() -> None:
    """Round 4's negated and counter-speech frames (``CAL_FRAMES``) are calibration only, filled with
    calibration phrases, and adding them changes no round-3 frame's split nor any round-3 row."""
    rows = mc.composed_rows()
    old = mc.composed_rows(cal_frames=False)
    assert rows[: len(old)] == old
    names = {name for name, _, _ in mc.CAL_FRAMES}
    assert not names & {name for name, _, _ in mc.FRAMES}
    assert {kind for _, kind, _ in mc.CAL_FRAMES} == {"negated", "counter"}
    new = rows[len(old) :]
    assert new and all(split == "cal" and frame in names for _, _, _, _, frame, split in new)
    phrases = mc.slot_splits()
    for slot in ("ACT", "SH", "INSULT", "BLOW"):
        for split in ("train", "test"):
            for p in (p for p in phrases[split][slot] if len(p) > 12):
                assert not any(p in t or mc._cap(p) in t for t, *_ in new), (slot, p)
