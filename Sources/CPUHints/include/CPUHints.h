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
static inline void cpu_q5_0_group(const uint8_t *p, __m512 rs, __m512i w[4], __m512 *ws) {
    (void)rs;
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

/// The last two levels of RowAcc.result for four rows' 16-lane accumulators at once (h[i] = e[i] + e[i + 8],
/// q[i] = h[i] + h[i + 4], (q0 + q2) + (q1 + q3)), as shuffles across the rows; y[0...3].
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_reduce_rows4(__m512 A, __m512 B, __m512 C, __m512 D, float *y) {
    __m512 X = _mm512_add_ps(_mm512_shuffle_f32x4(A, B, 0x44), _mm512_shuffle_f32x4(A, B, 0xEE));  // [hA | hB]
    __m512 Y = _mm512_add_ps(_mm512_shuffle_f32x4(C, D, 0x44), _mm512_shuffle_f32x4(C, D, 0xEE));  // [hC | hD]
    __m512 Z = _mm512_add_ps(_mm512_shuffle_f32x4(X, Y, 0x88), _mm512_shuffle_f32x4(X, Y, 0xDD));  // q per row
    __m512 W = _mm512_add_ps(Z, _mm512_permute_ps(Z, 0x4E));  // q0 + q2, q1 + q3
    __m512 V = _mm512_add_ps(W, _mm512_permute_ps(W, 0xB1));
    _mm_storeu_ps(y, _mm512_castps512_ps128(_mm512_maskz_compress_ps(0x1111, V)));
}

/// groupStep of RowKernels.swift on a group in registers: acc = fma(float(P), ws * xs, acc), P the exact int32 lane
/// sums of the group times activations `x` (vpmaddwd + 3 vpdpwssd; from Swift's lanes LLVM emits vpmaddwd + vpaddd
/// for Intel targets), `xs` the activations' expanded scales. Bit-identical to groupStep.
CPU_Q5_TARGET __attribute__((always_inline))
static inline __m512 cpu_group_step(const __m512i w[4], __m512 ws, const int16_t *x, const float *xs, __m512 acc) {
    __m512i P = _mm512_madd_epi16(w[0], _mm512_loadu_si512(x));
    P = _mm512_dpwssd_epi32(P, w[1], _mm512_loadu_si512(x + 32));
    P = _mm512_dpwssd_epi32(P, w[2], _mm512_loadu_si512(x + 64));
    P = _mm512_dpwssd_epi32(P, w[3], _mm512_loadu_si512(x + 96));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(P), _mm512_mul_ps(ws, _mm512_loadu_ps(xs)), acc);
}

// Q8_0, Q4_0 and int4Channel groups the same way (VBMI byte permutes into chunk order). cpu_chunk_q8_0: elements
// 0 ..< 16 of the four 34-byte blocks of a 136-byte Q8_0 group (block m's quants at 34m + 2) as chunks 0 and 1;
// the same table over the window 16 bytes on gives elements 16 ..< 32 (chunks 2 and 3). cpu_chunk_q4_0: bytes
// 0 ..< 8, then 8 ..< 16 of the four 18-byte Q4_0 blocks (quants at 18m + 2), whose low nibbles are chunks 0, 1
// and high nibbles chunks 2, 3 (unpackNibbles4's order); cpu_chunk_nib: the same for int4Channel's bare 16-byte
// blocks. Scales: vpermt2w of the f16 words at block starts (Q8_0: words 0, 17, 34, 51; Q4_0: 0, 9, 18, 27).
static const uint8_t cpu_chunk_q8_0[64] = {
    2, 3, 4, 5, 6, 7, 8, 9, 36, 37, 38, 39, 40, 41, 42, 43, 70, 71, 72, 73, 74, 75, 76, 77, 104, 105, 106, 107, 108, 109, 110, 111,
    10, 11, 12, 13, 14, 15, 16, 17, 44, 45, 46, 47, 48, 49, 50, 51, 78, 79, 80, 81, 82, 83, 84, 85, 112, 113, 114, 115, 116, 117, 118, 119};
static const uint8_t cpu_chunk_q4_0[64] = {
    2, 3, 4, 5, 6, 7, 8, 9, 20, 21, 22, 23, 24, 25, 26, 27, 38, 39, 40, 41, 42, 43, 44, 45, 56, 57, 58, 59, 60, 61, 62, 63,
    10, 11, 12, 13, 14, 15, 16, 17, 28, 29, 30, 31, 32, 33, 34, 35, 46, 47, 48, 49, 50, 51, 52, 53, 64, 65, 66, 67, 68, 69, 70, 71};
static const uint8_t cpu_chunk_nib[64] = {
    0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23, 32, 33, 34, 35, 36, 37, 38, 39, 48, 49, 50, 51, 52, 53, 54, 55,
    8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31, 40, 41, 42, 43, 44, 45, 46, 47, 56, 57, 58, 59, 60, 61, 62, 63};
static const uint16_t cpu_d_q8_0[32] = {0, 0, 0, 0, 17, 17, 17, 17, 34, 34, 34, 34, 51, 51, 51, 51,
                                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
static const uint16_t cpu_d_q4_0[32] = {0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27,
                                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

/// A whole Q8_0 group at `p` (136 bytes; no byte past it is read): the int16 chunk vectors and expanded scales,
/// exactly unpackGroupQ8_0's.
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_q8_0_group(const uint8_t *p, __m512 rs, __m512i w[4], __m512 *ws) {
    (void)rs;
    const __m512i t = _mm512_loadu_si512(cpu_chunk_q8_0);
    __m512i a0 = _mm512_loadu_si512(p), a1 = _mm512_loadu_si512(p + 64);
    __m512i lo = _mm512_permutex2var_epi8(a0, t, a1);
    __m512i hi = _mm512_permutex2var_epi8(_mm512_loadu_si512(p + 16), t, _mm512_maskz_loadu_epi8(0x00FFFFFFFFFFFFFFull, p + 80));
    w[0] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(lo));
    w[1] = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(lo, 1));
    w[2] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(hi));
    w[3] = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(hi, 1));
    *ws = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(a0, _mm512_loadu_si512(cpu_d_q8_0), a1)));
}

/// Chunk-ordered nibble bytes `q` (cpu_chunk_q4_0 / cpu_chunk_nib) as the four int16 chunk vectors of q - 8.
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_nibbles_widen(__m512i q, __m512i w[4]) {
    const __m512i m15 = _mm512_set1_epi8(15), s8 = _mm512_set1_epi8(8);
    __m512i lo = _mm512_sub_epi8(_mm512_and_si512(q, m15), s8);
    __m512i hi = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(q, 4), m15), s8);
    w[0] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(lo));
    w[1] = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(lo, 1));
    w[2] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(hi));
    w[3] = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(hi, 1));
}

/// A whole Q4_0 group at `p` (72 bytes; the second load masked to its last 8), exactly unpackGroupQ4_0's values.
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_q4_0_group(const uint8_t *p, __m512 rs, __m512i w[4], __m512 *ws) {
    (void)rs;
    __m512i a = _mm512_loadu_si512(p), b = _mm512_maskz_loadu_epi8(0xFFull, p + 64);
    cpu_nibbles_widen(_mm512_permutex2var_epi8(a, _mm512_loadu_si512(cpu_chunk_q4_0), b), w);
    *ws = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(a, _mm512_loadu_si512(cpu_d_q4_0), b)));
}

/// A whole int4Channel group at `p` (64 bytes of nibbles), every scale the row's `rs` (1 / its scale).
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_nib_group(const uint8_t *p, __m512 rs, __m512i w[4], __m512 *ws) {
    cpu_nibbles_widen(_mm512_permutexvar_epi8(_mm512_loadu_si512(cpu_chunk_nib), _mm512_loadu_si512(p)), w);
    *ws = rs;
}

// The row kernels' row scale vector (RS): none, or int4Channel's.
#define CPU_NO_ROW_SCALE(r) _mm512_setzero_ps()
/// int4Channel: the row's f32 scale s at its start, every block's scale 1 / s (one f32 division, as unpackInt4Channel).
#define CPU_NIB_ROW_SCALE(r) _mm512_set1_ps(1.0f / *(const float *)(r))

// The K formats' super-blocks (256 weights = 2 groups) in registers, the values unpackQ4_K / unpackQ6_K store.
// Q4_K group G (sub-blocks 4G ..< 4G + 4): its 64 quant bytes q; sub-block 2i is the low nibbles of q[32i ..< +32],
// 2i + 1 the high ones. One vpermb puts, for chunks 0 and 1 (cpu_chunk_q4_K; + 16 for chunks 2 and 3), lane 8m + j
// = byte 32(m / 2) + 8c + j; a byte blend takes the high nibble where m is odd. Scales and mins: the 12 bytes of
// 6-bit values rearranged by two vpshufb into [sc0..7, m0..7] (kScaleMinQ4K's arithmetic as byte masks), times
// [d x8, dmin x8] in f32. Q6_K group c (elements 128c ..< +128; block t of 32 = (ql[64c + 32(t & 1) + l] nibble
// t / 2) | (qh[32c + l] bits 2t, 2t + 1) << 4, minus 32): the nibbles by vpermb + blend as Q4_K's
// (cpu_chunk_q6_K_ql), the two high bits by vpermb of qh (cpu_chunk_q6_K_qh) then vpmultishiftqb, which moves bits
// 2m, 2m + 1 of each lane's byte to bits 4, 5 (cpu_shift_q6_K); times the int8 scale of each 16 (vpmullw), the scale
// of the whole super-block d.
static const uint8_t cpu_chunk_q4_K[64] = {
    0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 32, 33, 34, 35, 36, 37, 38, 39, 32, 33, 34, 35, 36, 37, 38, 39,
    8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15, 40, 41, 42, 43, 44, 45, 46, 47, 40, 41, 42, 43, 44, 45, 46, 47};
