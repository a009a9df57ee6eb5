# Hand-written items; this script only assembles them into JSONL and validates.
import json, os, collections
here = os.path.dirname(os.path.abspath(__file__))
ns = {}
for f in ["gen_secret.py", "gen_benign_a.py", "gen_benign_b.py", "gen_benign_c.py", "gen_benign_d.py"]:
    exec(open(os.path.join(here, f)).read(), ns)
S, B = ns["S"], ns["B"]
with open(os.path.join(here, "reasoning_secret.jsonl"), "w") as fh:
    for c, t, v in S:
        fh.write(json.dumps({"text": t, "category": c}, ensure_ascii=False) + "\n")
with open(os.path.join(here, "reasoning_benign.jsonl"), "w") as fh:
    for c, t in B:
        fh.write(json.dumps({"text": t, "category": c}, ensure_ascii=False) + "\n")
# validation
vals = [v for _, _, v in S]
assert len(set(vals)) == len(vals), "dup values"
for c, t, v in S:
    assert v in t, t
    assert "://" not in t, t
    for q in ['"' + v + '"', "'" + v + "'"]:
        assert q not in t, t
for c, t in B:
    for v in vals:
        assert v not in t, (v, t)
for fn, n, per in [("reasoning_secret.jsonl", 120, 15), ("reasoning_benign.jsonl", 300, 30)]:
    rows = [json.loads(l) for l in open(os.path.join(here, fn), encoding="utf-8")]
    assert len(rows) == n, (fn, len(rows))
    assert all(set(r) == {"text", "category"} for r in rows)
    cnt = collections.Counter(r["category"] for r in rows)
    assert all(x == per for x in cnt.values()), cnt
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts), fn
    print(fn, len(rows), dict(cnt))
allt = [t for _, t, _ in S] + [t for _, t in B]
assert len(set(allt)) == len(allt)
print("ok")
