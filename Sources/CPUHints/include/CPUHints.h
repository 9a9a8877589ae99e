// Instructions Swift cannot spell, as static inline C functions (inlined into the Swift callers).
#ifndef CPU_HINTS_H
#define CPU_HINTS_H

/// Asks the CPU to start loading the cache line at `p` into all cache levels (a hint: no fault, no result).
static inline void cpu_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

// Q5_0 decode on AVX-512 VBMI (RowKernels.swift's chunk-interleaved layout: vector c of a group of 4 blocks holds
// elements 8c ..< 8c + 8 of block 0, 1, 2, 3). A group is 88 contiguous bytes (block m: f16 d at 22m, qh at 22m + 2,
// qs at 22m + 6); two-source byte permutes (vpermt2b) over them put the quants (cpu_q5_0_qs) and, per lane, the qh
// byte holding its high bit (cpu_q5_0_qhl for elements 0 ..< 16, cpu_q5_0_qhh for 16 ..< 32) in chunk order: low
// nibbles = vectors 0 and 1, high nibbles = vectors 2 and 3. vptestnmb against the lane's bit (1 << lane % 8) gives
// "high bit clear", where a masked vpsubb subtracts 16 (q - 16); vpmovsxbw widens. Scales: vpermt2w of the four d
// words (word offsets 0, 11, 22, 33) expanded [d0 x4, d1 x4, d2 x4, d3 x4], vcvtph2ps. Exactly unpackQ5_0's values.
static const uint8_t cpu_q5_0_qs[64] = {
    6, 7, 8, 9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 33, 34, 35, 50, 51, 52, 53, 54, 55, 56, 57, 72, 73, 74, 75, 76, 77, 78, 79,
    14, 15, 16, 17, 18, 19, 20, 21, 36, 37, 38, 39, 40, 41, 42, 43, 58, 59, 60, 61, 62, 63, 64, 65, 80, 81, 82, 83, 84, 85, 86, 87};
static const uint8_t cpu_q5_0_qhl[64] = {
    2, 2, 2, 2, 2, 2, 2, 2, 24, 24, 24, 24, 24, 24, 24, 24, 46, 46, 46, 46, 46, 46, 46, 46, 68, 68, 68, 68, 68, 68, 68, 68,
    3, 3, 3, 3, 3, 3, 3, 3, 25, 25, 25, 25, 25, 25, 25, 25, 47, 47, 47, 47, 47, 47, 47, 47, 69, 69, 69, 69, 69, 69, 69, 69};
static const uint8_t cpu_q5_0_qhh[64] = {
    4, 4, 4, 4, 4, 4, 4, 4, 26, 26, 26, 26, 26, 26, 26, 26, 48, 48, 48, 48, 48, 48, 48, 48, 70, 70, 70, 70, 70, 70, 70, 70,
    5, 5, 5, 5, 5, 5, 5, 5, 27, 27, 27, 27, 27, 27, 27, 27, 49, 49, 49, 49, 49, 49, 49, 49, 71, 71, 71, 71, 71, 71, 71, 71};
static const uint16_t cpu_q5_0_d[32] = {0, 0, 0, 0, 11, 11, 11, 11, 22, 22, 22, 22, 33, 33, 33, 33,
                                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
#define CPU_Q5_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512vnni,f16c")))

/// One whole Q5_0 group at `p` unpacked: the four int16 chunk vectors and the expanded scales. The second load is
/// masked to the group's last 24 bytes (no read past the group).
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_q5_0_group(const uint8_t *p, __m512i w[4], __m512 *ws) {
    const __m512i bits = _mm512_set1_epi64((long long)0x8040201008040201ull);
    const __m512i m15 = _mm512_set1_epi8(15), s16 = _mm512_set1_epi8(16);
    __m512i a = _mm512_loadu_si512(p);
    __m512i b = _mm512_maskz_loadu_epi8(0xFFFFFFull, p + 64);
    __m512i q = _mm512_permutex2var_epi8(a, _mm512_loadu_si512(cpu_q5_0_qs), b);
    __mmask64 cl = _mm512_testn_epi8_mask(_mm512_permutex2var_epi8(a, _mm512_loadu_si512(cpu_q5_0_qhl), b), bits);
    __mmask64 ch = _mm512_testn_epi8_mask(_mm512_permutex2var_epi8(a, _mm512_loadu_si512(cpu_q5_0_qhh), b), bits);
    __m512i lo = _mm512_and_si512(q, m15);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m15);
    lo = _mm512_mask_sub_epi8(lo, cl, lo, s16);
    hi = _mm512_mask_sub_epi8(hi, ch, hi, s16);
    w[0] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(lo));
    w[1] = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(lo, 1));
    w[2] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(hi));
    w[3] = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(hi, 1));
    *ws = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(a, _mm512_loadu_si512(cpu_q5_0_d), b)));
}

