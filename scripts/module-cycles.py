#!/usr/bin/env python3
"""Cycles among the library's modules (src/*), from
their `crate::` paths. Prints "none" or each cycle with the files behind its edges;
exits 1 on a cycle. Run from the repository root: scripts/module-cycles.py"""
import collections
import os
import re
import sys

edges=collections.defaultdict(set)
where=collections.defaultdict(list)
def modof(parts):
    top=parts[0].replace('.rs','')
    if top in ('resolve',) and len(parts)>1: return top+'/'+parts[1].replace('.rs','')
    return top
for root,_,files in os.walk('src'):
    for f in files:
        if not f.endswith('.rs'): continue
        p=os.path.join(root,f)
        parts=os.path.relpath(p,'src').split('/')
        mod=modof(parts)
        if mod in ('main','cli','lib'): continue
        s=open(p).read()
        for m in re.finditer(r'crate::([a-z_]+)(?:::([a-z_]+))?',s):
            t=m.group(1)
            if t=='resolve' and m.group(2): t='resolve/'+m.group(2)
            if t.split('/')[0]!=mod.split('/')[0]:
                edges[mod].add(t); where[(mod,t)].append(p)
# find cycles via DFS (SCCs)
nodes=set(edges)|{t for v in edges.values() for t in v}
index={};low={};st=[];on=set();sccs=[];i=[0]
def sc(v):
    index[v]=low[v]=i[0];i[0]+=1;st.append(v);on.add(v)
    for w in edges.get(v,()):
        if w not in index: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],index[w])
    if low[v]==index[v]:
        c=[]
        while True:
            w=st.pop();on.discard(w);c.append(w)
            if w==v:break
        if len(c)>1: sccs.append(c)
sys.setrecursionlimit(10000)
for v in sorted(nodes):
    if v not in index: sc(v)
print("cycles (strongly connected groups):", sccs or "none")
if sccs:
    for c in sccs:
        for a in c:
            for b in edges[a]:
                if b in c: print(f"  {a} -> {b}: {sorted(set(where[(a,b)]))}")
sys.exit(1 if sccs else 0)
