# Generates Sources/GemmaKernels/RowUnpack.swift from row_unpack_template.swift and PanelUnpack.swift from
# panel_unpack_template.swift: the written-out lane expressions of the unpack functions (Swift only vectorizes them
# well written out; see RowKernels.swift's header and docs/kernels.md). RowKernels.swift itself is hand-written.
# Run: make kernels   (or python3 scripts/kernels/gen_row_kernels.py; env OUT=dir writes the two files into dir
# instead, as scripts/check-generated.sh does)
# Row kernels, chunk-interleaved layout: a group of 4 blocks of 32 (128 elements) is 4 vectors of 32 int16; vector c
# holds elements 8c ..< 8c + 8 of block 0, then of block 1, 2, 3 (lane 8m + k = block m, element 8c + k).
# Panel unpack (for the prompt GEMM): blocks in element order.
import os
here = os.path.dirname(os.path.abspath(__file__))
out = os.environ.get('OUT', os.path.join(here, '..', '..', 'Sources', 'GemmaKernels'))
def simd32(exprs):
    return "SIMD32<Int16>(\n            " + ",\n            ".join(exprs) + ")"
def chunks(lane, dst="w"):
    # A group's four vectors built directly, lane(c, m, k) = element 8c + k of block m: four zmm stores.
    return "\n    ".join(f"store32({simd32([lane(c, m, k) for m in range(4) for k in range(8)])}, {dst} + {32 * c})" for c in range(4))

# Shared: Q5_0 in element order. Nibbles n (written `Int16(p[j]) & 15` / `Int16(p[j]) >> 4`: vpmovzxbw + vpand + vpsrlw +
# vinserti64x4; the form `Int16(p[j] & 15)` compiles to 7 instructions), then lane j = n[j] (high bit set) or n[j] - 16
# (clear), cm from q5ClearMask: vporq + a masked vmovdqu16 with the qh mask register.
q5n = simd32([f"Int16(p[{j}]) & 15" for j in range(16)] + [f"Int16(p[{j}]) >> 4" for j in range(16)])
q5 = simd32([f"cm[{j}] == 0 ? n[{j}] : n[{j}] &- 16" for j in range(32)])

# Row kernels (chunk-interleaved).
# Q5_0 (byte level): the group's 128 values as signed bytes, nibble | 0xF0 (= n - 16) where the high bit is
# clear, the nibble where it is set (`cm == 0 ? x &+ 16 : x`, cm from q5ClearMask: vpand / vgf2p8affineqb (byte
# shift), vpor, one masked vmovdqu8 per 32 bytes with the kmovw / kunpckwd mask). Four 32-byte vectors, blocks 0 and 2
# (l02: low nibbles = elements 0 ..< 16, h02: high nibbles = elements 16 ..< 32), blocks 1 and 3 (l13, h13); in each,
# 8-byte pieces [blk a e0-7, blk a e8-15, blk b e0-7, blk b e8-15]. The chunk layout is then an in-lane interleave of
# 8-byte pieces (vpunpcklqdq / vpunpckhqdq: chunk c = [e 8c.. of blk 0, blk 1, blk 2, blk 3]) and one sign extension
# per vector (vpmovsxbw). Per group 32 vector instructions (5 stores) + 12 mask instructions, 68 in all, where the
# int16 unpacking + 4 x 4 transpose of 16-byte pieces took 56 + 9, 79 in all (vpermt2q on two 64-byte vectors +
# vextracti64x4 instead of the in-lane interleave measured slower: 4.8 vs 4.2-4.4 ns per group).
def simd32t(exprs, t):
    return f"SIMD32<{t}>(\n            " + ",\n            ".join(exprs) + ")"
def q5raw(pa, pb, hi):
    ex = (lambda p, j: f"({p}[{j}] >> 4) | 0xF0") if hi else (lambda p, j: f"{p}[{j}] | 0xF0")
    return [ex(pa, j) for j in range(16)] + [ex(pb, j) for j in range(16)]