static const uint8_t cpu_chunk_q6_K_ql[64] = {
    0, 1, 2, 3, 4, 5, 6, 7, 32, 33, 34, 35, 36, 37, 38, 39, 0, 1, 2, 3, 4, 5, 6, 7, 32, 33, 34, 35, 36, 37, 38, 39,
    8, 9, 10, 11, 12, 13, 14, 15, 40, 41, 42, 43, 44, 45, 46, 47, 8, 9, 10, 11, 12, 13, 14, 15, 40, 41, 42, 43, 44, 45, 46, 47};
static const uint8_t cpu_chunk_q6_K_qh[64] = {
    0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7,
    8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t cpu_shift_q6_K[64] = {
    60, 4, 12, 20, 28, 36, 44, 52, 62, 6, 14, 22, 30, 38, 46, 54, 0, 8, 16, 24, 32, 40, 48, 56, 2, 10, 18, 26, 34, 42, 50, 58,
    60, 4, 12, 20, 28, 36, 44, 52, 62, 6, 14, 22, 30, 38, 46, 54, 0, 8, 16, 24, 32, 40, 48, 56, 2, 10, 18, 26, 34, 42, 50, 58};
/// Q6_K's scale bytes per lane of group c's chunks: [sc[8c + 2m] per lane 8m + j (chunks 0, 1) | sc[8c + 2m + 1]].
static const uint8_t cpu_scale_q6_K[64] = {
    0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6,
    1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7};

/// 64 bytes of chunk-ordered nibble sources `u`: the low nibble, or the high one in the lanes of `high`.
CPU_Q5_TARGET __attribute__((always_inline))
static inline __m512i cpu_nibble_pick(__m512i u, __mmask64 high) {
    const __m512i m15 = _mm512_set1_epi8(15);
    return _mm512_mask_blend_epi8(high, _mm512_and_si512(u, m15), _mm512_and_si512(_mm512_srli_epi16(u, 4), m15));
}

/// Q4_K super-block `b`'s scales: ws0 / ws1 its two groups' expanded scales (d * sc), mins its 8 dmin * m.
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_q4_K_scales(const uint8_t *b, __m512 *ws0, __m512 *ws1, __m256 *mins) {
    const __m128i s = _mm_loadu_si128((const __m128i *)(b + 4));  // the 12 scale bytes (and 4 quant bytes)
    const __m128i A = _mm_shuffle_epi8(s, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i B = _mm_shuffle_epi8(s, _mm_setr_epi8(0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 4, 5, 6, 7));
    const __m128i m15 = _mm_set1_epi8(15);
    const __m128i hi2 = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(B, 6), _mm_set1_epi8(3)), 4);
    __m128i r = _mm_and_si128(A, _mm_set1_epi8(63));                                         // sc0..3, m0..3
    r = _mm_mask_blend_epi8(0x00F0, r, _mm_or_si128(_mm_and_si128(A, m15), hi2));                 // sc4..7
    r = _mm_mask_blend_epi8(0xF000, r, _mm_or_si128(_mm_and_si128(_mm_srli_epi16(A, 4), m15), hi2));  // m4..7
    const float d = _cvtsh_ss(*(const uint16_t *)b), dmin = _cvtsh_ss(*(const uint16_t *)(b + 2));
    const __m512 F = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(r)),
                                   _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(d), _mm512_set1_ps(dmin)));
    *ws0 = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), F);
    *ws1 = _mm512_permutexvar_ps(_mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7), F);
    *mins = _mm512_extractf32x8_ps(F, 1);
}

/// Q4_K super-block `b` (144 bytes): w[0...7] its two groups' chunk vectors, ws0 / ws1 their expanded scales
/// (d * sc), mins its 8 dmin * m.
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_q4_K_sb(const uint8_t *b, __m512i w[8], __m512 *ws0, __m512 *ws1, __m256 *mins) {
    cpu_q4_K_scales(b, ws0, ws1, mins);
    const __m512i t01 = _mm512_loadu_si512(cpu_chunk_q4_K), t23 = _mm512_add_epi8(t01, _mm512_set1_epi8(16));
    for (int G = 0; G < 2; G++) {
        const __m512i q = _mm512_loadu_si512(b + 16 + 64 * G);
        const __m512i v01 = cpu_nibble_pick(_mm512_permutexvar_epi8(t01, q), 0xFF00FF00FF00FF00ull);
        const __m512i v23 = cpu_nibble_pick(_mm512_permutexvar_epi8(t23, q), 0xFF00FF00FF00FF00ull);
        w[4 * G + 0] = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(v01));
        w[4 * G + 1] = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(v01, 1));
        w[4 * G + 2] = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(v23));
        w[4 * G + 3] = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(v23, 1));
    }
}

/// Q6_K super-block `b` (210 bytes): w[0...7] its two groups' chunk vectors ((q - 32) * scale), ws its d.
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_q6_K_sb(const uint8_t *b, __m512i w[8], __m512 *ws) {
    const __m512i tl = _mm512_loadu_si512(cpu_chunk_q6_K_ql), th = _mm512_loadu_si512(cpu_chunk_q6_K_qh);
    const __m512i shift = _mm512_loadu_si512(cpu_shift_q6_K), s16 = _mm512_set1_epi8(16);
    const __m512i sc = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(b + 192)));
    for (int c = 0; c < 2; c++) {
        const __m512i ql = _mm512_loadu_si512(b + 64 * c);
        const __m512i qh = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * c)));
        const __m512i S = _mm512_permutexvar_epi8(_mm512_add_epi8(_mm512_loadu_si512(cpu_scale_q6_K), _mm512_set1_epi8(8 * c)), sc);
        for (int h = 0; h < 2; h++) {
            const __m512i add = h ? s16 : _mm512_setzero_si512();
            const __m512i nib = cpu_nibble_pick(_mm512_permutexvar_epi8(_mm512_add_epi8(tl, add), ql), 0xFFFF0000FFFF0000ull);
            const __m512i hb = _mm512_and_si512(_mm512_multishift_epi64_epi8(shift, _mm512_permutexvar_epi8(_mm512_add_epi8(th, add), qh)),
                                                _mm512_set1_epi8(0x30));
            const __m512i q = _mm512_sub_epi8(_mm512_or_si512(nib, hb), _mm512_set1_epi8(32));
            const __m512i sw = _mm512_cvtepi8_epi16(h ? _mm512_extracti64x4_epi64(S, 1) : _mm512_castsi512_si256(S));
            w[4 * c + 2 * h] = _mm512_mullo_epi16(_mm512_cvtepi8_epi16(_mm512_castsi512_si256(q)), sw);
            w[4 * c + 2 * h + 1] = _mm512_mullo_epi16(_mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(q, 1)), sw);
        }
    }
    *ws = _mm512_set1_ps(_cvtsh_ss(*(const uint16_t *)(b + 208)));
}

/// One Q6_K super-block times one activation row (x: its 256 int16, xs: 32 scales): kernel1's two group steps (`ds`
/// and `m`, the min term's, are unused: the K row kernels' shared signature).
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_q6_K_step(const uint8_t *b, const int16_t *x, const float *xs, const float *ds, __m512 *acc, __m256 *m) {
    (void)ds; (void)m;
    __m512i w[8];
    __m512 ws;
    cpu_q6_K_sb(b, w, &ws);
    *acc = cpu_group_step(w, ws, x, xs, *acc);
    *acc = cpu_group_step(w + 4, ws, x + 128, xs + 16, *acc);
}

