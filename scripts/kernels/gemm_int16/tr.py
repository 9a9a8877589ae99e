# Classic 16x16 32-bit transpose: unpck lo/hi 32, unpck lo/hi 64, then two rounds of 128-bit lane shuffles.
def unp32(a, b, hi):
    o = []
    for L in range(4):
        base = 4 * L + (2 if hi else 0)
        o += [a[base], b[base], a[base + 1], b[base + 1]]
    return o
def unp64(a, b, hi):
    o = []
    for L in range(4):
        base = 4 * L + (2 if hi else 0)
        o += [a[base], a[base + 1], b[base], b[base + 1]]
    return o
def sh128(a, b, la, lb):  # lanes la (2 lanes of a), lb (2 lanes of b)
    o = []
    for L in list(la):
        o += a[4 * L:4 * L + 4]
    for L in list(lb):
        o += b[4 * L:4 * L + 4]
    return o
ops = []  # (name, kind, srcA, srcB, param)
rows = {f"r{k}": [(k, c) for c in range(16)] for k in range(16)}
vals = dict(rows)
def emit(name, kind, a, b, p):
    if kind == "u32": v = unp32(vals[a], vals[b], p)
    elif kind == "u64": v = unp64(vals[a], vals[b], p)
    else: v = sh128(vals[a], vals[b], p[0], p[1])
    vals[name] = v; ops.append((name, kind, a, b, p))
for k in range(8):
    emit(f"t{2*k}", "u32", f"r{2*k}", f"r{2*k+1}", False); emit(f"t{2*k+1}", "u32", f"r{2*k}", f"r{2*k+1}", True)
for g in range(4):
    t = [f"t{4*g+i}" for i in range(4)]
    emit(f"u{4*g}", "u64", t[0], t[2], False); emit(f"u{4*g+1}", "u64", t[0], t[2], True)
    emit(f"u{4*g+2}", "u64", t[1], t[3], False); emit(f"u{4*g+3}", "u64", t[1], t[3], True)
# u[4g+c]: lane L holds rows 4g..4g+3 of some column. Combine groups: stage 3 pairs (g0,g1),(g2,g3); stage 4 pairs results.
for c in range(4):
    emit(f"v{c}a", "s", f"u{c}", f"u{4+c}", ((0, 2), (0, 2))); emit(f"v{c}b", "s", f"u{c}", f"u{4+c}", ((1, 3), (1, 3)))
    emit(f"w{c}a", "s", f"u{8+c}", f"u{12+c}", ((0, 2), (0, 2))); emit(f"w{c}b", "s", f"u{8+c}", f"u{12+c}", ((1, 3), (1, 3)))
outs = []
for c in range(4):
    for x in "ab":
        emit(f"o{c}{x}0", "s", f"v{c}{x}", f"w{c}{x}", ((0, 2), (0, 2))); emit(f"o{c}{x}1", "s", f"v{c}{x}", f"w{c}{x}", ((1, 3), (1, 3)))
        outs += [f"o{c}{x}0", f"o{c}{x}1"]
# check: each output holds one column, rows in some order
perm = None; colOf = {}
for o in outs:
    v = vals[o]; cols = {c for (_, c) in v}; assert len(cols) == 1, (o, v)
    rowsOrder = [r for (r, _) in v]
    if perm is None: perm = rowsOrder
    assert rowsOrder == perm, (o, rowsOrder, perm)
    colOf[o] = cols.pop()
print("lane->row", perm)
print({o: colOf[o] for o in outs})
import json; json.dump({"ops": ops, "outs": outs, "colOf": colOf, "perm": perm}, open(__import__("os").path.join(__import__("os").path.dirname(__import__("os").path.abspath(__file__)), "tr.json"), "w"))