def q5sel(v, cma, cmb, hi):
    o = 16 if hi else 0
    return [f"{cma if j < 16 else cmb}[{o + j % 16}] == 0 ? {v}[{j}] &+ 16 : {v}[{j}]" for j in range(32)]
q5vecs = []
for name, a, b, hi in [("l02", 0, 2, False), ("l13", 1, 3, False), ("h02", 0, 2, True), ("h13", 1, 3, True)]:
    q5vecs.append(f"let r{name} = {simd32t(q5raw(f'p{a}', f'p{b}', hi), 'UInt8')}")
    q5vecs.append(f"let {name} = unsafeBitCast({simd32t(q5sel('r' + name, f'cm{a}', f'cm{b}', hi), 'UInt8')}, to: SIMD4<UInt64>.self)")
q5group = "\n        ".join(
    [f"let p{m} = (b{m} + 6).assumingMemoryBound(to: UInt8.self), cm{m} = q5ClearMask(b{m})" for m in range(4)]
    + q5vecs
    + [f"let c{2 * h + i} = unsafeBitCast(SIMD4<UInt64>({x}02[{i}], {x}13[{i}], {x}02[{i + 2}], {x}13[{i + 2}]), to: SIMD32<Int8>.self)"
       for h, x in enumerate("lh") for i in range(2)]
    + [f"store32({simd32([f'Int16(c{c}[{j}])' for j in range(32)])}, w + {32 * c})" for c in range(4)]
    + ["// The 4 f16 scales gathered in a general register (4 movzwl, shifts, ors), then vmovq + vcvtph2ps + vpermps\n"
       "        // (vs vpinsrw x4 + 3 unpacks: 6 fewer vector instructions).",
       "let h = UInt64(b0.loadUnaligned(as: UInt16.self)) | UInt64(b1.loadUnaligned(as: UInt16.self)) &<< 16\n"
       "            | UInt64(b2.loadUnaligned(as: UInt16.self)) &<< 32 | UInt64(b3.loadUnaligned(as: UInt16.self)) &<< 48",
       "let hv = unsafeBitCast(SIMD2<UInt64>(h, 0), to: SIMD8<Float16>.self)",
       "let d0 = Float(hv[0]), d1 = Float(hv[1]), d2 = Float(hv[2]), d3 = Float(hv[3])"])
# Q8_0 / Q4_0: the group's vectors gathered from the 4 blocks' bytes (p0 ... p3).
# Q8_0 (as Q5_0's byte level): 16-byte halves of blocks 0 and 2, 1 and 3 paired in 128-bit lanes (a vmovdqu +
# vinserti128 each), the chunk layout by an in-lane interleave of 8-byte pieces, one vpmovsxbw per vector.
def q8half(ma, mb, h):
    return simd32t([f"p{ma}[{16 * h + j}]" for j in range(16)] + [f"p{mb}[{16 * h + j}]" for j in range(16)], "Int8")
q8g = "\n    ".join(
    [f"let {n} = unsafeBitCast({q8half(ma, mb, h)}, to: SIMD4<UInt64>.self)" for n, ma, mb, h in
     [("lo02", 0, 2, 0), ("lo13", 1, 3, 0), ("hi02", 0, 2, 1), ("hi13", 1, 3, 1)]]
    + [f"let c{2 * h + i} = unsafeBitCast(SIMD4<UInt64>({x}02[{i}], {x}13[{i}], {x}02[{i + 2}], {x}13[{i + 2}]), to: SIMD32<Int8>.self)"
       for h, x in enumerate(["lo", "hi"]) for i in range(2)]
    + [f"store32({simd32([f'Int16(c{c}[{j}])' for j in range(32)])}, w + {32 * c})" for c in range(4)])
