import json, re, random, csv, sys
OUT='/work/blind7/scifact_like'
ok=True
def err(m):
    global ok; ok=False; print('FAIL',m)
corpus=[json.loads(l) for l in open(OUT+'/corpus.jsonl')]
ids=[d['_id'] for d in corpus]
if len(ids)!=3284 or len(set(ids))!=3284: err('corpus ids')
if sum(i.startswith('pm-') for i in ids)!=1000 or sum(i.startswith('cq-') for i in ids)!=2284: err('corpus split')
for d in corpus:
    if set(d)!={'_id','title','text'} or not isinstance(d['title'],str) or not d['text']: err('corpus fields '+d['_id'])
cset=set(ids); cmap={d['_id']:d for d in corpus}
qs=[json.loads(l) for l in open(OUT+'/queries.jsonl')]
if len(qs)!=220 or len({q['_id'] for q in qs})!=220: err('query count/ids')
for k,q in enumerate(qs,1):
    if q['_id']!=f'c{k}' or set(q)!={'_id','text','label','source'}: err('query fields '+str(q))
    if q['label'] not in ('support','refute') or q['source'] not in ('pubmedqa','covid_qa'): err('label/source '+q['_id'])
    if '?' in q['text'] or not q['text'].strip(): err('text '+q['_id'])
rows=list(csv.reader(open(OUT+'/qrels/test.tsv'),delimiter='\t'))
if rows[0]!=['query-id','corpus-id','score']: err('qrels header')
qr={}
for r in rows[1:]:
    if len(r)!=3 or r[2]!='1': err('qrels row '+str(r))
    if r[1] not in cset: err('qrel corpus id missing '+r[1])
    if r[0] in qr: err('dup qrel '+r[0])
    qr[r[0]]=r[1]
if set(qr)!={q['_id'] for q in qs}: err('qrels/queries mismatch')
if len(set(qr.values()))!=220: err('doc reused')
for q in qs:
    pre='pm-' if q['source']=='pubmedqa' else 'cq-'
    if not qr[q['_id']].startswith(pre): err('source prefix '+q['_id'])
# overlap: no run of >=4 consecutive words shared with the document's title or text
tok=lambda s: re.findall(r"[a-z0-9]+", s.lower())
nfail=0
for q in qs:
    d=cmap[qr[q['_id']]]; dt=tok(d['title']+' . '+d['text'])
    g=set(tuple(dt[k:k+4]) for k in range(len(dt)-3)); ct=tok(q['text'])
    h=[ct[k:k+4] for k in range(len(ct)-3) if tuple(ct[k:k+4]) in g]
    if h: nfail+=1; err(f"overlap {q['_id']} {h}")
# draw reproducibility
def order(path):
    ii=sorted(json.loads(l)['_id'] for l in open(path)); r=random.Random(20261204); r.shuffle(ii); return ii
src={'pm':'/work/shared/data/rag/pubmedqa/corpus.jsonl','cq':'/work/shared/data/rag/covid_qa/passages.jsonl'}
skips={'pm':{l.split()[0] for l in open('skips_pm.txt') if l.strip()},'cq':{l.split()[0] for l in open('skips_cq.txt') if l.strip()}}
need={'pm':160,'cq':60}
for s in ('pm','cq'):
    raw={json.loads(l)['_id']:json.loads(l) for l in open(src[s])}
    sel=[]
    for i in order(src[s]):
        t=raw[i]['text']
        if len(t)<500: continue
        if s=='cq' and i.endswith('_0'): continue
        if i in skips[s]: continue
        sel.append(s+'-'+i)
        if len(sel)==need[s]: break
    chosen=sorted(v for v in qr.values() if v.startswith(s+'-'))
    if sorted(sel)!=chosen: err('draw mismatch '+s+str(set(sel)^set(chosen)))
lab={}
for q in qs: lab[(q['source'],q['label'])]=lab.get((q['source'],q['label']),0)+1
print('labels',lab,'overlap failures',nfail)
print('ALL OK' if ok else 'ERRORS')
