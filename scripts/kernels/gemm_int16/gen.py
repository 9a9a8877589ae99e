# Generates Sources/GemmaKernels/GemmInt16.swift from tmpl.swift (the 32 x 6 int16 tile and the 16 x 16 word transpose
# written out; tr.json is the transpose sequence made and checked by tr.py). Run: python3 scripts/kernels/gemm_int16/gen.py
T=6
names=[(t,h) for t in range(T) for h in range(2)]
def f(t,h): return f"f{t}{h}"
def i(t,h): return f"i{t}{h}"
fdecl = "\n".join(f"    var {f(t,0)} = SIMD16<Float>(), {f(t,1)} = SIMD16<Float>()" for t in range(T))
fload = "\n".join(f"    if !first && {t} < nt {{ {f(t,0)} = yl(y + {t} &* yStride); {f(t,1)} = yl(y + ({t} &* yStride &+ 16)) }}" for t in range(T))
fstore = "\n".join(f"    if {t} < nt {{ ys(y + {t} &* yStride, {f(t,0)}); ys(y + ({t} &* yStride &+ 16), {f(t,1)}) }}" for t in range(T))
idecl = "\n".join(f"        var {i(t,0)} = zi, {i(t,1)} = zi" for t in range(T))
step = "\n".join(f"            {i(t,0)} &+= pairDot16(w0, x + {32*t}); {i(t,1)} &+= pairDot16(w1, x + {32*t})" for t in range(T))
conv = "\n".join(f"        {f(t,0)} = {f(t,0)}.addingProduct(lanesToFloat({i(t,0)}), s0 * SIMD16<Float>(repeating: c[{t}])); {f(t,1)} = {f(t,1)}.addingProduct(lanesToFloat({i(t,1)}), s1 * SIMD16<Float>(repeating: c[{t}]))" for t in range(T))
mins = "\n".join(f"                {f(t,0)} = {f(t,0)}.addingProduct(m0, SIMD16<Float>(repeating: c[{8+t}])); {f(t,1)} = {f(t,1)}.addingProduct(m1, SIMD16<Float>(repeating: c[{8+t}]))" for t in range(T))
def stage(sz):
    na=[f"b[{c-sz}]" if c & sz else f"a[{c}]" for c in range(16)]
    nb=[f"b[{c}]" if c & sz else f"a[{c+sz}]" for c in range(16)]
    return f"""@inline(__always) func gemmI16Stage{sz}(_ a: SIMD16<Int32>, _ b: SIMD16<Int32>) -> (SIMD16<Int32>, SIMD16<Int32>) {{
    (SIMD16<Int32>({", ".join(na)}),
     SIMD16<Int32>({", ".join(nb)}))
}}"""
stages="\n".join(stage(z) for z in (8,4,2,1))
tr=[]
tr.append("    " + "; ".join(f"let r{k} = ld({k})" for k in range(16)))
cur=[f"r{k}" for k in range(16)]
for st,sz in enumerate((8,4,2,1)):
    nxt=list(cur)
    lines=[]
    for k in range(16):
        if k & sz: continue
        a,b=cur[k],cur[k+sz]
        na,nb=f"s{st}_{k}",f"s{st}_{k+sz}"
        lines.append(f"let ({na}, {nb}) = gemmI16Stage{sz}({a}, {b})")
        nxt[k],nxt[k+sz]=na,nb
    tr.append("    " + "; ".join(lines))
    cur=nxt
tr.append("    " + "; ".join(f"st({k}, {cur[k]})" for k in range(16)))
transpose="\n".join(tr)
import json, os
here = os.path.dirname(os.path.abspath(__file__))
T2=json.load(open(os.path.join(here, 'tr.json')))
def lanes(kind, p):
    if kind == "u32":
        o=[]
        for L in range(4):
            b0 = 4*L + (2 if p else 0); o += [f"a[{b0}]", f"b[{b0}]", f"a[{b0+1}]", f"b[{b0+1}]"]
        return o
    if kind == "u64":
        o=[]
        for L in range(4):
            b0 = 4*L + (2 if p else 0); o += [f"a[{b0}]", f"a[{b0+1}]", f"b[{b0}]", f"b[{b0+1}]"]
        return o
    o=[]
    for L in p[0]: o += [f"a[{4*L+i}]" for i in range(4)]
    for L in p[1]: o += [f"b[{4*L+i}]" for i in range(4)]
    return o
fns = {}
for (name, kind, a, b, p) in T2["ops"]:
    key = (kind, json.dumps(p))
    if key not in fns:
        fname = f"gemmI16Shuf{len(fns)}"
        fns[key] = fname
fdefs = []
for key, fname in fns.items():
    kind, p = key[0], json.loads(key[1])
    fdefs.append(f"@inline(__always) func {fname}(_ a: SIMD16<Int32>, _ b: SIMD16<Int32>) -> SIMD16<Int32> {{\n    SIMD16<Int32>({', '.join(lanes(kind, p))})\n}}")
stages = "\n".join(fdefs)
body = ["    " + "; ".join(f"let r{k} = ld({k})" for k in range(16))]
line = []
for (name, kind, a, b, p) in T2["ops"]:
    line.append(f"let {name} = {fns[(kind, json.dumps(p))]}({a}, {b})")
    if len(line) == 4: body.append("    " + "; ".join(line)); line = []
if line: body.append("    " + "; ".join(line))
body.append("    " + "; ".join(f"st({T2['colOf'][o]}, {o})" for o in T2["outs"]))
transpose = "\n".join(body)
src=open(os.path.join(here, 'tmpl.swift')).read()
for k,v in dict(STAGES=stages,TRANSPOSE=transpose,FDECL=fdecl,FLOAD=fload,FSTORE=fstore,IDECL=idecl,STEP=step,CONV=conv,MINS=mins).items(): src=src.replace('@@'+k+'@@',v)
open(os.path.join(here, '..', '..', '..', 'Sources', 'GemmaKernels', 'GemmInt16.swift'),'w').write(src)