/// One whole Q5_0 group at `g` into the row kernels' scratch (`w`: 128 int16, `ws`: 16 expanded scales), the same
/// bytes as RowUnpack.swift's unpackQ5_0.
CPU_Q5_TARGET
static inline void cpu_unpack_q5_0_group(const void *g, int16_t *w, float *ws) {
    __m512i v[4];
    __m512 s;
    cpu_q5_0_group((const uint8_t *)g, v, &s);
    for (int c = 0; c < 4; c++) _mm512_storeu_si512(w + 32 * c, v[c]);
    _mm512_storeu_ps(ws, s);
}

/// groupStep of RowKernels.swift on a Q5_0 group kept in registers: acc = fma(float(P), ws * xs, acc), P the exact
/// int32 lane sums of the group times activations `x` (vpmaddwd + 3 vpdpwssd; from Swift's lanes LLVM emits
/// vpmaddwd + vpaddd for Intel targets), `xs` the activations' expanded scales. Bit-identical to groupStep.
CPU_Q5_TARGET __attribute__((always_inline))
static inline __m512 cpu_q5_0_group_step(const uint8_t *p, const int16_t *x, const float *xs, __m512 acc) {
    __m512i w[4];
    __m512 ws;
    cpu_q5_0_group(p, w, &ws);
    __m512i P = _mm512_madd_epi16(w[0], _mm512_loadu_si512(x));
    P = _mm512_dpwssd_epi32(P, w[1], _mm512_loadu_si512(x + 32));
    P = _mm512_dpwssd_epi32(P, w[2], _mm512_loadu_si512(x + 64));
    P = _mm512_dpwssd_epi32(P, w[3], _mm512_loadu_si512(x + 96));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(P), _mm512_mul_ps(ws, _mm512_loadu_ps(xs)), acc);
}

/// One Q5_0 row of `ng` whole groups times one activation row (`xq`: 128 int16 per group, `xs`: 16 expanded scales
/// per group): kernel1's 16 accumulator lanes into `e`.
CPU_Q5_TARGET
static inline void cpu_dot_q5_0_row(const void *row, long ng, const int16_t *xq, const float *xs, float *e) {
    const uint8_t *p = (const uint8_t *)row;
    __m512 acc = _mm512_setzero_ps();
    for (long g = 0; g < ng; g++) {
        __builtin_prefetch(p + 88 * g + 2048, 0, 3);
        __builtin_prefetch(p + 88 * g + 2048 + 64, 0, 3);
        acc = cpu_q5_0_group_step(p + 88 * g, xq + 128 * g, xs + 16 * g, acc);
    }
    _mm512_storeu_ps(e, acc);
}

/// Four consecutive Q5_0 rows (`rowBytes` apart) as cpu_dot_q5_0_row, each reduced as RowAcc.result (h[i] = e[i] +
/// e[i + 8], q[i] = h[i] + h[i + 4], (q0 + q2) + (q1 + q3); Q5_0 has no min term), the four trees as shuffles across
/// the rows; y[0...3]. The four rows' bytes are prefetched `ahead` bytes on, spread over the group steps.
CPU_Q5_TARGET
static inline void cpu_dot_q5_0_rows4(const void *row, long rowBytes, long ng, const int16_t *xq, const float *xs, float *y,
                                      long ahead) {
    const uint8_t *p = (const uint8_t *)row, *pf = p + ahead;
    const long per = ((4 * rowBytes + 63) / 64 + ng - 1) / ng;  // cache lines prefetched per group step
    __m512 A = _mm512_setzero_ps(), B = A, C = A, D = A;
    for (long g = 0; g < ng; g++) {
        const uint8_t *pg = p + 88 * g;
        const int16_t *x = xq + 128 * g;
        const float *s = xs + 16 * g;
        for (long j = 0; j < per; j++) __builtin_prefetch(pf + 64 * j, 0, 3);
        pf += 64 * per;
        A = cpu_q5_0_group_step(pg, x, s, A);
        B = cpu_q5_0_group_step(pg + rowBytes, x, s, B);
        C = cpu_q5_0_group_step(pg + 2 * rowBytes, x, s, C);
        D = cpu_q5_0_group_step(pg + 3 * rowBytes, x, s, D);
    }
    __m512 X = _mm512_add_ps(_mm512_shuffle_f32x4(A, B, 0x44), _mm512_shuffle_f32x4(A, B, 0xEE));  // [hA | hB]
    __m512 Y = _mm512_add_ps(_mm512_shuffle_f32x4(C, D, 0x44), _mm512_shuffle_f32x4(C, D, 0xEE));  // [hC | hD]
    __m512 Z = _mm512_add_ps(_mm512_shuffle_f32x4(X, Y, 0x88), _mm512_shuffle_f32x4(X, Y, 0xDD));  // q per row
    __m512 W = _mm512_add_ps(Z, _mm512_permute_ps(Z, 0x4E));  // q0 + q2, q1 + q3
    __m512 V = _mm512_add_ps(W, _mm512_permute_ps(W, 0xB1));
    _mm_storeu_ps(y, _mm512_castps512_ps128(_mm512_maskz_compress_ps(0x1111, V)));
}
#undef CPU_Q5_TARGET
#endif

#endif
