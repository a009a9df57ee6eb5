import json, re, os, sys
OUT='/work/blind7/scifact_like'
p=[json.loads(l) for l in open('/work/shared/data/rag/pubmedqa/corpus.jsonl')]
c=[json.loads(l) for l in open('/work/shared/data/rag/covid_qa/passages.jsonl')]
corpus=[]
for d in p: corpus.append({'_id':'pm-'+d['_id'],'title':d.get('title') or '','text':d['text']})
for d in c: corpus.append({'_id':'cq-'+d['_id'],'title':d.get('title') or '','text':d['text']})
cd={d['_id']:d for d in corpus}
assert len(cd)==len(corpus)==3284
claims=[]
for fn,pre,src in [('claims_pm.tsv','pm-','pubmedqa'),('claims_cq.tsv','cq-','covid_qa')]:
    for line in open(fn):
        if not line.strip(): continue
        did,lab,txt=line.rstrip('\n').split('\t')
        claims.append((pre+did,lab,txt.strip(),src))
ids=[x[0] for x in claims]; assert len(set(ids))==len(ids), 'duplicate doc'
os.makedirs(OUT+'/qrels',exist_ok=True)
with open(OUT+'/corpus.jsonl','w') as f:
    for d in corpus: f.write(json.dumps(d,ensure_ascii=False)+'\n')
with open(OUT+'/queries.jsonl','w') as f, open(OUT+'/qrels/test.tsv','w') as g:
    g.write('query-id\tcorpus-id\tscore\n')
    for i,(did,lab,txt,src) in enumerate(claims,1):
        f.write(json.dumps({'_id':f'c{i}','text':txt,'label':lab,'source':src},ensure_ascii=False)+'\n')
        g.write(f'c{i}\t{did}\t1\n')
# overlap check
tok=lambda s: re.findall(r"[a-z0-9]+", s.lower())
bad=0
for i,(did,lab,txt,src) in enumerate(claims,1):
    d=cd[did]; dt=tok(d['title']+' . '+d['text'])
    grams=set(tuple(dt[k:k+4]) for k in range(len(dt)-3))
    ct=tok(txt)
    hits=[' '.join(ct[k:k+4]) for k in range(len(ct)-3) if tuple(ct[k:k+4]) in grams]
    if '?' in txt: print('QMARK',i)
    if hits: bad+=1; print(f'c{i}\t{did}\t{hits}\t{txt}')
print('claims',len(claims),'overlap-fail',bad)