/// RowAcc.minTerm of an 8-lane min accumulator: ((m0 + m4) + (m2 + m6)) + ((m1 + m5) + (m3 + m7)).
CPU_Q5_TARGET __attribute__((always_inline))
static inline float cpu_min_term(__m256 m) {
    float v[8];
    _mm256_storeu_ps(v, m);
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

// One row (kernel1's 16 accumulator lanes into e, the min lanes into mn) and four consecutive rows (RowAcc.result
// into y[0...3]) of `nsb` super-blocks of SB bytes, by STEP over activations of type XT, XS of them a super-block:
// Q6_K on int16 activations here, Q4_K on split ones below.
#define CPU_K_ROW_KERNELS(TARGET, NAME, STEP, SB, XT, XS)                                                              \
    TARGET static inline void NAME##_row(const void *row, long nsb, const XT *xq, const float *xs, const float *ds,    \
                                         float *e, float *mn, long ahead) {                                            \
        const uint8_t *p = (const uint8_t *)row;                                                                       \
        __m512 acc = _mm512_setzero_ps();                                                                              \
        __m256 m = _mm256_setzero_ps();                                                                                \
        for (long k = 0; k < nsb; k++) {                                                                               \
            for (long j = 0; j < (SB + 63) / 64; j++) __builtin_prefetch(p + SB * k + ahead + 64 * j, 0, 3);           \
            STEP(p + SB * k, xq + XS * k, xs + 32 * k, ds + 8 * k, &acc, &m);                                          \
        }                                                                                                              \
        _mm512_storeu_ps(e, acc);                                                                                      \
        _mm256_storeu_ps(mn, m);                                                                                       \
    }                                                                                                                  \
    TARGET static inline void NAME##_rows4(const void *row, long rowBytes, long nsb, const XT *xq, const float *xs,    \
                                           const float *ds, float *y, long ahead) {                                    \
        const uint8_t *p = (const uint8_t *)row, *pf = p + ahead;                                                      \
        const long per = ((4 * rowBytes + 63) / 64 + nsb - 1) / nsb;                                                   \
        __m512 A = _mm512_setzero_ps(), B = A, C = A, D = A;                                                           \
        __m256 mA = _mm256_setzero_ps(), mB = mA, mC = mA, mD = mA;                                                    \
        for (long k = 0; k < nsb; k++) {                                                                               \
            const uint8_t *pk = p + SB * k;                                                                            \
            for (long j = 0; j < per; j++) __builtin_prefetch(pf + 64 * j, 0, 3);                                      \
            pf += 64 * per;                                                                                            \
            STEP(pk, xq + XS * k, xs + 32 * k, ds + 8 * k, &A, &mA);                                                   \
            STEP(pk + rowBytes, xq + XS * k, xs + 32 * k, ds + 8 * k, &B, &mB);                                        \
            STEP(pk + 2 * rowBytes, xq + XS * k, xs + 32 * k, ds + 8 * k, &C, &mC);                                    \
            STEP(pk + 3 * rowBytes, xq + XS * k, xs + 32 * k, ds + 8 * k, &D, &mD);                                    \
        }                                                                                                              \
        float t[4];                                                                                                    \
        cpu_reduce_rows4(A, B, C, D, t);                                                                               \
        y[0] = t[0] - cpu_min_term(mA);                                                                                \
        y[1] = t[1] - cpu_min_term(mB);                                                                                \
        y[2] = t[2] - cpu_min_term(mC);                                                                                \
        y[3] = t[3] - cpu_min_term(mD);                                                                                \
    }
CPU_K_ROW_KERNELS(CPU_Q5_TARGET, cpu_dot_q6_K, cpu_q6_K_step, 210, int16_t, 256)

// The same products with VNNI's byte dot product (vpdpbusd: four unsigned times signed bytes summed into each Int32
// lane), which needs no widening of the weights to int16: each int16 activation x = 256 h + l (h = x >> 8 signed,
// l = x & 255 unsigned) is split once per product (cpu_split_activations), and sum w x = 256 sum w h + sum w l
// with the weights as unsigned bytes against h and as signed bytes (0 ..< 32 fit) against l. The weights are the
// unsigned codes (nibble, or Q5_0's nibble | high bit << 4); their offset comes off through the activations' lane
// sums (offsetSums: sum (q - 8) x = sum q x - 8 sum x). Every Int32 lane sums the same eight products as
// cpu_group_step's lane (lane 4m + k: elements 2k, 2k + 1, 8 + 2k, 9 + 2k of block m from the "low" vector and
// those + 16 from the "high" one), so the integers, and all that follows, are identical.
//
// Q8_0's signed codes w go against h as w + 128 (w ^ 0x80), less 128 times the lane's sum of h.
//
// Per group of an activation row, 448 bytes: h and l of the low vector's elements, h and l of the high vector's
// (byte 4L + j of either: Int32 lane L's j-th element), then -offsetSums, -2 offsetSums and -128 times the lane's
// sum of h (16 Int32 each).
#define CPU_VB_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512vnni,avx512bitalg,f16c")))
enum { cpu_split_group_bytes = 448 };

/// QuantizedActivations.quantize for one row of `cols` floats (a multiple of 32) padded to `pc` (a multiple of 128),
/// with the same operations: per block of 32 the largest magnitude as the maximum of the sign-cleared bit patterns,
/// d = that / 32767, each value times 1 / d rounded half away from zero (truncate, then step away where the
/// remainder is at least one half), its integer read from the low bits of r + 1.5 * 2^23; stored chunk-interleaved,
/// with the block's scale, scale * sum, its four expanded scales and 8 * its four Int32 lanes' sums.
CPU_VB_TARGET
static inline void cpu_quantize_row(const float *x, long cols, long pc, int16_t *q, float *scales, float *scaledSums,
                                    float *expanded, int32_t *offsetSums) {
    const __m512i mag = _mm512_set1_epi32(0x7fffffff), bias = _mm512_set1_epi32(0x4B400000);
    const __m512 half = _mm512_set1_ps(0.5f), magic = _mm512_set1_ps(12582912.0f);
    const __m512i pairs = _mm512_setr_epi32(0, 2, 4, 6, 16, 18, 20, 22, 0, 0, 0, 0, 0, 0, 0, 0);
    for (long b = 0; b < pc / 32; b++) {
        int16_t *o = q + (b >> 2) * 128 + (b & 3) * 8;
        if (32 * b >= cols) {
            for (int c = 0; c < 4; c++) _mm_storeu_si128((__m128i *)(o + 32 * c), _mm_setzero_si128());
            scales[b] = 0;
            scaledSums[b] = 0;
            for (int k = 0; k < 4; k++) { expanded[4 * b + k] = 0; offsetSums[4 * b + k] = 0; }
            continue;
        }
        const __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
        const unsigned bits = _mm512_reduce_max_epu32(_mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(x0), mag),
                                                                        _mm512_and_si512(_mm512_castps_si512(x1), mag)));
        float m;
        __builtin_memcpy(&m, &bits, 4);
        const float d = m / 32767, id = d == 0 ? 0 : 1 / d;
        __m512i v[2];
        for (int h = 0; h < 2; h++) {
            const __m512 r = _mm512_mul_ps(h ? x1 : x0, _mm512_set1_ps(id));
            __m512 t = _mm512_roundscale_ps(r, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __mmask16 away = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(r, t)), half, _CMP_GE_OQ);
            const __m512 step = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(r, _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u))));
            t = _mm512_mask_add_ps(t, away, t, step);
            v[h] = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(t, magic)), bias);
            const __m256i w = _mm512_cvtepi32_epi16(v[h]);  // elements 16h ..< 16h + 16: chunks 2h, 2h + 1
            _mm_storeu_si128((__m128i *)(o + 64 * h), _mm256_castsi256_si128(w));
            _mm_storeu_si128((__m128i *)(o + 64 * h + 32), _mm256_extracti128_si256(w, 1));
        }
        // Lane i of the block: elements 8c + 2i, 8c + 2i + 1 of its chunks c.
        const __m512i S = _mm512_add_epi32(v[0], v[1]);                                   // j: chunk 0 + 2 (j < 8), 1 + 3
        const __m512i T = _mm512_add_epi32(S, _mm512_shuffle_i64x2(S, S, 0x4E));          // j < 8: all four chunks
        const __m512i L = _mm512_add_epi32(T, _mm512_srli_epi64(T, 32));                  // even j: elements j, j + 1
        const __m128i lane = _mm512_castsi512_si128(_mm512_permutexvar_epi32(pairs, L));
        _mm_storeu_si128((__m128i *)(offsetSums + 4 * b), _mm_slli_epi32(lane, 3));
        const int s = _mm_extract_epi32(lane, 0) + _mm_extract_epi32(lane, 1) + _mm_extract_epi32(lane, 2) + _mm_extract_epi32(lane, 3);
        scales[b] = d;
        scaledSums[b] = d * (float)s;
        _mm_storeu_ps(expanded + 4 * b, _mm_set1_ps(d));
    }
}

/// `ng` groups of an activation row (`q` chunk-interleaved int16, `os` its offsetSums) into the split form at `out`.
CPU_VB_TARGET
static inline void cpu_split_activations(const int16_t *q, const int32_t *os, long ng, uint8_t *out) {
    const __m512i iA = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i iB = _mm512_add_epi32(iA, _mm512_set1_epi32(8));
    for (long g = 0; g < ng; g++) {
        const int16_t *x = q + 128 * g;
        uint8_t *o = out + cpu_split_group_bytes * g;
        for (int v = 0; v < 2; v++) {  // chunks 0, 1 (the low vector's elements), then 2, 3
            const __m512i c0 = _mm512_loadu_si512(x + 64 * v), c1 = _mm512_loadu_si512(x + 64 * v + 32);
            const __m512i A = _mm512_permutex2var_epi32(c0, iA, c1), B = _mm512_permutex2var_epi32(c0, iB, c1);
            const __m512i h = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi16_epi8(_mm512_srai_epi16(A, 8))),
                                                 _mm512_cvtepi16_epi8(_mm512_srai_epi16(B, 8)), 1);
            const __m512i l = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi16_epi8(A)), _mm512_cvtepi16_epi8(B), 1);
            _mm512_storeu_si512(o + 128 * v, h);
            _mm512_storeu_si512(o + 128 * v + 64, l);
        }
        const __m512i n = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(os + 16 * g));
        _mm512_storeu_si512(o + 256, n);
        _mm512_storeu_si512(o + 320, _mm512_add_epi32(n, n));
        const __m512i one = _mm512_set1_epi8(1);
        const __m512i sh = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), one, _mm512_loadu_si512(o)), one,
                                               _mm512_loadu_si512(o + 128));
        _mm512_storeu_si512(o + 384, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sh, 7)));
    }
}