q4g = chunks(lambda c, m, k: f"Int16(p{m}[{8 * (c % 2) + k}] {'& 15' if c < 2 else '>> 4'}) &- 8")
# Q4_K / Q6_K at the byte level, as Q5_0: a group's values as bytes in 32-byte vectors holding two
# sub-blocks' 16-byte halves (one per 128-bit lane: sub-blocks 0 and 2 in `a{h}`, 1 and 3 in `b{h}`, elements
# 16h ..< 16h + 16); chunk vector 2h + i = the in-lane interleave SIMD4<UInt64>(a[i], b[i], a[i + 2], b[i + 2])
# (vpunpcklqdq / vpunpckhqdq), then one vpmovzxbw / vpmovsxbw per chunk vector (no 4 x 4 transpose of int16 pieces).
def chunk4(h, i, t):
    return f"let c{2 * h + i} = unsafeBitCast(SIMD4<UInt64>(a{h}[{i}], b{h}[{i}], a{h}[{i + 2}], b{h}[{i + 2}]), to: SIMD32<{t}>.self)"
def widen(v):
    return simd32([f"Int16({v}[{j}])" for j in range(32)])
# Q4_K: sub-blocks 0, 1 = low / high nibbles of q[0 ..< 32], 2, 3 = of q[32 ..< 64]; a{h} = [q[16h ..< +16] | q[32 + 16h
# ..< +16]] (vmovdqu + vinserti128) & 15, b{h} the same >> 4 (vgf2p8affineqb): 20 instructions per group (4 loads,
# 4 stores), where storeGroup's version took 29 (12 of them 16-byte-piece shuffles).
def q4kb_lane(m, e):
    return f"q[{32 * (m // 2) + e}] {'& 15' if m % 2 == 0 else '>> 4'}"
q4kb = []
for h in range(2):
    for x, (m0, m1) in (("a", (0, 2)), ("b", (1, 3))):
        q4kb.append(f"let {x}{h} = unsafeBitCast({simd32t([q4kb_lane(m0, 16 * h + i) for i in range(16)] + [q4kb_lane(m1, 16 * h + i) for i in range(16)], 'UInt8')}, to: SIMD4<UInt64>.self)")
q4kb += [chunk4(h, i, "UInt8") for h in range(2) for i in range(2)]
q4kb += [f"store32({widen(f'c{c}')}, w + {32 * c})" for c in range(4)]
q4kb = "\n            ".join(q4kb)
# Q6_K: sub-block t of group c in element order as bytes v{t} (uniform byte operations per vector: vpand /
# vgf2p8affineqb / vpternlogq), the 128-bit lanes paired (vinserti128 / vperm2i128) into a{h}, b{h}, minus 32 *after*
# the pairing (a whole-vector &-: it keeps LLVM from merging the two shuffle levels into 4-source shuffles per chunk,
# vpermt2q chains: 1.07x instead of 1.34x), in-lane interleave, vpmovsxbw, times the per-16 scales (vpmullw). Scales:
# the group's 8 int8 scales as one vpmovsxbw from memory, + opaque zero (else LLVM rebuilds each scale vector from
# masked byte loads: 4 instructions instead of 1.5), 2 vpermw.
def q6parts(c, t, l, byte):
    # Element l of sub-block t of group c: its low 4 bits from ql (low or high nibble), its high 2 bits from qh.
    qlo, qho = 64 * c + 32 * (t & 1) + l, 128 + 32 * c + l
    ql, qh = (f"p[{qlo}]", f"p[{qho}]") if byte else (f"Int16(p[{qlo}])", f"Int16(p[{qho}])")
    return (f"{ql} & 15" if t < 2 else f"{ql} >> 4"), (f"({qh} >> {2 * t}) & 3" if t < 3 else f"{qh} >> 6")
def q6lane_ns(c, t, l):
    lo, hi = q6parts(c, t, l, False)
    return f"({lo}) | ({hi}) << 4 &- 32"
def q6byte(c, t, l):
    lo, hi = q6parts(c, t, l, True)
    return f"({lo}) | ({hi}) << 4"
