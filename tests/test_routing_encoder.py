"""The task router's tuned encoder: the adapter merged into a private copy of MiniLM, exported to ONNX,
checked against torch's committed vectors, and read beside the shared encoder (no server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydantic
import pytest

from llmgw import encoders
from llmgw.config import RoutingConfig
from llmgw.routing import encoder, tasks
from llmgw.routing.tasks import TaskClassifier, classifier_for


def test_the_tuned_encoder_gives_torch_s_committed_vectors_and_is_not_the_shared_one() -> None:
    tuned = encoder.tuned()
    assert isinstance(tuned, encoders.OnnxEncoder)  # not the torch fallback
    assert encoders.check_reference(tuned, encoder.REFERENCE).ok
    shared = encoders.encoder("float")
    assert tuned.path != shared.path  # its own export, keyed by the merged weights' content
    texts = encoders.reference_texts()
    cosines = np.sum(tuned(texts) * shared(texts), axis=1)
    assert cosines.mean() < 0.8  # the tuning moved the vectors (0.38 on the exemplars)
    # and the shared encoder is untouched by the merge (a private copy of the weights was changed)
    assert encoders.check_reference(shared).ok


def test_the_merged_copy_follows_the_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = encoder.adapter_digest()
    changed = tmp_path / "task_lora.npz"
    with np.load(encoder.ADAPTER) as arrays:
        modified = {k: arrays[k] for k in arrays.files}
    first = next(iter(modified))
    modified[first] = modified[first] * 1.01
    np.savez(changed, **modified)
    monkeypatch.setattr(encoder, "ADAPTER", changed)
    assert encoder.adapter_digest() != before  # another adapter never reuses the merged copy


def test_an_adapter_that_is_not_lora_pairs_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "task_lora.npz"
    np.savez(broken, **{"encoder.layer.0.attention.self.query.a": np.zeros((8, 384), np.float32)})
    monkeypatch.setattr(encoder, "ADAPTER", broken)
    with pytest.raises(ValueError, match="not a LoRA adapter"):
        encoder.merged_model()


def test_a_merge_that_lost_the_race_to_another_process_leaves_one_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers starting at once both merge; the one whose rename fails removes its own copy."""
    monkeypatch.setenv("LLMGW_CACHE_DIR", str(tmp_path))
    target = encoders.cache_dir() / f"task-minilm-{encoder.adapter_digest()}"

    class Merged:
        def save(self, path: str) -> None:
            Path(path).mkdir(parents=True)
            (Path(path) / "config.json").write_text("{}")
            target.mkdir(parents=True)  # meanwhile the other process finished its merge
            (target / "config.json").write_text('{"winner": true}')
            (target / "more").write_text("x")  # a full directory: the rename cannot replace it

    monkeypatch.setattr(encoder, "merged_model", Merged)
    assert encoder.merged_dir() == target
    assert (target / "config.json").read_text() == '{"winner": true}'
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no copy left behind
    assert encoder.merged_dir() == target  # and the next start reuses it


@pytest.mark.parametrize(("name", "width"), [("shared", 384 + 6), ("tuned", 2 * 384 + 6)])
def test_the_classifier_reads_what_routing_task_encoder_says(name: str, width: int) -> None:
    classifier = classifier_for({}, False, "default", name)
    assert classifier.encoder == name and classifier.weights.shape == (len(classifier.tasks), width)
    assert classifier.classify("Write a Dockerfile for a Rust web server with a multi-stage build.")[0] == "code"


def test_the_gateway_reads_the_tuned_encoder_by_default_and_refuses_an_unknown_one() -> None:
    assert RoutingConfig().task_encoder == "tuned"
    assert tasks.C_OF["tuned"] != tasks.C  # each encoder has the C chosen for it
    with pytest.raises(pydantic.ValidationError, match="task_encoder"):
        RoutingConfig(task_encoder="mpnet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown encoder"):
        TaskClassifier({"chat": ["hi", "hello"], "code": ["def f(): pass", "fix this bug"]}, encoder="mpnet")


def test_a_new_turn_costs_the_tuned_encoder_one_pass_and_the_shared_one_none_it_already_made() -> None:
    """The guards embed the turn first (shared, memoised); routing then adds one tuned pass, no more."""
    classifier = classifier_for({}, False, "default", "tuned")
    text = "Could you turn these meeting notes into five bullet points for the team? (routing pass count test)"
    shared, tuned = encoders._query_encoder(None), encoder.tuned()
    assert isinstance(shared, encoders.OnnxEncoder) and isinstance(tuned, encoders.OnnxEncoder)
    encoders.encode_query(text)  # what the injection guard / cache lookup would have done
    before = (shared.passes, tuned.passes)
    classifier.probabilities(text)
    assert (shared.passes - before[0], tuned.passes - before[1]) == (0, 1)


def test_when_the_tuned_encoder_cannot_be_built_routing_reads_the_shared_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A read-only cache or a missing torch must not turn every `auto` request into an error."""

    def unavailable() -> Path:
        raise PermissionError("read-only file system: '/app/.cache/llmgw/encoders'")

    monkeypatch.setattr(encoder, "merged_dir", unavailable)
    encoder.tuned.cache_clear()
    try:
        extra = {"chat": ["a request only this test adds, so the classifier is built anew"]}
        with caplog.at_level("ERROR", logger="llmgw.routing.tasks"):
            classifier = classifier_for(extra, False, "default", "tuned")
        assert classifier.encoder == "shared" and "tuned task encoder is unavailable" in caplog.text
        assert tasks.fallbacks[-1] == "tuned"
        assert classifier.classify("Write a Dockerfile for a Rust web server with a multi-stage build.")[0] == "code"
    finally:
        encoder.tuned.cache_clear()