/// cpu_group_step on byte weights: `lo` / `hi` the codes of the low / high vector; the offset term at byte `init` of
/// the group's activations (256 or 320; none if negative), or for Q8_0's signed codes (`q8`: against h as w ^ 0x80)
/// the -128 sum h at 384.
CPU_VB_TARGET __attribute__((always_inline))
static inline __m512 cpu_byte_step(__m512i lo, __m512i hi, int init, int q8, __m512 ws, const uint8_t *xb, const float *xs, __m512 acc) {
    const __m512i flip = _mm512_set1_epi8(q8 ? (char)0x80 : 0), zero = _mm512_setzero_si512();
    __m512i ph = _mm512_dpbusd_epi32(q8 ? _mm512_loadu_si512(xb + 384) : zero, _mm512_xor_si512(lo, flip), _mm512_loadu_si512(xb));
    ph = _mm512_dpbusd_epi32(ph, _mm512_xor_si512(hi, flip), _mm512_loadu_si512(xb + 128));
    __m512i pl = _mm512_dpbusd_epi32(q8 || init < 0 ? zero : _mm512_loadu_si512(xb + init), _mm512_loadu_si512(xb + 64), lo);
    pl = _mm512_dpbusd_epi32(pl, _mm512_loadu_si512(xb + 192), hi);
    const __m512i P = _mm512_add_epi32(pl, _mm512_slli_epi32(ph, 8));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(P), _mm512_mul_ps(ws, _mm512_loadu_ps(xs)), acc);
}

// Byte positions: lane 4m + k, byte j of the low vector takes element {2k, 2k + 1, 8 + 2k, 9 + 2k}[j] of block m
// (cpu_v_bit), which is the low nibble of quant byte cpu_v_bit (its high nibble: element + 16) for Q4_0, Q5_0 and
// int4Channel; the tables add each block's quant offset. Q4_K: sub-block m of a group is the low (m even) or high
// nibbles of quant bytes 32 (m / 2) ..< + 32, picked from q or q >> 4 (index + 64) by a two-source permute.
static const uint8_t cpu_v_bit[64] = {
    0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,
    0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15};
static const uint8_t cpu_v_q5_0_qs[64] = {
    6, 7, 14, 15, 8, 9, 16, 17, 10, 11, 18, 19, 12, 13, 20, 21, 28, 29, 36, 37, 30, 31, 38, 39, 32, 33, 40, 41, 34, 35, 42, 43,
    50, 51, 58, 59, 52, 53, 60, 61, 54, 55, 62, 63, 56, 57, 64, 65, 72, 73, 80, 81, 74, 75, 82, 83, 76, 77, 84, 85, 78, 79, 86, 87};
/// Q5_0: quadword i holds block i / 2's 32 high bits (qh at 22m + 2), for vpshufbitqmb with cpu_v_bit (+ 16).
static const uint8_t cpu_v_q5_0_qh[64] = {
    2, 3, 4, 5, 2, 3, 4, 5, 2, 3, 4, 5, 2, 3, 4, 5, 24, 25, 26, 27, 24, 25, 26, 27, 24, 25, 26, 27, 24, 25, 26, 27,
    46, 47, 48, 49, 46, 47, 48, 49, 46, 47, 48, 49, 46, 47, 48, 49, 68, 69, 70, 71, 68, 69, 70, 71, 68, 69, 70, 71, 68, 69, 70, 71};
static const uint8_t cpu_v_q4_0[64] = {
    2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 8, 9, 16, 17, 20, 21, 28, 29, 22, 23, 30, 31, 24, 25, 32, 33, 26, 27, 34, 35,
    38, 39, 46, 47, 40, 41, 48, 49, 42, 43, 50, 51, 44, 45, 52, 53, 56, 57, 64, 65, 58, 59, 66, 67, 60, 61, 68, 69, 62, 63, 70, 71};
static const uint8_t cpu_v_nib[64] = {
    0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 16, 17, 24, 25, 18, 19, 26, 27, 20, 21, 28, 29, 22, 23, 30, 31,
    32, 33, 40, 41, 34, 35, 42, 43, 36, 37, 44, 45, 38, 39, 46, 47, 48, 49, 56, 57, 50, 51, 58, 59, 52, 53, 60, 61, 54, 55, 62, 63};
static const uint8_t cpu_v_q4_K[64] = {
    0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 64, 65, 72, 73, 66, 67, 74, 75, 68, 69, 76, 77, 70, 71, 78, 79,
    32, 33, 40, 41, 34, 35, 42, 43, 36, 37, 44, 45, 38, 39, 46, 47, 96, 97, 104, 105, 98, 99, 106, 107, 100, 101, 108, 109, 102, 103, 110, 111};

/// Nibble bytes `q` in byte order: the low vector's codes (low nibbles) and the high vector's (high nibbles).
CPU_VB_TARGET __attribute__((always_inline))
static inline void cpu_nibbles_split(__m512i q, __m512i *lo, __m512i *hi) {
    const __m512i m15 = _mm512_set1_epi8(15);
    *lo = _mm512_and_si512(q, m15);
    *hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m15);
}

/// A whole Q5_0 group (88 bytes; the second load masked to its last 24) as codes (nibble | high bit << 4).
CPU_VB_TARGET __attribute__((always_inline))
static inline void cpu_v_q5_0_group(const uint8_t *p, __m512 rs, __m512i *lo, __m512i *hi, __m512 *ws) {
    (void)rs;
    const __m512i s16 = _mm512_set1_epi8(16), m15 = _mm512_set1_epi8(15), bit = _mm512_loadu_si512(cpu_v_bit);
    const __m512i a = _mm512_loadu_si512(p), b = _mm512_maskz_loadu_epi8(0xFFFFFFull, p + 64);
    const __m512i q = _mm512_permutex2var_epi8(a, _mm512_loadu_si512(cpu_v_q5_0_qs), b);
    const __m512i qh = _mm512_permutex2var_epi8(a, _mm512_loadu_si512(cpu_v_q5_0_qh), b);
    // (nibble & 15) | (16 where the bit is set) in one vpternlogd each (0xEA: (A & B) | C).
    *lo = _mm512_ternarylogic_epi32(q, m15, _mm512_maskz_mov_epi8(_mm512_bitshuffle_epi64_mask(qh, bit), s16), 0xEA);
    *hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(q, 4), m15,
                                    _mm512_maskz_mov_epi8(_mm512_bitshuffle_epi64_mask(qh, _mm512_add_epi8(bit, s16)), s16), 0xEA);
    *ws = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(a, _mm512_loadu_si512(cpu_q5_0_d), b)));
}

// Q5_0 in lane order (IntegerLayout.q5_0Lanes; cpu_q5_0_lanes writes it at load): a group's 88 bytes are its 64
// quant bytes already in the byte kernels' order (byte i: quant byte cpu_v_bit[i] of block i / 16, as
// cpu_v_q5_0_qs picks them), the high bits of the low vector's 64 elements and of the high vector's as two 64-bit
// masks (bit i: element cpu_v_bit[i], resp. + 16, of block i / 16), then the four blocks' f16 scales. No permute
// is left in the decode step: the masks load straight into mask registers.
static const uint16_t cpu_q5l_d[32] = {28, 28, 28, 28, 29, 29, 29, 29, 30, 30, 30, 30, 31, 31, 31, 31,
                                       28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28};

/// One file-order Q5_0 group (4 blocks, 88 bytes) into lane order (any CPU).
static inline void cpu_q5_0_lanes(const uint8_t *src, uint8_t *dst) {
    const uint8_t *bit = cpu_v_bit;  // its first 16 entries: lane order's element of each of a block's bytes
    uint64_t kl = 0, kh = 0;
    for (int i = 0; i < 64; i++) {
        const uint8_t *b = src + 22 * (i / 16);
        const int e = bit[i % 16];
        const uint32_t qh = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24;
        dst[i] = b[6 + e];
        kl |= (uint64_t)((qh >> e) & 1) << i;
        kh |= (uint64_t)((qh >> (e + 16)) & 1) << i;
    }
    for (int j = 0; j < 8; j++) { dst[64 + j] = (uint8_t)(kl >> (8 * j)); dst[72 + j] = (uint8_t)(kh >> (8 * j)); }
    for (int m = 0; m < 4; m++) { dst[80 + 2 * m] = src[22 * m]; dst[81 + 2 * m] = src[22 * m + 1]; }
}

