// row-kernel-bench: the decode product (one activation row times a weight matrix, `WeightMatrix.multiply` with
// batch 1, as a decode step calls it) per weight format, in isolation (issue 23): GB/s of weight bytes read, with the
// matrix hot in the caches (--hot-mb, default 1 MB: one core's L2 holds it) and streamed from DRAM (a matrix of
// --dram-mb, default 512 MB, far beyond the caches), on --threads workers (default 1: per core).
//
//   row-kernel-bench [--formats q8_0,q8_0-lanes,q4_0,q5_0,q5_0-lanes,q4_K,q4_K-lanes,q6_K,int4-channel,sfp8,bf16] [--cols 2048] [--threads 1]
//                    [--hot-mb 1] [--dram-mb 512] [--repeat 7]
//
// Prints, per format, the median over the repeats (each repeat: the hot matrix 64 times, or the DRAM matrix once),
// and the DRAM rate's median share of the machine's read bandwidth (ReadBandwidth.Probe) read right before and after.
// GEMMA_VBMI=0 (the Swift unpacking) and GEMMA_AVX512=0 choose the kernels as they do for the engine.
import BenchSupport
import Foundation
import GemmaFormats
import GemmaKernels

var args = BenchArguments()
let formats = (args.option("--formats") ?? "q8_0,q8_0-lanes,q4_0,q5_0,q5_0-lanes,q4_K,q4_K-lanes,q6_K,int4-channel,sfp8,bf16").split(separator: ",").map(String.init)
let cols = (args.positiveInt("--cols") ?? 2048), threads = (args.positiveInt("--threads") ?? 1), repeats = (args.positiveInt("--repeat") ?? 7)
let hotBytes = (args.positiveInt("--hot-mb") ?? 1) << 20, dramBytes = (args.positiveInt("--dram-mb") ?? 512) << 20
guard args.rest.isEmpty else { fail("unknown arguments: \(args.rest.joined(separator: " ")); see the header of Benchmarks/RowKernelBench/main.swift") }

func encoding(_ name: String) -> WeightEncoding {
    if name == "q5_0-lanes" { return .q5_0Lanes }  // as the engine regroups them at load on VBMI CPUs
    if name == "q8_0-lanes" { return .q8_0Lanes }
    if name == "q4_K-lanes" { return .q4_KLanes }
    guard let e = WeightEncoding.named(name) else { fail("unknown format \(name)") }
    return e
}

/// `bytes` (rounded down to whole rows, at least 4) of `e`'s rows: one random block of 64 rows repeated.
func matrix(_ e: WeightEncoding, rowBytes: Int, bytes: Int) -> (UnsafeMutableRawPointer, Int) {
    let rows = max(4, bytes / rowBytes), block = 64
    var rng = SystemRandomNumberGenerator()
    let w = (0..<block * cols).map { _ in Float.random(in: -1...1, using: &rng) }
    // On 2 MB pages where the kernel offers them, as the engine's copy of the weights (WeightPlacement.hugePages).
    let p = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 2 << 20)
    _ = madvise(p, (rows * rowBytes + (2 << 20) - 1) / (2 << 20) * (2 << 20), 14)  // MADV_HUGEPAGE
    w.withUnsafeBufferPointer { src in
        for r in 0..<min(block, rows) {
            let dst = p + r * rowBytes
            if e == .sfp8 {
                SFP8.encode(src.baseAddress! + r * cols, count: cols, scale: 1, into: dst.assumingMemoryBound(to: UInt8.self))
            } else if let layout = e.integerLayout, layout.isLaneOrder {
                let t = layout.blockType
                withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 64) { tmp in
                    do { try t.quantize(src.baseAddress! + r * cols, count: cols, into: tmp.baseAddress!) } catch { fail("\(error)") }
                    WeightEncoding.repackLanes(t, tmp.baseAddress!, groups: rowBytes / e.bytesPerBlock, into: dst)
                }
            } else {
                do { try e.tensorType!.quantize(src.baseAddress! + r * cols, count: cols, into: dst) } catch { fail("\(error)") }
            }
        }
    }
    for r in block..<max(block, rows) { (p + r * rowBytes).copyMemory(from: p + (r % block) * rowBytes, byteCount: rowBytes) }
    return (p, rows)
}

let pool = WorkerPool.shared(threads: threads)
let probe = ReadBandwidth.Probe(threads: threads, bytes: 256 << 20)  // the machine's read rate around each DRAM pass
let x = (0..<cols).map { _ in Float.random(in: -1...1) }
print("cols \(cols), threads \(threads), hot \(hotBytes >> 20) MB x 64 per repeat, DRAM \(dramBytes >> 20) MB, median of \(repeats)")
for name in formats {
    let e = encoding(name)
    guard let rowBytes = e.rowBytes(cols) else { fail("\(name): \(cols) is not a whole number of its blocks") }
    var line = "\(name.padding(toLength: 13, withPad: " ", startingAt: 0))"
    for (label, bytes, passes) in [("hot", hotBytes, 64), ("DRAM", dramBytes, 1)] {
        let (base, rows) = matrix(e, rowBytes: rowBytes, bytes: bytes)
        defer { base.deallocate() }
        let m = WeightMatrix(encoding: e, rows: rows, cols: cols, base: base)
        let scratch = MatmulScratch(workers: threads, maxCols: cols)
        var y = [Float](repeating: 0, count: rows)
        var rates: [Double] = [], shares: [Double] = []
        for rep in 0...repeats {
            let before = label == "DRAM" ? probe.rate() : 0
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<passes {
                m.multiply(x, xStride: cols, batch: 1, into: &y, yStride: rows, allowGemm: false, pool: pool, scratch: scratch)
            }
            let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            guard rep > 0 else { continue }  // the first warms up
            rates.append(Double(passes * rows * rowBytes) / s / 1e9)
            if label == "DRAM" { shares.append(rates[rates.count - 1] * 2e9 / (before + probe.rate())) }
        }
        rates.sort()
        shares.sort()
        line += String(format: "  %@ %6.1f GB/s", label, rates[rates.count / 2])
        if label == "DRAM" { line += String(format: " (%.0f%% of the reads around it)", 100 * shares[shares.count / 2]) }
    }
    print(line)
}
