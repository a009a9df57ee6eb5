import json, random
p=[json.loads(l) for l in open('/work/shared/data/rag/pubmedqa/corpus.jsonl')]
c=[json.loads(l) for l in open('/work/shared/data/rag/covid_qa/passages.jsonl')]
def order(docs):
    ids=sorted(d['_id'] for d in docs)
    rng=random.Random(20261204)
    rng.shuffle(ids)
    return ids
po=order(p); co=order(c)
json.dump({'pm':po,'cq':co},open('order.json','w'))
pd={d['_id']:d for d in p}; cd={d['_id']:d for d in c}
# automatic pre-skip: pubmedqa text < 500 chars; covid: first chunk (_0, article header) or < 500 chars
with open('pm_cands.txt','w') as f:
    n=0
    for i in po:
        t=pd[i]['text']
        if len(t)<500: f.write(f'## SKIP-AUTO {i} short\n'); continue
        n+=1
        f.write(f'## [{n}] {i}\n{t[:300]} ... {t[-500:]}\n\n')
        if n>=185: break
with open('cq_cands.txt','w') as f:
    n=0
    for i in co:
        d=cd[i]; t=d['text']
        if i.endswith('_0') or len(t)<500: f.write(f'## SKIP-AUTO {i} header/short\n'); continue
        n+=1
        f.write(f'## [{n}] {i} | {d["title"]}\n{t}\n\n')
        if n>=80: break