/// The inverse of cpu_q5_0_lanes (any CPU).
static inline void cpu_q5_0_from_lanes(const uint8_t *src, uint8_t *dst) {
    const uint8_t *bit = cpu_v_bit;  // its first 16 entries: lane order's element of each of a block's bytes
    uint64_t kl = 0, kh = 0;
    for (int j = 7; j >= 0; j--) { kl = kl << 8 | src[64 + j]; kh = kh << 8 | src[72 + j]; }
    for (int m = 0; m < 4; m++) {
        uint8_t *b = dst + 22 * m;
        uint32_t qh = 0;
        for (int k = 0; k < 16; k++) {
            const int i = 16 * m + k, e = bit[k];
            b[6 + e] = src[i];
            qh |= (uint32_t)((kl >> i) & 1) << e | (uint32_t)((kh >> i) & 1) << (e + 16);
        }
        b[0] = src[80 + 2 * m];
        b[1] = src[81 + 2 * m];
        for (int j = 0; j < 4; j++) b[2 + j] = (uint8_t)(qh >> (8 * j));
    }
}

/// A whole lane-order Q5_0 group as codes (nibble | high bit << 4): one load of the quants, the high bits as masks.
CPU_VB_TARGET __attribute__((always_inline))
static inline void cpu_v_q5l_group(const uint8_t *p, __m512 rs, __m512i *lo, __m512i *hi, __m512 *ws) {
    (void)rs;
    const __m512i s16 = _mm512_set1_epi8(16), m15 = _mm512_set1_epi8(15);
    const __m512i q = _mm512_loadu_si512(p);
    const __mmask64 kl = _load_mask64((__mmask64 *)(p + 64)), kh = _load_mask64((__mmask64 *)(p + 72));
    *lo = _mm512_ternarylogic_epi32(q, m15, _mm512_maskz_mov_epi8(kl, s16), 0xEA);
    *hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(q, 4), m15, _mm512_maskz_mov_epi8(kh, s16), 0xEA);
    *ws = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(_mm512_loadu_si512(cpu_q5l_d),
                                                                          _mm512_loadu_si512(p + 24))));
}

/// A lane-order Q5_0 group as q - 16 in the int16 chunk vectors and expanded scales (cpu_q5_0_group's values): lane
/// order's even words are chunk 0's (resp. 2's) element pairs and its odd words chunk 1's (3's), so one vpermb per
/// vector puts them in two halves to widen.
static const uint8_t cpu_q5l_chunks[64] = {
    0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29, 32, 33, 36, 37, 40, 41, 44, 45, 48, 49, 52, 53, 56, 57, 60, 61,
    2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31, 34, 35, 38, 39, 42, 43, 46, 47, 50, 51, 54, 55, 58, 59, 62, 63};
CPU_VB_TARGET __attribute__((always_inline))
static inline void cpu_q5l_group(const uint8_t *p, __m512 rs, __m512i w[4], __m512 *ws) {
    __m512i lo, hi;
    cpu_v_q5l_group(p, rs, &lo, &hi, ws);
    const __m512i s16 = _mm512_set1_epi8(16), t = _mm512_loadu_si512(cpu_q5l_chunks);
    lo = _mm512_permutexvar_epi8(t, _mm512_sub_epi8(lo, s16));
    hi = _mm512_permutexvar_epi8(t, _mm512_sub_epi8(hi, s16));
    w[0] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(lo));
    w[1] = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(lo, 1));
    w[2] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(hi));
    w[3] = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(hi, 1));
}

/// One lane-order Q5_0 group into the row kernels' scratch (`w`: 128 int16, `ws`: 16 scales), as cpu_unpack_q5_0_group.
CPU_VB_TARGET
static inline void cpu_unpack_q5l_group(const void *g, int16_t *w, float *ws) {
    __m512i v[4];
    __m512 s;
    cpu_q5l_group((const uint8_t *)g, _mm512_setzero_ps(), v, &s);
    for (int c = 0; c < 4; c++) _mm512_storeu_si512(w + 32 * c, v[c]);
    _mm512_storeu_ps(ws, s);
}

/// Block m of a lane-order Q5_0 group as q - 16 in element order (32 int16 at `dst`, the prompt GEMM's panel
/// unpacking); returns its scale. Element e < 16 is the low vector's byte 16 m + (the inverse of cpu_v_bit)[e], and
/// e + 16 the high vector's.
static const uint8_t cpu_q5l_block[32] = {0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                          64, 65, 68, 69, 72, 73, 76, 77, 66, 67, 70, 71, 74, 75, 78, 79};
CPU_VB_TARGET
static inline float cpu_panel_q5l_block(const void *group, long m, int16_t *dst) {
    const uint8_t *p = (const uint8_t *)group;
    __m512i lo, hi;
    __m512 ws;
    cpu_v_q5l_group(p, _mm512_setzero_ps(), &lo, &hi, &ws);
    const __m512i s16 = _mm512_set1_epi8(16);
    const __m256i t = _mm256_add_epi8(_mm256_loadu_si256((const __m256i *)cpu_q5l_block), _mm256_set1_epi8((char)(16 * m)));
    const __m512i v = _mm512_permutex2var_epi8(_mm512_sub_epi8(lo, s16), _mm512_castsi256_si512(t), _mm512_sub_epi8(hi, s16));
    _mm512_storeu_si512(dst, _mm512_cvtepi8_epi16(_mm512_castsi512_si256(v)));
    uint16_t d;
    __builtin_memcpy(&d, p + 80 + 2 * m, 2);
    return _cvtsh_ss(d);
}

// Q8_0 in lane order (IntegerLayout.q8_0Lanes; cpu_q8_0_lanes at load): a group's 136 bytes are the low vector's 64
// quants in the byte kernels' order (byte i: element cpu_v_bit[i] of block i / 16), the high vector's (+ 16), then
// the four f16 scales: two plain loads a group instead of four loads and two two-source permutes.

/// One file-order Q8_0 group (4 blocks, 136 bytes) into lane order (any CPU).
static inline void cpu_q8_0_lanes(const uint8_t *src, uint8_t *dst) {
    const uint8_t *bit = cpu_v_bit;  // its first 16 entries: lane order's element of each of a block's bytes
    for (int i = 0; i < 64; i++) {
        const uint8_t *q = src + 34 * (i / 16) + 2;
        dst[i] = q[bit[i % 16]];
        dst[64 + i] = q[16 + bit[i % 16]];
    }
    for (int m = 0; m < 4; m++) { dst[128 + 2 * m] = src[34 * m]; dst[129 + 2 * m] = src[34 * m + 1]; }
}

/// The inverse of cpu_q8_0_lanes (any CPU).
static inline void cpu_q8_0_from_lanes(const uint8_t *src, uint8_t *dst) {
    const uint8_t *bit = cpu_v_bit;  // its first 16 entries: lane order's element of each of a block's bytes
    for (int i = 0; i < 64; i++) {
        uint8_t *q = dst + 34 * (i / 16) + 2;
        q[bit[i % 16]] = src[i];
        q[16 + bit[i % 16]] = src[64 + i];
    }
    for (int m = 0; m < 4; m++) { dst[34 * m] = src[128 + 2 * m]; dst[34 * m + 1] = src[129 + 2 * m]; }
}

/// A whole lane-order Q8_0 group as signed codes: two loads, and the scales by one word permute.
CPU_VB_TARGET __attribute__((always_inline))
static inline void cpu_v_q8l_group(const uint8_t *p, __m512 rs, __m512i *lo, __m512i *hi, __m512 *ws) {
    (void)rs;
    *lo = _mm512_loadu_si512(p);
    *hi = _mm512_loadu_si512(p + 64);
    *ws = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(_mm512_loadu_si512(cpu_q5l_d),
                                                                          _mm512_loadu_si512(p + 72))));
}

/// A lane-order Q8_0 group in the int16 chunk vectors and expanded scales (cpu_q8_0_group's values).
CPU_VB_TARGET
static inline void cpu_unpack_q8l_group(const void *g, int16_t *w, float *ws) {
    __m512i lo, hi;
    __m512 s;
    cpu_v_q8l_group((const uint8_t *)g, _mm512_setzero_ps(), &lo, &hi, &s);
    const __m512i t = _mm512_loadu_si512(cpu_q5l_chunks);
    lo = _mm512_permutexvar_epi8(t, lo);
    hi = _mm512_permutexvar_epi8(t, hi);
    _mm512_storeu_si512(w, _mm512_cvtepi8_epi16(_mm512_castsi512_si256(lo)));
    _mm512_storeu_si512(w + 32, _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(lo, 1)));
    _mm512_storeu_si512(w + 64, _mm512_cvtepi8_epi16(_mm512_castsi512_si256(hi)));
    _mm512_storeu_si512(w + 96, _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(hi, 1)));
    _mm512_storeu_ps(ws, s);
}

