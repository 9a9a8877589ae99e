// attention-bench: one decode row's attention deep in a context, alone: the query of position D against a cache of
// D keys and values (random), as a global layer computes it for every decoded token (issue 18). Shape defaults to
// Gemma 3 270M's (4 query heads over 1 KV head of 256); several layers' caches are visited in turn so that, as in a
// real decode step, a layer's keys are not in the caches when it is read again.
//
//   attention-bench [--depth 32768] [--kv f16|q8_0|bf16|f32] [--heads 4] [--kv-heads 1] [--head-dim 256]
//                   [--window W] [--layers 3] [--threads 2] [--repeat 50]
//
// Prints microseconds per call (median and min over the repeats, each repeat one call per layer) and the K + V bytes
// read per call over that time (GB/s).
import BenchSupport
import Foundation
import GemmaKernels
import GemmaModel

var args = BenchArguments()
let depth = args.positiveInt("--depth") ?? 32768
let heads = args.positiveInt("--heads") ?? 4, kvHeads = args.positiveInt("--kv-heads") ?? 1
let headDim = args.positiveInt("--head-dim") ?? 256, layerCount = args.positiveInt("--layers") ?? 3
let threads = args.positiveInt("--threads") ?? 2, repeats = args.positiveInt("--repeat") ?? 50
let window = args.positiveInt("--window")
guard let storage = KVStorage(rawValue: args.option("--kv") ?? "f16") else { fail("--kv: f32, f16, bf16 or q8_0") }
guard args.rest.isEmpty else {
    fail("usage: attention-bench [--depth D] [--kv f16|q8_0|bf16|f32] [--heads H] [--kv-heads K] [--head-dim N] [--window W] [--layers L] [--threads T] [--repeat R]")
}
guard heads % kvHeads == 0 else { fail("--heads must be a multiple of --kv-heads") }
guard storage != .q8_0 || (kvHeads * headDim) % 32 == 0 else { fail("q8_0 needs kv-heads x head-dim a multiple of 32") }

/// Deterministic floats in [-1, 1).
var state: UInt64 = 0x5EED
@MainActor func nextFloat() -> Float {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
}

let kvDim = kvHeads * headDim, qDim = heads * headDim
let attention = Attention(heads: heads, kvHeads: kvHeads, headDim: headDim, scale: 1 / Float(headDim).squareRoot(), window: window)
let row = UnsafeMutablePointer<Float>.allocate(capacity: kvDim), row2 = UnsafeMutablePointer<Float>.allocate(capacity: kvDim)
let layers = (0..<layerCount).map { _ -> LayerKV in
    let l = LayerKV(kvDim: kvDim, storage: storage, slots: window ?? depth, isRing: window != nil)
    for p in 0..<depth {
        for i in 0..<kvDim { row[i] = nextFloat(); row2[i] = nextFloat() }
        l.write(position: p, key: row, value: row2)
    }
    return l
}
let q = UnsafeMutablePointer<Float>.allocate(capacity: qDim), out = UnsafeMutablePointer<Float>.allocate(capacity: qDim)
let k = UnsafeMutablePointer<Float>.allocate(capacity: kvDim), v = UnsafeMutablePointer<Float>.allocate(capacity: kvDim)
// Scores of a few units, as QK-normed queries give: the softmax is neither flat nor one-hot.
for i in 0..<qDim { q[i] = 4 * nextFloat() }
for i in 0..<kvDim { k[i] = nextFloat(); v[i] = nextFloat() }
storage.round(k, kvDim)
storage.round(v, kvDim)

let w = AttentionWorkspace(attention, maxRows: 1, maxContext: depth + 1, workers: threads)
w.rowPosition[0] = depth
w.rowKeyEnd[0] = depth + 1
w.rowSegment[0] = 0
w.segmentStartRow[0] = 0
w.segmentStartRow[1] = 1
w.segmentFirstPosition[0] = depth
let pool = WorkerPool.shared(threads: threads)

@MainActor func call(_ l: LayerKV) {
    w.segmentCache[0] = Unmanaged.passUnretained(l)
    attention(rows: 1, segments: 1, q: q, k: k, v: v, out: out, workspace: w, pool: pool)
}
for l in layers { call(l) }  // warm-up
let clock = ContinuousClock()
var times: [Double] = []
for _ in 0..<repeats {
    for l in layers {
        let t0 = clock.now
        call(l)
        let d = clock.now - t0
        times.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }
}
times.sort()
var checksum: Float = 0
for i in 0..<qDim { checksum += out[i] }
let keys = window.map { min($0, depth) } ?? depth
let bytes = Double(2 * keys * storage.bytes(kvDim))
let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
    .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "?"
print("CPU: \(cpu), threads \(threads)")
print(String(format: "decode attention, %d heads over %d x %d, %@ KV, %d keys%@: median %.1f us, min %.1f us, %.2f GB/s at the median (checksum %.4f)",
             heads, kvHeads, headDim, storage.rawValue, keys, window.map { " (window \($0))" } ?? "",
             times[times.count / 2] * 1e6, times[0] * 1e6, bytes / times[times.count / 2] / 1e9, checksum))
