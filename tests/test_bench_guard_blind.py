"""bench/guard_blind.py with a policy that names a guard provider: its verdicts decide as in the stages.

The sets here are a few made-up rows (never the blind sets); the provider is the tiny ONNX classifier
of tests/test_guard_providers.py, which flags any text with the word "attack".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import guard_blind
from tests.test_guard_providers import tiny_classifier  # noqa: F401  (the fixture)

FILES = {
    "user_benign_triggers.jsonl": ["hello there please", "please now"],
    "user_benign_plain.jsonl": ["hello there"],
    "user_attacks.jsonl": ["please attack now", "attack"],
    "passages_benign.jsonl": ["hello there hello there please"],
    "passages_attacks.jsonl": ["hello there attack now", "now attack"],
}


def test_a_policy_with_a_provider_acts_on_its_verdicts(
    tmp_path: Path,
    tiny_classifier: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sets = tmp_path / "sets"
    sets.mkdir()
    for name, texts in FILES.items():
        (sets / name).write_text("".join(json.dumps({"text": t, "category": "c"}) + "\n" for t in texts))
    policies = tmp_path / "policies"
    policies.mkdir()
    provider = (
        f"{{kind: onnx_classifier, path: '{tiny_classifier}', labels: [BENIGN, INJECTION], positive: [INJECTION]}}"
    )
    (policies / "tiny.yaml").write_text(
        f"providers:\n  tiny: {provider}\n"
        "injection:\n  providers:\n"
        "    user: {providers: [tiny], builtin: false}\n"
        "    retrieved: {providers: [tiny], builtin: false}\n"
    )
    monkeypatch.setattr(guard_blind, "BLIND", sets)
    out: dict[str, Any] = guard_blind.run(None, "injection", "tiny", policies)
    # the provider alone decides what is blocked or dropped: every "attack" row, no other
    assert [out[name]["acted"] for name in FILES] == [0.0, 0.0, 1.0, 0.0, 1.0]
    assert out["user_attacks.jsonl"]["providers"]["providers"] == ["tiny"]
    for name in FILES:  # flagged (advisory, the built-in score) or acted: never fewer than acted
        assert out[name]["flagged_or_acted"] >= out[name]["acted"]