/// Block m of a lane-order Q8_0 group in element order (32 int16 at `dst`); returns its scale.
CPU_VB_TARGET
static inline float cpu_panel_q8l_block(const void *group, long m, int16_t *dst) {
    const uint8_t *p = (const uint8_t *)group;
    const __m256i t = _mm256_add_epi8(_mm256_loadu_si256((const __m256i *)cpu_q5l_block), _mm256_set1_epi8((char)(16 * m)));
    const __m512i v = _mm512_permutex2var_epi8(_mm512_loadu_si512(p), _mm512_castsi256_si512(t), _mm512_loadu_si512(p + 64));
    _mm512_storeu_si512(dst, _mm512_cvtepi8_epi16(_mm512_castsi512_si256(v)));
    uint16_t d;
    __builtin_memcpy(&d, p + 128 + 2 * m, 2);
    return _cvtsh_ss(d);
}

/// cpu_q5_0_lanes with VBMI (the permutes of cpu_v_q5_0_group, done once at load). In place allowed (src == dst).
CPU_VB_TARGET
static inline void cpu_q5_0_lanes_vbmi(const uint8_t *src, uint8_t *dst) {
    const __m512i bit = _mm512_loadu_si512(cpu_v_bit);
    const __m512i a = _mm512_loadu_si512(src), b = _mm512_maskz_loadu_epi8(0xFFFFFFull, src + 64);
    const __m512i q = _mm512_permutex2var_epi8(a, _mm512_loadu_si512(cpu_v_q5_0_qs), b);
    const __m512i qh = _mm512_permutex2var_epi8(a, _mm512_loadu_si512(cpu_v_q5_0_qh), b);
    const __mmask64 kl = _mm512_bitshuffle_epi64_mask(qh, bit), kh = _mm512_bitshuffle_epi64_mask(qh, _mm512_add_epi8(bit, _mm512_set1_epi8(16)));
    const __m512i dw = _mm512_permutex2var_epi16(a, _mm512_setr_epi32(0x000B0000, 0x00210016, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), b);
    _mm512_storeu_si512(dst, q);
    _store_mask64((__mmask64 *)(dst + 64), kl);
    _store_mask64((__mmask64 *)(dst + 72), kh);
    _mm_storel_epi64((__m128i *)(dst + 80), _mm512_castsi512_si128(dw));
}

/// A whole Q4_0 group (72 bytes; the second load masked to its last 8) as nibble codes.
CPU_VB_TARGET __attribute__((always_inline))
static inline void cpu_v_q4_0_group(const uint8_t *p, __m512 rs, __m512i *lo, __m512i *hi, __m512 *ws) {
    (void)rs;
    const __m512i a = _mm512_loadu_si512(p), b = _mm512_maskz_loadu_epi8(0xFFull, p + 64);
    cpu_nibbles_split(_mm512_permutex2var_epi8(a, _mm512_loadu_si512(cpu_v_q4_0), b), lo, hi);
    *ws = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(a, _mm512_loadu_si512(cpu_d_q4_0), b)));
}

/// A whole int4Channel group (64 bytes of nibbles), every scale the row's `rs`.
CPU_VB_TARGET __attribute__((always_inline))
static inline void cpu_v_nib_group(const uint8_t *p, __m512 rs, __m512i *lo, __m512i *hi, __m512 *ws) {
    cpu_nibbles_split(_mm512_permutexvar_epi8(_mm512_loadu_si512(cpu_v_nib), _mm512_loadu_si512(p)), lo, hi);
    *ws = rs;
}

/// Q8_0: the low vector's quants (cpu_v_bit + 34m + 2) from the group's first 128 bytes, the high vector's (+ 16)
/// from the window 16 bytes on (its second load masked to the group's end).
static const uint8_t cpu_v_q8_0[64] = {
    2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 8, 9, 16, 17, 36, 37, 44, 45, 38, 39, 46, 47, 40, 41, 48, 49, 42, 43, 50, 51,
    70, 71, 78, 79, 72, 73, 80, 81, 74, 75, 82, 83, 76, 77, 84, 85, 104, 105, 112, 113, 106, 107, 114, 115, 108, 109, 116, 117, 110, 111, 118, 119};

/// A whole Q8_0 group (136 bytes; no byte past it is read) as signed codes.
CPU_VB_TARGET __attribute__((always_inline))
static inline void cpu_v_q8_0_group(const uint8_t *p, __m512 rs, __m512i *lo, __m512i *hi, __m512 *ws) {
    (void)rs;
    const __m512i t = _mm512_loadu_si512(cpu_v_q8_0);
    const __m512i a0 = _mm512_loadu_si512(p), a1 = _mm512_loadu_si512(p + 64);
    *lo = _mm512_permutex2var_epi8(a0, t, a1);
    *hi = _mm512_permutex2var_epi8(_mm512_loadu_si512(p + 16), t, _mm512_maskz_loadu_epi8(0x00FFFFFFFFFFFFFFull, p + 80));
    *ws = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(a0, _mm512_loadu_si512(cpu_d_q8_0), a1)));
}

/// cpu_q8_0_lanes with VBMI (the permutes of cpu_v_q8_0_group, done once at load). In place allowed (src == dst).
CPU_VB_TARGET
static inline void cpu_q8_0_lanes_vbmi(const uint8_t *src, uint8_t *dst) {
    const __m512i t = _mm512_loadu_si512(cpu_v_q8_0);
    const __m512i a0 = _mm512_loadu_si512(src), a1 = _mm512_loadu_si512(src + 64);
    const __m512i lo = _mm512_permutex2var_epi8(a0, t, a1);
    const __m512i hi = _mm512_permutex2var_epi8(_mm512_loadu_si512(src + 16), t, _mm512_maskz_loadu_epi8(0x00FFFFFFFFFFFFFFull, src + 80));
    const __m512i dw = _mm512_permutex2var_epi16(a0, _mm512_setr_epi32(0x00110000, 0x00330022, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), a1);
    _mm512_storeu_si512(dst, lo);
    _mm512_storeu_si512(dst + 64, hi);
    _mm_storel_epi64((__m128i *)(dst + 128), _mm512_castsi512_si128(dw));
}

// One row (kernel1's accumulator lanes into `e`) and four consecutive rows (`rowBytes` apart; RowAcc.result's sums
// into y[0...3]) of whole groups in byte form, `ahead` bytes prefetched on. OFF: bytes before the first group
// (int4Channel's f32 scale); RS: the row's scale vector; INIT, Q8: cpu_byte_step's `init` (256: -offsetSums, for the
// codes q - 8; 320: -2 offsetSums, Q5_0's q - 16) and `q8`.
#define CPU_BYTE_ROW_KERNELS(F, GB, OFF, RS, INIT, Q8)                                                                 \
    CPU_VB_TARGET static inline void cpu_bdot_##F##_row(const void *row, long ng, const uint8_t *xb, const float *xs,  \
                                                        float *e, long ahead) {                                        \
        const uint8_t *r = (const uint8_t *)row, *p = r + OFF;                                                         \
        const __m512 rs = RS(r);                                                                                       \
        __m512 acc = _mm512_setzero_ps();                                                                              \
        for (long g = 0; g < ng; g++) {                                                                                \
            __m512i lo, hi;                                                                                            \
            __m512 ws;                                                                                                 \
            const uint8_t *x = xb + cpu_split_group_bytes * g;                                                         \
            for (long j = 0; j < (GB + 63) / 64; j++) __builtin_prefetch(p + GB * g + ahead + 64 * j, 0, 3);           \
            cpu_v_##F##_group(p + GB * g, rs, &lo, &hi, &ws);                                                          \
            acc = cpu_byte_step(lo, hi, INIT, Q8, ws, x, xs + 16 * g, acc);                                            \
        }                                                                                                              \
        _mm512_storeu_ps(e, acc);                                                                                      \
    }                                                                                                                  \
    CPU_VB_TARGET static inline void cpu_bdot_##F##_rows4(const void *row, long rowBytes, long ng, const uint8_t *xb,  \
                                                          const float *xs, float *y, long ahead) {                     \
        const uint8_t *r = (const uint8_t *)row, *p = r + OFF, *pf = r + ahead;                                        \
        const long per = ((4 * rowBytes + 63) / 64 + ng - 1) / ng;                                                     \
        const __m512 r0 = RS(r), r1 = RS(r + rowBytes), r2 = RS(r + 2 * rowBytes), r3 = RS(r + 3 * rowBytes);          \
        __m512 A = _mm512_setzero_ps(), B = A, C = A, D = A;                                                           \
        for (long g = 0; g < ng; g++) {                                                                                \
            const uint8_t *pg = p + GB * g, *x = xb + cpu_split_group_bytes * g;                                       \
            const float *s = xs + 16 * g;                                                                              \
            __m512i lo, hi;                                                                                            \
            __m512 ws;                                                                                                 \
            for (long j = 0; j < per; j++) __builtin_prefetch(pf + 64 * j, 0, 3);                                      \
            pf += 64 * per;                                                                                            \
            cpu_v_##F##_group(pg, r0, &lo, &hi, &ws);                                                                  \
            A = cpu_byte_step(lo, hi, INIT, Q8, ws, x, s, A);                                                          \
            cpu_v_##F##_group(pg + rowBytes, r1, &lo, &hi, &ws);                                                       \
            B = cpu_byte_step(lo, hi, INIT, Q8, ws, x, s, B);                                                          \
            cpu_v_##F##_group(pg + 2 * rowBytes, r2, &lo, &hi, &ws);                                                   \
            C = cpu_byte_step(lo, hi, INIT, Q8, ws, x, s, C);                                                          \
            cpu_v_##F##_group(pg + 3 * rowBytes, r3, &lo, &hi, &ws);                                                   \
            D = cpu_byte_step(lo, hi, INIT, Q8, ws, x, s, D);                                                          \
        }                                                                                                              \
        cpu_reduce_rows4(A, B, C, D, y);                                                                               \
    }
