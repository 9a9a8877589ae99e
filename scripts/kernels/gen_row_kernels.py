# Generates Sources/GemmaKernels/RowKernels.swift from row_kernels_template.swift: the written-out lane expressions
# of the unpack functions (Swift only vectorizes them well written out; see the file's header). Run: python3 scripts/kernels/gen_row_kernels.py
import os
here = os.path.dirname(os.path.abspath(__file__))
def simd32(exprs):
    return "SIMD32<Int16>(\n            " + ",\n            ".join(exprs) + ")"
q8 = simd32([f"Int16(p[{i}])" for i in range(32)])
q4 = simd32([f"Int16(p[{j}] & 15) &- 8" for j in range(16)] + [f"Int16(p[{j}] >> 4) &- 8" for j in range(16)])
# Q5_0: nibbles n (written `Int16(p[j]) & 15` / `Int16(p[j]) >> 4`: vpmovzxbw + vpand + vpsrlw + vinserti64x4; the form
# `Int16(p[j] & 15)` compiles to 7 instructions), then lane j = n[j] (high bit set) or n[j] - 16 (clear), cm from
# q5ClearMask: LLVM turns this into vporq + a masked vmovdqu16 with the qh mask register.
q5n = simd32([f"Int16(p[{j}]) & 15" for j in range(16)] + [f"Int16(p[{j}]) >> 4" for j in range(16)])
q5 = simd32([f"cm[{j}] == 0 ? n[{j}] : n[{j}] &- 16" for j in range(32)])
q4klo = simd32([f"Int16(p[{l}] & 15)" for l in range(32)])
q4khi = simd32([f"Int16(p[{l}] >> 4)" for l in range(32)])
def q6lane(c, t, l):
    qlo = 64 * c + 32 * (t & 1) + l
    qho = 128 + 32 * c + l
    lo = f"Int16(p[{qlo}]) & 15" if t < 2 else f"Int16(p[{qlo}]) >> 4"
    hi = f"(Int16(p[{qho}]) >> {2 * t}) & 3" if t < 3 else f"Int16(p[{qho}]) >> 6"
    return f"(({lo}) | ({hi}) << 4 &- 32) &* s{l // 16}"
q6parts = []
for c in range(2):
    for t in range(4):
        g = 8 * c + 2 * t
        q6parts.append(f"""do {{
                let s0 = Int16(Int8(bitPattern: p[{192 + g}])), s1 = Int16(Int8(bitPattern: p[{193 + g}]))
                store32({simd32([q6lane(c, t, l) for l in range(32)])}, s.w + 32 &* (8 &* sb &+ {4 * c + t}))
            }}""")
q6 = "\n            ".join(q6parts)
src = open(os.path.join(here, 'row_kernels_template.swift')).read()
for k, v in dict(Q8=q8, Q4=q4, Q5N=q5n, Q5=q5, Q4KLO=q4klo, Q4KHI=q4khi, Q6=q6).items():
    src = src.replace("@@" + k + "@@", v)
open(os.path.join(here, '..', '..', 'Sources', 'GemmaKernels', 'RowKernels.swift'), 'w').write(src)
