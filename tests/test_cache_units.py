"""The cache's parts without a server: veto, keys, policy, index, store, persistence, assembly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmgw.cache.bounds import threshold_for
from llmgw.cache.index import VectorIndex
from llmgw.cache.keys import KeySource, build_key, tenant_of
from llmgw.cache.match import Rule, match
from llmgw.cache.policy import decide, settings_for
from llmgw.cache.service import mask_answer
from llmgw.cache.store import Entry, MemoryStore, SqlitePersister
from llmgw.cache.veto import veto
from llmgw.config import CacheConfig, RouteConfig
from llmgw.context import RequestContext, RequestPlan
from llmgw.errors import InvalidRequest
from llmgw.guards.pii import Masker
from llmgw.keys import KeyInfo
from llmgw.options import decode_options
from llmgw.stages.cache import Assembler, key_source, storable
from llmgw.stages.retrieval_plan import plan_for

# --- veto ----------------------------------------------------------------------------------------

VETOED = [
    ("What is the capital of France?", "What is the capital of Germany?", "entity"),
    ("what is the capital of france", "what is the capital of germany", "entity"),  # typed without capitals
    ("Is gpt-4 better than gpt-3?", "Is gpt-4 better than gpt-3.5?", "entity"),
    ("Convert 5 miles to km", "Convert 50 miles to km", "number"),
    ("How many calories are in two eggs?", "How many calories are in 3 eggs?", "number"),
    ("Can I travel with a mask?", "Can I travel without a mask?", "negation"),
    ("Should children wear masks?", "Shouldn't children wear masks?", "negation"),
    ("How do I create a branch?", "How do I delete a branch?", "opposite"),
    ("How do I turn on dark mode?", "How do I turn off dark mode?", "opposite"),
    ("Dose of ibuprofen for adults", "Dose of ibuprofen for children", "opposite"),
    ("Can the virus spread through food?", "Can the virus spread through water?", "substitution"),
    ("should i buy apple shares now?", "should i buy tesla shares now?", "substitution"),
    ("What is a novel coronavirus?", "What is a new coronavirus?", "substitution"),  # a synonym: a lost hit
    (
        "Can the coronavirus spread through swimming pools?",
        "Can the coronavirus spread through water?",
        "substitution",
    ),  # a run of content words swapped for another
    ("How do I install it on Windows 10?", "How do I install it on Windows 11?", "entity"),
    ("Is COVID 19 deadly?", "Is COVID deadly?", "entity"),  # a name with its number is another name
    ("Is tea better than coffee?", "Is coffee better than tea?", "order"),  # arguments swapped
    ("How do I convert miles to km?", "How do I convert km to miles?", "order"),
]
PASSED = [
    ("What is a novel coronavirus?", "What does novel coronavirus mean?"),
    ("Can the virus spread through food?", "Can the viruses spread through food?"),
    ("What is the capital of France?", "which city is the capital of france"),
    ("Am I at risk for COVID-19 in the United States?", "Is it risky to get COVID-19 in the US?"),
    ("How many calories are in two eggs?", "What's the calorie count of 2 eggs?"),
    ("Should children wear masks?", "Do kids need to wear masks?"),
    ("Why is it called COVID-19?", "Why is the disease named COVID-19?"),
    ("Can COVID-19 spread through food?", "Can the virus spread through food?"),  # the run holds "the"
    ("Is COVID-19 dangerous for children?", "Are children in danger from COVID 19?"),  # one name, two spellings
    ("How do I install it on Windows 10?", "How do I install it on Windows-10?"),
    ("How long does the virus survive on surfaces?", "On surfaces, how long does the virus survive?"),
]


@pytest.mark.parametrize(("cached", "asked", "reason"), VETOED)
def test_veto_catches_near_misses(cached: str, asked: str, reason: str) -> None:
    assert veto(cached, asked) == reason
    assert veto(asked, cached) == reason, "symmetric"


@pytest.mark.parametrize(("cached", "asked"), PASSED)
def test_veto_lets_rewordings_through(cached: str, asked: str) -> None:
    assert veto(cached, asked) is None


# --- keys and policy -------------------------------------------------------------------------------


KEY = KeyInfo("k1", "one", "red", None, ("*",), ("*",))


def context(body: dict[str, Any], headers: dict[str, str] | None = None, **options: Any) -> RequestContext:
    ctx = RequestContext("r1", "chat", body, decode_options(options), headers or {})
    ctx.key = KEY
    return ctx


def source(body: dict[str, Any], model: str = "m", share: str = "key", **fields: Any) -> KeySource:
    return KeySource(body, tenant_of(KEY, body.get("user"), share), "default", model, **fields)


def test_scope_and_exact_key() -> None:
    body = {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "Hi?"}], "temperature": 0}  # fmt: skip
    key = build_key(source(body))
    assert key is not None and key.question == "Hi?" and key.tenant == "key:k1"
    same = build_key(source({**body, "stream": True}))
    assert same == key, "streaming does not change the answer"
    longer = [{"role": "system", "content": "Be long."}, body["messages"][1]]
    tools = [{"type": "function"}]
    for changed in ({**body, "temperature": 0.2}, {**body, "tools": tools}, {**body, "messages": longer}):
        other = build_key(source(changed))
        assert other is not None and other.scope != key.scope
    reworded = build_key(source({**body, "messages": [body["messages"][0], {"role": "user", "content": "Hello?"}]}))
    assert reworded is not None and reworded.scope == key.scope and reworded.exact != key.exact
    assert build_key(source(body, model="other-model")).scope != key.scope  # type: ignore[union-attr]
    team = build_key(source(body, share="team"))
    assert team is not None and team.tenant == "team:red"
    ada = build_key(source({**body, "user": "ada"}, share="user"))
    bob = build_key(source({**body, "user": "bob"}, share="user"))
    assert ada is not None and bob is not None and ada.scope != bob.scope, "share: user splits a key's callers"
    image = {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}
    assert build_key(source(image)).question is None  # type: ignore[union-attr]
    assert build_key(source({"model": "m", "messages": []})) is None


def test_masked_values_split_the_scope_but_the_same_values_share_it() -> None:
    """Masking makes "Lake <PERSON_1>" of Lake Como and of Lake Constance: the fingerprint tells them apart."""
    body = {"model": "m", "messages": [{"role": "user", "content": "Where is Lake <PERSON_1>?"}]}
    fingerprints = {}
    for value in ("Como", "Constance", "Como"):
        masker = Masker(policy=None, salt=b"salt")  # type: ignore[arg-type]
        masker.placeholder("PERSON", value)
        fingerprints.setdefault(value, []).append(masker.fingerprint())
    como, constance = fingerprints["Como"][0], fingerprints["Constance"][0]
    assert fingerprints["Como"][1] == como, "the same value, the same fingerprint"
    assert como != constance and "Como" not in (como or "")
    keys = [build_key(source(body, masked_values=f)) for f in (como, constance, como)]
    assert keys[0] is not None and keys[1] is not None
    assert keys[0].scope != keys[1].scope and keys[0].exact != keys[1].exact, "masking never merges two questions"
    assert keys[2] == keys[0]
    other_salt = Masker(policy=None, salt=b"pepper")  # type: ignore[arg-type]
    other_salt.placeholder("PERSON", "Como")
    assert other_salt.fingerprint() != como, "keyed: a guessed name cannot be checked without the salt"
    assert Masker(policy=None).fingerprint() is None, "nothing masked: the scope is unchanged"  # type: ignore[arg-type]


class FakeRetrieval:
    def collection_version(self, name: str) -> str:
        return {"docs": "v7"}.get(name, "")


class FakeCache:
    class config:
        share = "key"


class FakeGateway:
    retrieval = FakeRetrieval()
    cache = FakeCache()


def planned(body: dict[str, Any], **options: Any) -> RequestContext:
    """A context with the plan the plan stage would make (a route that may read any collection)."""
    ctx = context(body, **options)
    ctx.route = RouteConfig.model_validate({"retrieval": {"collections": ["*"]}})
    ctx.plan = RequestPlan("m", None)  # type: ignore[arg-type]
    ctx.plan.retrieval = plan_for(ctx)
    return ctx


def test_retrieval_collection_version_is_part_of_the_scope() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi?"}]}
    assert key_source(planned(body, retrieval="docs"), FakeGateway()).collection == "docs@v7"
    assert key_source(planned(body, retrieval={"collection": "faq"}), FakeGateway()).collection == "faq@"
    assert key_source(planned(body), FakeGateway()).collection == ""
    with_docs = build_key(key_source(planned(body, retrieval="docs"), FakeGateway()))
    without = build_key(key_source(planned(body), FakeGateway()))
    assert with_docs is not None and without is not None and with_docs.scope != without.scope


def test_an_unknown_collection_version_is_learnt_after_retrieval() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi?"}]}
    unknown = build_key(source(body, collection="fresh@"))
    known = build_key(source(body, collection="docs@v7"))
    assert unknown is not None and known is not None
    assert unknown.version_unknown and not known.version_unknown
    relearnt = unknown.with_collection("fresh@v1")
    assert relearnt.collection == "fresh@v1" and relearnt.scope != unknown.scope and relearnt.exact != unknown.exact
    assert relearnt.with_collection("fresh@") == unknown, "the same parts hash the same"


def test_policy_decisions() -> None:
    settings = settings_for(CacheConfig(max_temperature=0.5), RouteConfig.model_validate({"cache": {"ttl_s": 5}}))
    assert settings.ttl_s == 5 and settings.max_temperature == 0.5 and settings.threshold == threshold_for(0.01)
    route = RouteConfig.model_validate({"cache": {"max_wrong_rate": 0.2}})
    strict = settings_for(CacheConfig(max_wrong_rate=0.005), route)
    assert strict.threshold == threshold_for(0.2), "the route's bound wins"
    assert settings_for(CacheConfig(threshold=0.93, max_wrong_rate=0.2), None).threshold == 0.93, "a number overrides"
    assert decide(None, "", None, settings).lookup
    assert decide(None, "", 0.9, settings).reason == "temperature"
    assert decide("force", "", 0.9, settings).lookup
    no_cache = decide(None, "no-cache", None, settings)
    assert not no_cache.lookup and no_cache.store
    no_store = decide(None, "max-age=0, no-store", None, settings)
    assert no_store.lookup and not no_store.store
    assert not decide("off", "", None, settings).store
    with pytest.raises(InvalidRequest):
        decode_options({"cache": "sometimes"})


def test_a_threshold_no_cosine_passes_turns_the_semantic_tier_off() -> None:
    """At 1.0 (every row of the shipped bounds table) no reworded question can be served: the tier must
    not cost an embedding and a search per request for nothing, unless the answer basis can still serve."""
    assert not settings_for(CacheConfig(threshold=1.0), None).semantic
    assert settings_for(CacheConfig(threshold=1.0, answer_threshold=0.62), None).semantic
    assert settings_for(CacheConfig(threshold=0.93), None).semantic
    assert not settings_for(CacheConfig(threshold=0.93, semantic=False), None).semantic
    route = RouteConfig.model_validate({"cache": {"threshold": 0.9}})
    assert settings_for(CacheConfig(threshold=1.0), route).semantic, "a route's own threshold turns it back on"


def test_only_clean_answers_are_storable() -> None:
    ctx = context({})
    good = {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}
    assert storable(ctx, good)
    assert not storable(ctx, {"choices": [{"message": {"content": None}, "finish_reason": "content_filter"}]})
    ctx.meta["guards_failed_open"] = True
    assert not storable(ctx, good), "an answer the guards did not check is not kept"
    ctx = context({})
    ctx.status = "content_filtered"
    assert not storable(ctx, good)
    ctx = context({})
    ctx.meta["retrieval"] = {"collection": "kb", "error": "store unreachable"}
    assert not storable(ctx, good), "an answer produced without its passages is not kept"


def test_stored_answers_hold_placeholders_not_the_callers_pii() -> None:
    masker = Masker(policy=None)  # type: ignore[arg-type]
    masker.placeholder("PERSON", "Ada Lovelace")
    text = "Dear Ada Lovelace, hello. Bye, Ada."
    completion = {"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}
    kept = mask_answer(completion, masker.mask_known)
    assert kept["choices"][0]["message"]["content"] == "Dear <PERSON_1>, hello. Bye, <PERSON_1>."
    assert completion["choices"][0]["message"]["content"] == text, "the client's copy is untouched"


def test_streamed_chunks_assemble_into_a_completion() -> None:
    assembler = Assembler()
    for chunk in (
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 1}},
    ):
        assembler.feed(chunk)
    assert assembler.completion()["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}
    ]
    tools = Assembler()
    tools.feed({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                "function": {"name": "f", "arguments": '{"a"'}}]}, "finish_reason": None}]})  # fmt: skip
    tools.feed({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]},
                             "finish_reason": "tool_calls"}]})  # fmt: skip
    message = tools.completion()["choices"][0]["message"]
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    assert message["tool_calls"] == [call]


# --- index and store ---------------------------------------------------------------------------------


def unit(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_index_switches_to_hnsw_and_agrees_with_exact_search() -> None:
    import threading

    rng = np.random.default_rng(0)
    vectors = unit(rng, 600)
    index = VectorIndex(384, ann_min=300, lock=threading.RLock())
    for i, v in enumerate(vectors):
        index.add(f"k{i}", v)
    deadline = time.monotonic() + 30
    while index.graph is None or index.graph.ntotal != len(index.keys):
        assert time.monotonic() < deadline, "the HNSW graph was not built"
        time.sleep(0.05)
    for i in (0, 299, 450, 599):
        assert index.search(vectors[i], 1)[0][0] == f"k{i}"
    for i in range(0, 500):
        index.remove(f"k{i}")  # more than half dead: compacted, graph rebuilt later
    assert len(index) == 100 and len(index.keys) < 200, "dead rows were compacted away"
    assert index.search(vectors[550], 1)[0][0] == "k550"
    assert all(key != "k10" for key, _ in index.search(vectors[10], 4))


def entry(key: str, route: str = "r", scope: str = "s", vector: np.ndarray | None = None, ttl: float = 60,
          template: str | None = None) -> Entry:  # fmt: skip
    now = time.time()
    return Entry(key=key, scope=scope, route=route, question=key, completion={"choices": []}, created=now,
                 expires=now + ttl, template=template, vector=vector)  # fmt: skip


def test_store_limits_expiry_scope_and_invalidation() -> None:
    rng = np.random.default_rng(1)
    v = unit(rng, 5)
    store = MemoryStore()
    for i in range(3):
        store.add(entry(f"e{i}", vector=v[i]), max_entries=2)
    assert store.get_now("e0") is None and store.get_now("e2") is not None, "least recently used dropped"
    assert store.nearest("s", v[2], 2)[0][0].key == "e2"
    assert store.nearest("other-scope", v[2], 2) == [], "lookups never leave their scope"
    store.add(entry("old", ttl=-1, vector=v[3]), max_entries=10)
    assert store.get_now("old") is None and all(e.key != "old" for e, _ in store.nearest("s", v[3], 4))
    store.add(entry("t1", route="q", template="greeter@abc"), max_entries=10)
    assert store.invalidate(template="greeter") == 1 and store.get_now("t1") is None


def test_sqlite_persistence_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    rng = np.random.default_rng(2)
    v = unit(rng, 2)
    store = MemoryStore(persister=SqlitePersister(path))
    store.add(entry("a", vector=v[0]), max_entries=10)
    store.add(entry("b", vector=v[1]), max_entries=10)
    store.remove("a")
    store.persister.flush()  # type: ignore[union-attr]
    again = MemoryStore(persister=SqlitePersister(path))
    assert again.load({}, 10) == 1
    found = again.nearest("s", v[1], 1)
    assert found[0][0].key == "b" and found[0][1] == pytest.approx(1.0, abs=1e-5)


def test_sqlite_keeps_the_answer_vector(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    v = unit(np.random.default_rng(3), 2)
    store = MemoryStore(persister=SqlitePersister(path))
    store.add(entry("a", vector=v[0]), max_entries=10)
    assert store.attach_answer("a", v[1]) and not store.attach_answer("gone", v[1])
    store.persister.flush()  # type: ignore[union-attr]
    again = MemoryStore(persister=SqlitePersister(path))
    assert again.load({}, 10) == 1
    loaded = again.get_now("a")
    assert loaded is not None and loaded.vector is not None and loaded.answer_vector is not None
    assert np.allclose(loaded.vector, v[0]) and np.allclose(loaded.answer_vector, v[1])


def _mix(a: np.ndarray, b: np.ndarray, cos: float) -> np.ndarray:
    """A unit vector at cosine ``cos`` to ``a``, in the plane of ``a`` and ``b``."""
    ortho = b - (b @ a) * a
    ortho /= np.linalg.norm(ortho)
    return (cos * a + np.sqrt(1 - cos**2) * ortho).astype(np.float32)


def test_match_answer_check_and_ambiguity_margin() -> None:
    v = unit(np.random.default_rng(4), 4)
    asked = v[0]
    stored = _mix(asked, v[1], 0.75)  # a loose rewording: below the question threshold
    one = entry("one", vector=stored)
    rule = Rule(threshold=0.84, answer_threshold=0.62, answer_drop=0.12, margin=0.06)
    assert match("q", asked, [(one, 0.75)], rule, None).plausible == [], "no answer vector: threshold applies"
    one.answer_vector = 0.5 * stored + 0.5 * asked  # fits the new question as well as its own
    one.answer_vector /= np.linalg.norm(one.answer_vector)
    found = match("q", asked, [(one, 0.75)], rule, None)
    assert [(e.key, basis) for e, _, basis in found.plausible] == [("one", "answer")]
    one.answer_vector = _mix(stored, v[3], 0.8)  # about its own question only: fits the new one badly
    found = match("q", asked, [(one, 0.75)], rule, None)
    assert found.plausible == [] and found.refused[0]["reason"] == "answer"
    one.answer_vector = _mix(stored, v[3], 0.1)  # "Yes.": not recognisably about its own question
    assert match("q", asked, [(one, 0.75)], rule, None).plausible == [], "an answer not about its question is none"
    # two different questions scoring within the margin: ambiguous, no hit; with no margin, the best
    a, b = entry("a", vector=_mix(asked, v[1], 0.9)), entry("b", vector=_mix(asked, v[2], 0.88))
    assert float(a.vector @ b.vector) < 0.9  # type: ignore[operator]
    found = match("q", asked, [(a, 0.9), (b, 0.88)], rule, None)
    assert found.plausible == [] and found.refused[-1]["reason"] == "ambiguous"
    plain = Rule(threshold=0.84)
    assert [e.key for e, _, _ in match("q", asked, [(a, 0.9), (b, 0.88)], plain, None).plausible] == ["a", "b"]
    # near-identical stored questions are one question: no ambiguity
    c = entry("c", vector=_mix(a.vector, asked, 0.97))  # type: ignore[arg-type]
    assert [e.key for e, _, _ in match("q", asked, [(a, 0.9), (c, 0.89)], rule, None).plausible] == ["a", "c"]