CPU_BYTE_ROW_KERNELS(q5_0, 88, 0, CPU_NO_ROW_SCALE, 320, 0)
CPU_BYTE_ROW_KERNELS(q5l, 88, 0, CPU_NO_ROW_SCALE, 320, 0)
CPU_BYTE_ROW_KERNELS(q4_0, 72, 0, CPU_NO_ROW_SCALE, 256, 0)
CPU_BYTE_ROW_KERNELS(nib, 64, 4, CPU_NIB_ROW_SCALE, 256, 0)
CPU_BYTE_ROW_KERNELS(q8_0, 136, 0, CPU_NO_ROW_SCALE, 0, 1)
CPU_BYTE_ROW_KERNELS(q8l, 136, 0, CPU_NO_ROW_SCALE, 0, 1)
#undef CPU_BYTE_ROW_KERNELS

/// One Q4_K super-block times one split activation row (xb: its two groups, xs: 32 scales, ds: 8 scaled sums): two
/// byte steps (no offset: Q4_K's codes are its values), and minStep's FMA.
CPU_VB_TARGET __attribute__((always_inline))
static inline void cpu_v_q4_K_step(const uint8_t *b, const uint8_t *xb, const float *xs, const float *ds, __m512 *acc, __m256 *m) {
    __m512 ws0, ws1;
    __m256 mins;
    cpu_q4_K_scales(b, &ws0, &ws1, &mins);
    const __m512i t = _mm512_loadu_si512(cpu_v_q4_K), t16 = _mm512_add_epi8(t, _mm512_set1_epi8(16)), m15 = _mm512_set1_epi8(15);
    for (int G = 0; G < 2; G++) {
        const __m512i q = _mm512_loadu_si512(b + 16 + 64 * G), s = _mm512_srli_epi16(q, 4);
        const __m512i lo = _mm512_and_si512(_mm512_permutex2var_epi8(q, t, s), m15);
        const __m512i hi = _mm512_and_si512(_mm512_permutex2var_epi8(q, t16, s), m15);
        *acc = cpu_byte_step(lo, hi, -1, 0, G ? ws1 : ws0, xb + cpu_split_group_bytes * G, xs + 16 * G, *acc);
    }
    *m = _mm256_fmadd_ps(mins, _mm256_loadu_ps(ds), *m);
}

// Q4_K in lane order (IntegerLayout.q4_KLanes; cpu_q4_K_lanes at load): a super-block keeps its first 16 bytes (d,
// dmin, the 12 bytes of 6-bit scales and mins); its 128 quant bytes are regrouped so that group G's 64 bytes
// (sub-blocks 4G ..< 4G + 4) hold at byte i the code of element cpu_v_bit[i] of sub-block 4G + i / 16 in the low
// nibble and that of element + 16 in the high nibble: the decode step's codes are q & 15 and q >> 4 & 15.

/// One file-order Q4_K super-block (144 bytes) into lane order (any CPU; not in place).
static inline void cpu_q4_K_lanes(const uint8_t *src, uint8_t *dst) {
    const uint8_t *bit = cpu_v_bit;  // its first 16 entries: lane order's element of each of a block's bytes
    for (int j = 0; j < 16; j++) dst[j] = src[j];
    for (int i = 0; i < 128; i++) {
        const int m = i / 16, e = bit[i % 16], sh = 4 * (m & 1);  // sub-block m: nibble m & 1 of bytes 32 (m / 2) ...
        const uint8_t *q = src + 16 + 32 * (m / 2);
        dst[16 + i] = (uint8_t)(((q[e] >> sh) & 15) | ((q[e + 16] >> sh) & 15) << 4);
    }
}

/// The inverse of cpu_q4_K_lanes (any CPU; not in place).
static inline void cpu_q4_K_from_lanes(const uint8_t *src, uint8_t *dst) {
    const uint8_t *bit = cpu_v_bit;  // its first 16 entries: lane order's element of each of a block's bytes
    for (int j = 0; j < 16; j++) dst[j] = src[j];
    for (int j = 16; j < 144; j++) dst[j] = 0;
    for (int i = 0; i < 128; i++) {
        const int m = i / 16, e = bit[i % 16], sh = 4 * (m & 1);
        uint8_t *q = dst + 16 + 32 * (m / 2);
        q[e] |= (uint8_t)((src[16 + i] & 15) << sh);
        q[e + 16] |= (uint8_t)((src[16 + i] >> 4) << sh);
    }
}

/// cpu_q4_K_lanes with VBMI (cpu_v_q4_K_step's permutes, once at load). In place allowed (src == dst).
CPU_VB_TARGET
static inline void cpu_q4_K_lanes_vbmi(const uint8_t *src, uint8_t *dst) {
    const __m512i t = _mm512_loadu_si512(cpu_v_q4_K), t16 = _mm512_add_epi8(t, _mm512_set1_epi8(16)), m15 = _mm512_set1_epi8(15);
    _mm_storeu_si128((__m128i *)dst, _mm_loadu_si128((const __m128i *)src));
    for (int G = 0; G < 2; G++) {
        const __m512i q = _mm512_loadu_si512(src + 16 + 64 * G), s = _mm512_srli_epi16(q, 4);
        const __m512i lo = _mm512_and_si512(_mm512_permutex2var_epi8(q, t, s), m15);
        const __m512i hi = _mm512_and_si512(_mm512_permutex2var_epi8(q, t16, s), m15);
        _mm512_storeu_si512(dst + 16 + 64 * G, _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4)));
    }
}

/// One lane-order Q4_K super-block times one split activation row: cpu_v_q4_K_step without its permutes.
CPU_VB_TARGET __attribute__((always_inline))
static inline void cpu_v_q4Kl_step(const uint8_t *b, const uint8_t *xb, const float *xs, const float *ds, __m512 *acc, __m256 *m) {
    __m512 ws0, ws1;
    __m256 mins;
    cpu_q4_K_scales(b, &ws0, &ws1, &mins);
    const __m512i m15 = _mm512_set1_epi8(15);
    for (int G = 0; G < 2; G++) {
        const __m512i q = _mm512_loadu_si512(b + 16 + 64 * G);
        const __m512i lo = _mm512_and_si512(q, m15), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m15);
        *acc = cpu_byte_step(lo, hi, -1, 0, G ? ws1 : ws0, xb + cpu_split_group_bytes * G, xs + 16 * G, *acc);
    }
    *m = _mm256_fmadd_ps(mins, _mm256_loadu_ps(ds), *m);
}

/// One lane-order Q4_K super-block into the row kernels' scratch, as cpu_unpack_q4_K_sb (w 256 int16, ws 32
/// expanded scales, wm its 8 mins).
CPU_VB_TARGET
static inline void cpu_unpack_q4Kl_sb(const void *sb, int16_t *w, float *ws, float *wm) {
    const uint8_t *b = (const uint8_t *)sb;
    __m512 s0, s1;
    __m256 mins;
    cpu_q4_K_scales(b, &s0, &s1, &mins);
    const __m512i m15 = _mm512_set1_epi8(15), t = _mm512_loadu_si512(cpu_q5l_chunks);
    for (int G = 0; G < 2; G++) {
        const __m512i q = _mm512_loadu_si512(b + 16 + 64 * G);
        const __m512i lo = _mm512_permutexvar_epi8(t, _mm512_and_si512(q, m15));
        const __m512i hi = _mm512_permutexvar_epi8(t, _mm512_and_si512(_mm512_srli_epi16(q, 4), m15));
        _mm512_storeu_si512(w + 128 * G, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(lo)));
        _mm512_storeu_si512(w + 128 * G + 32, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(lo, 1)));
        _mm512_storeu_si512(w + 128 * G + 64, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(hi)));
        _mm512_storeu_si512(w + 128 * G + 96, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(hi, 1)));
    }
    _mm512_storeu_ps(ws, s0);
    _mm512_storeu_ps(ws + 16, s1);
    _mm256_storeu_ps(wm, mins);
}

CPU_K_ROW_KERNELS(CPU_VB_TARGET, cpu_bdot_q4_K, cpu_v_q4_K_step, 144, uint8_t, 2 * cpu_split_group_bytes)
CPU_K_ROW_KERNELS(CPU_VB_TARGET, cpu_bdot_q4Kl, cpu_v_q4Kl_step, 144, uint8_t, 2 * cpu_split_group_bytes)
#undef CPU_K_ROW_KERNELS
#undef CPU_VB_TARGET

