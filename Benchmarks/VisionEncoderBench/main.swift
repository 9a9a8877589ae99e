// vision-encoder-bench: wall time of the SigLIP encoder + projector on random pixels, and the GFLOP/s it reaches
// (FLOP = 2 x multiply-adds of the products and attention, vision.md §f; elementwise work not counted).
//
//   vision-encoder-bench CHECKPOINT [--threads N] [--layers L] [--images I] [--repeat R] [--parts]
//
// CHECKPOINT: an mmproj GGUF or a Hugging Face folder (random full-size weights: scripts/reference/make_random_mmproj.py).
// --layers runs only the first L encoder layers (the rest of the pass still runs): for a quick estimate.
// --parts also times one layer's pieces alone on the same shapes: the q/k/v/o and fc1/fc2 products, the attention.
import BenchSupport
import Foundation
import GemmaFormats
import GemmaKernels
import GemmaVision

var args = BenchArguments()
let threads = args.positiveInt("--threads")
let layerLimit = args.positiveInt("--layers")
let images = args.positiveInt("--images") ?? 1
let repeats = args.positiveInt("--repeat") ?? 1
let parts = args.flag("--parts")
guard args.rest.count == 1 else {
    fail("usage: vision-encoder-bench CHECKPOINT [--threads N] [--layers L] [--images I] [--repeat R] [--parts]")
}

/// CPU seconds of the whole process (all threads; with one thread, unaffected by other processes' load).
func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
let clock = ContinuousClock()

let loadStart = clock.now
let encoder: VisionEncoder
do { encoder = try VisionEncoder.load(path: args.rest[0], threads: threads) } catch { fail("\(error)") }
let loadTime = seconds(clock.now - loadStart)
let c = encoder.config, s = c.siglip
let n = Double(s.numPatches), d = Double(s.hiddenSize), f = Double(s.intermediateSize)
let layers = min(layerLimit ?? s.numHiddenLayers, s.numHiddenLayers)
let layerFlop = 8 * n * d * d + 4 * n * n * d + 4 * n * d * f
let flop = Double(images) * (Double(layers) * layerFlop + 2 * n * Double(s.patchLength) * d
    + 2 * Double(c.mmTokensPerImage) * d * Double(c.textHiddenSize))
print("checkpoint \(args.rest[0]): SigLIP \(s.hiddenSize)/\(s.intermediateSize)/\(s.numHiddenLayers) layers/\(s.numAttentionHeads) heads, "
    + "\(s.imageSize) px, patch \(s.patchSize) -> \(s.numPatches) patches, \(c.mmTokensPerImage) tokens x \(c.textHiddenSize); "
    + "weights \(encoder.weights.layers.first.map { $0.fc1.encoding.name } ?? "?"); loaded in \(String(format: "%.2f", loadTime)) s")
print("threads \(encoder.threads), images \(images), layers run \(layers) of \(s.numHiddenLayers), \(String(format: "%.1f", flop / 1e9)) GFLOP per encode")

var state: UInt64 = 0x9E37_79B9_7F4A_7C15
let pixels = (0..<(images * s.pixelsPerImage)).map { _ -> Float in
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return Float(Int64(bitPattern: state >> 11) % 2_000_001) / 1_000_000 - 1
}

for r in 0..<repeats {
    var marks: [ContinuousClock.Instant] = []
    let start = clock.now, cpuStart = cpuSeconds()
    let out: [Float]
    do {
        out = try pixels.withUnsafeBufferPointer { p in
            try encoder.encode(pixelValues: p, images: images, layers: layers, progress: { _ in marks.append(clock.now) }, observe: nil)
        }
    } catch { fail("\(error)") }
    let total = seconds(clock.now - start), cpu = cpuSeconds() - cpuStart
    var perLayer = zip(marks.dropFirst(), marks).map { seconds($0 - $1) }.sorted()
    if perLayer.isEmpty, let m = marks.first { perLayer = [seconds(m - start)] }
    let median = perLayer.isEmpty ? 0 : perLayer[perLayer.count / 2]
    let checksum = out.reduce(0) { $0 + Double($1) }
    print(String(format: "run %d: %.2f s per encode (%.2f CPU s), %.1f GFLOP/s; median layer %.3f s (%.1f GFLOP/s); full %d-layer image at the median layer: %.1f s; checksum %.6g",
                 r + 1, total, cpu, flop / total / 1e9, median, layerFlop / max(median, 1e-9) / 1e9, s.numHiddenLayers,
                 median * Double(s.numHiddenLayers) + (total - median * Double(layers) * Double(images)) / Double(images), checksum))
}

guard parts else { exit(0) }

// One layer's pieces alone, on the first layer's weights and random activations of the encoder's shapes.
let pool = WorkerPool.shared(threads: encoder.threads)
let rows = s.numPatches, h = s.hiddenSize, inter = s.intermediateSize
let scratch = MatmulScratch(workers: pool.threads, maxCols: max(h, inter), maxBatch: rows)
let x = UnsafeMutablePointer<Float>.allocate(capacity: rows * inter)
let y = UnsafeMutablePointer<Float>.allocate(capacity: rows * inter)
let z = UnsafeMutablePointer<Float>.allocate(capacity: rows * h)
for i in 0..<(rows * inter) {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    x[i] = Float(Int64(bitPattern: state >> 11) % 2_000_001) / 1_000_000 - 1
}
let layer = encoder.weights.layers[0]
@MainActor func time(_ label: String, flop: Double, _ body: () -> Void) {
    body()  // warm
    var best = Double.infinity, bestCPU = Double.infinity
    for _ in 0..<3 {
        let t0 = clock.now, c0 = cpuSeconds()
        body()
        best = min(best, seconds(clock.now - t0))
        bestCPU = min(bestCPU, cpuSeconds() - c0)
    }
    print("  " + label.padding(toLength: 40, withPad: " ", startingAt: 0)
        + String(format: "%8.3f s wall %6.1f GFLOP/s; %8.3f CPU s, %6.1f GFLOP per CPU s", best, flop / best / 1e9, bestCPU, flop / bestCPU / 1e9))
}
print("one layer's pieces (best of 3; CPU time includes the pool's spinning workers):")
time("q, k, v, o products (4 x \(h)x\(h))", flop: 8 * n * d * d) {
    for m in [layer.q, layer.k, layer.v, layer.o] {
        m.multiply(x, xStride: h, batch: rows, into: y, yStride: h, precision: encoder.precision, pool: pool, scratch: scratch)
    }
}
time("fc1 (\(inter)x\(h))", flop: 2 * n * d * f) {
    layer.fc1.multiply(x, xStride: h, batch: rows, into: y, yStride: inter, precision: encoder.precision, pool: pool, scratch: scratch)
}
time("fc2 (\(h)x\(inter))", flop: 2 * n * d * f) {
    layer.fc2.multiply(x, xStride: inter, batch: rows, into: y, yStride: h, precision: encoder.precision, pool: pool, scratch: scratch)
}
let buffers = EncoderAttentionBuffers(tokens: rows, heads: s.numAttentionHeads, headDim: s.headDim, workers: pool.threads)
let attention = EncoderAttention(tokens: rows, heads: s.numAttentionHeads, headDim: s.headDim, scale: 1 / Float(s.headDim).squareRoot())
time("attention (\(s.numAttentionHeads) heads of \(s.headDim))", flop: 4 * n * n * d) {
    attention(q: x, k: x + rows * h, v: x + 2 * rows * h, qBias: layer.qBias, kBias: layer.kBias, vBias: layer.vBias, out: z,
              buffers: buffers, pool: pool)
}