q6b = []
for c in range(2):
    lets = [f"let v{t} = unsafeBitCast({simd32t([q6byte(c, t, l) for l in range(32)], 'UInt8')}, to: SIMD4<UInt64>.self)" for t in range(4)]
    for h in range(2):
        for x, (m0, m1) in (("a", (0, 2)), ("b", (1, 3))):
            lets.append(f"let {x}{h} = unsafeBitCast(unsafeBitCast(SIMD4<UInt64>(v{m0}[{2 * h}], v{m0}[{2 * h + 1}], v{m1}[{2 * h}], v{m1}[{2 * h + 1}]), to: SIMD32<UInt8>.self) &- SIMD32<UInt8>(repeating: 32), to: SIMD4<UInt64>.self)")
    lets += [chunk4(h, i, "Int8") for h in range(2) for i in range(2)]
    # Scales in the chunk layout: vectors 0, 1 (elements 0 ..< 16 of each sub-block) take scale 2t, vectors 2, 3 2t + 1.
    lets.append("let sv = " + f"SIMD8<Int16>({', '.join(f'Int16(Int8(bitPattern: p[{192 + 8 * c + i}]))' for i in range(8))}) &+ zs")
    lets += [f"let sc{h} = " + simd32([f"sv[{2 * m + h}]" for m in range(4) for k in range(8)]) for h in range(2)]
    lets += [f"let w{c} = s.w + 128 &* (2 &* sb &+ {c})"]
    lets += [f"store32(mul32({widen(f'c{j}')}, sc{j // 2}), w{c} + {32 * j})" for j in range(4)]
    body = "\n            ".join(lets)
    q6b.append(f"""do {{
            {body}
        }}""")
q6b = "let zs = SIMD8<Int16>(repeating: Int16(truncatingIfNeeded: s.z))\n        " + "\n        ".join(q6b)

# Panel unpack (element order).
q8 = simd32([f"Int16(p[{i}])" for i in range(32)])
q4 = simd32([f"Int16(p[{j}] & 15) &- 8" for j in range(16)] + [f"Int16(p[{j}] >> 4) &- 8" for j in range(16)])
q4klo = simd32([f"Int16(p[{l}] & 15)" for l in range(32)])
q4khi = simd32([f"Int16(p[{l}] >> 4)" for l in range(32)])
def q6lane(c, t, l):
    return f"({q6lane_ns(c, t, l)}) &* s{l // 16}"
q6 = []
for c in range(2):
    for t in range(4):
        g = 8 * c + 2 * t
        q6.append(f"""do {{
            let s0 = Int16(Int8(bitPattern: p[{192 + g}])), s1 = Int16(Int8(bitPattern: p[{193 + g}]))
            store32({simd32([q6lane(c, t, l) for l in range(32)])}, s.w + 32 &* (8 &* sb &+ {4 * c + t}))
        }}""")
q6 = "\n        ".join(q6)

def generate(template, target, subs):
    src = open(os.path.join(here, template)).read()
    for k, v in subs.items():
        src = src.replace("@@" + k + "@@", v)
    assert "@@" not in src, template
    header = (f"// GENERATED by scripts/kernels/gen_row_kernels.py from {template}: do not edit; edit the template and run "
              "`make kernels`.\n")
    open(os.path.join(out, target), 'w').write(header + src)
generate('row_unpack_template.swift', 'RowUnpack.swift',
         dict(MUL32=simd32([f'a[{i}] &* b[{i}]' for i in range(32)]), Q8G=q8g, Q4G=q4g, Q5GROUP=q5group, Q6B=q6b, Q4KB=q4kb))
generate('panel_unpack_template.swift', 'PanelUnpack.swift', dict(Q8=q8, Q4=q4, Q5N=q5n, Q5=q5, Q4KLO=q4klo, Q4KHI=q4khi, Q6=q6))