/// One whole Q5_0 / Q8_0 / Q4_0 / int4Channel group into the row kernels' scratch (`w`: 128 int16, `ws`: 16 scales).
#define CPU_UNPACK_GROUP(F)                                                                                            \
    CPU_Q5_TARGET static inline void cpu_unpack_##F##_group(const void *g, float rowScale, int16_t *w, float *ws) {    \
        __m512i v[4];                                                                                                  \
        __m512 s;                                                                                                      \
        cpu_##F##_group((const uint8_t *)g, _mm512_set1_ps(rowScale), v, &s);                                          \
        for (int c = 0; c < 4; c++) _mm512_storeu_si512(w + 32 * c, v[c]);                                            \
        _mm512_storeu_ps(ws, s);                                                                                       \
    }
CPU_UNPACK_GROUP(q5_0)
CPU_UNPACK_GROUP(q8_0)
CPU_UNPACK_GROUP(q4_0)
CPU_UNPACK_GROUP(nib)
#undef CPU_UNPACK_GROUP

/// One Q4_K super-block into the scratch: `w` 256 int16, `ws` 32 expanded scales, `wm` its 8 mins (unpackQ4_K's).
CPU_Q5_TARGET
static inline void cpu_unpack_q4_K_sb(const void *b, int16_t *w, float *ws, float *wm) {
    __m512i v[8];
    __m512 s0, s1;
    __m256 m;
    cpu_q4_K_sb((const uint8_t *)b, v, &s0, &s1, &m);
    for (int c = 0; c < 8; c++) _mm512_storeu_si512(w + 32 * c, v[c]);
    _mm512_storeu_ps(ws, s0);
    _mm512_storeu_ps(ws + 16, s1);
    _mm256_storeu_ps(wm, m);
}

/// One Q6_K super-block into the scratch: `w` 256 int16, `ws` 32 scales (unpackQ6_K's).
CPU_Q5_TARGET
static inline void cpu_unpack_q6_K_sb(const void *b, int16_t *w, float *ws) {
    __m512i v[8];
    __m512 s;
    cpu_q6_K_sb((const uint8_t *)b, v, &s);
    for (int c = 0; c < 8; c++) _mm512_storeu_si512(w + 32 * c, v[c]);
    _mm512_storeu_ps(ws, s);
    _mm512_storeu_ps(ws + 16, s);
}

// SFP8 codes to bf16 with AVX-512 VBMI: a code's magnitude (its low 7 bits, which vpermt2b takes as the index into
// two 64-byte registers) looks up the high and the low byte of its bf16 pattern (SFP8.bits >> 16, e = 0 -> +0);
// the sign bit is or-ed into the high byte where the magnitude is not 0 (0x80 reads +0). The codes are first put in
// the order (cpu_sfp8_order: 128-bit lane k = codes 8k ..< 8k + 8, then 32 + 8k ..< +8) that vpunpcklbw /
// vpunpckhbw turn back into codes 0 ..< 32 and 32 ..< 64 as 16-bit lanes, i.e. two chunks of bf16 pairs in
// SFP8Pairs' layout.
static const uint8_t cpu_sfp8_hi[128] = {
    0, 52, 52, 52, 52, 52, 52, 52, 53, 53, 53, 53, 53, 53, 53, 53, 54, 54, 54, 54, 54, 54, 54, 54, 55, 55, 55, 55, 55, 55, 55, 55,
    56, 56, 56, 56, 56, 56, 56, 56, 57, 57, 57, 57, 57, 57, 57, 57, 58, 58, 58, 58, 58, 58, 58, 58, 59, 59, 59, 59, 59, 59, 59, 59,
    60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 61, 61, 61, 61, 61, 61, 61, 61, 61, 61, 61, 61, 61, 61, 61, 61,
    62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};
static const uint8_t cpu_sfp8_lo[128] = {
    0, 32, 64, 96, 128, 160, 192, 224, 0, 32, 64, 96, 128, 160, 192, 224, 0, 32, 64, 96, 128, 160, 192, 224, 0, 32, 64, 96, 128, 160, 192, 224,
    0, 32, 64, 96, 128, 160, 192, 224, 0, 32, 64, 96, 128, 160, 192, 224, 0, 32, 64, 96, 128, 160, 192, 224, 0, 32, 64, 96, 128, 160, 192, 224,
    0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
    0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240};
static const uint8_t cpu_sfp8_order[64] = {
    0, 1, 2, 3, 4, 5, 6, 7, 32, 33, 34, 35, 36, 37, 38, 39, 8, 9, 10, 11, 12, 13, 14, 15, 40, 41, 42, 43, 44, 45, 46, 47,
    16, 17, 18, 19, 20, 21, 22, 23, 48, 49, 50, 51, 52, 53, 54, 55, 24, 25, 26, 27, 28, 29, 30, 31, 56, 57, 58, 59, 60, 61, 62, 63};

typedef struct { __m512i hi0, hi1, lo0, lo1, order; } cpu_sfp8_tables;

CPU_Q5_TARGET __attribute__((always_inline))
static inline cpu_sfp8_tables cpu_sfp8_load_tables(void) {
    cpu_sfp8_tables t = {_mm512_loadu_si512(cpu_sfp8_hi), _mm512_loadu_si512(cpu_sfp8_hi + 64), _mm512_loadu_si512(cpu_sfp8_lo),
                         _mm512_loadu_si512(cpu_sfp8_lo + 64), _mm512_loadu_si512(cpu_sfp8_order)};
    return t;
}

/// 64 codes at `p` (`n` = 64, or 32 with the load masked to them) as two chunks of bf16 pairs.
CPU_Q5_TARGET __attribute__((always_inline))
static inline void cpu_sfp8_decode64(const uint8_t *p, __mmask64 n, const cpu_sfp8_tables *t, __m512i *v0, __m512i *v1) {
    const __m512i c = _mm512_permutexvar_epi8(t->order, _mm512_maskz_loadu_epi8(n, p));
    const __m512i lo = _mm512_permutex2var_epi8(t->lo0, c, t->lo1);
    __m512i hi = _mm512_permutex2var_epi8(t->hi0, c, t->hi1);
    const __mmask64 nz = _mm512_test_epi8_mask(c, _mm512_set1_epi8(0x7f));
    hi = _mm512_or_si512(hi, _mm512_maskz_mov_epi8(nz, _mm512_and_si512(c, _mm512_set1_epi8((char)0x80))));
    *v0 = _mm512_unpacklo_epi8(lo, hi);
    *v1 = _mm512_unpackhi_epi8(lo, hi);
}

/// pairStep of FloatRowKernels.swift: acc += (v << 16) * xe, then acc += (v & 0xffff0000) * xo.
CPU_Q5_TARGET __attribute__((always_inline))
static inline __m512 cpu_pair_step(__m512 acc, __m512i v, const float *x) {
    acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_loadu_ps(x), acc);
    return _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u))), _mm512_loadu_ps(x + 16), acc);
}

/// K (1, 2 or 4) SFP8 rows (`rowBytes` apart) of `chunks` 32-code chunks times the paired activations: the pair
/// kernel's 16 accumulator lanes per row into acc[16 k ...], its operations in its order. Each row is prefetched
/// `ahead` bytes on, a line per 64 codes.
#define CPU_SFP8_ROWS(K)                                                                                               \
    CPU_Q5_TARGET static inline void cpu_dot_sfp8_rows##K(const void *row, long rowBytes, long chunks,                 \
                                                          const float *paired, float *acc, long ahead) {               \
        const cpu_sfp8_tables t = cpu_sfp8_load_tables();                                                              \
        const uint8_t *r = (const uint8_t *)row;                                                                       \
        __m512 a[K];                                                                                                   \
        for (int k = 0; k < K; k++) a[k] = _mm512_setzero_ps();                                                        \
        long c = 0;                                                                                                    \
        for (; c + 2 <= chunks; c += 2) {                                                                              \
            const float *x = paired + 32 * c;                                                                          \
            for (int k = 0; k < K; k++) {                                                                              \
                __m512i v0, v1;                                                                                        \
                __builtin_prefetch(r + k * rowBytes + 32 * c + ahead, 0, 3);                                           \
                cpu_sfp8_decode64(r + k * rowBytes + 32 * c, ~0ull, &t, &v0, &v1);                                     \
                a[k] = cpu_pair_step(cpu_pair_step(a[k], v0, x), v1, x + 32);                                          \
            }                                                                                                          \
        }                                                                                                              \
        if (c < chunks) {                                                                                              \
            for (int k = 0; k < K; k++) {                                                                              \
                __m512i v0, v1;                                                                                        \
                cpu_sfp8_decode64(r + k * rowBytes + 32 * c, 0xFFFFFFFFull, &t, &v0, &v1);                             \
                a[k] = cpu_pair_step(a[k], v0, paired + 32 * c);                                                       \
            }                                                                                                          \
        }                                                                                                              \
        for (int k = 0; k < K; k++) _mm512_storeu_ps(acc + 16 * k, a[k]);                                              \
    }
CPU_SFP8_ROWS(1)
CPU_SFP8_ROWS(2)
CPU_SFP8_ROWS(4)
#undef CPU_SFP8_ROWS
#undef CPU_Q5_TARGET
#endif

#endif
