// MemoryPlan: parameter counts against the report's Table 1, the KV split of the sliding-window cache, and the
// reproduction of the report's Table 3 (nominal-size weights, all-global bf16 KV, GB = 10^9 bytes, 32,768 tokens).
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing
import GemmaModel

@Suite struct MemoryPlanTests {
    // MARK: Parameter counts (report Table 1: vision 417M; embedding 302M for 1B; non-embedding 698M, 3,209M,
    // 10,759M, 25,600M)

    @Test func parameterCountsMatchTable1() {
        let nonEmbedding: [Gemma3Size: Double] = [.b1: 698e6, .b4: 3_209e6, .b12: 10_759e6, .b27: 25_600e6]
        for (size, expected) in nonEmbedding {
            let p = MemoryPlan.parameterCount(.known(size), includeVision: false)
            #expect(abs(Double(p.layers) / expected - 1) < 0.001, "\(size) non-embedding \(p.layers)")
            #expect(p.embedding == 262_144 * Gemma3Config.known(size).hiddenSize)
            #expect(p.embedding + p.layers == Gemma3Config.known(size).parameterCount)
        }
        #expect(MemoryPlan.parameterCount(.known(.b1), includeVision: false).total == 999_885_952)
        #expect(GemmaVisionTower.encoderParameters == 416_866_032)
        #expect(abs(Double(GemmaVisionTower.encoderParameters) / 417e6 - 1) < 0.001)
        let v27 = MemoryPlan.parameterCount(.known(.b27), includeVision: true).vision
        #expect(v27 == 416_866_032 + 1152 * 5376 + 1152)
    }

    // MARK: KV split

    @Test func kvSplit270MAt32K() {
        let p = MemoryPlan(size: .m270, context: 32_768, weights: .bf16, kv: .f16)
        // 18 layers: 3 global (5, 11, 17), 15 local with a 512-position ring; 1 KV head x 256.
        #expect(p.kv.globalLayers == 3 && p.kv.localLayers == 15)
        #expect(p.kv.globalPositions == 32_768 && p.kv.localPositions == 512)
        #expect(p.kv.globalBytes == 3 * 32_768 * 2 * 256 * 2)
        #expect(p.kv.globalBytes == 96 << 20)  // 96 MiB
        #expect(p.kv.localBytes == 15 * 512 * 2 * 256 * 2)
        #expect(p.kv.localBytes == 15 << 19)  // 7.5 MiB
        #expect(p.allGlobalKV == 18 * 32_768 * 2 * 256 * 2)  // 576 MiB
        #expect(p.allGlobalKV == 576 << 20)
        #expect(p.total == p.weights.total + (96 << 20) + (15 << 19))
        // bf16 is the same size; f32 twice; q8_0 is 34 bytes per 32 values.
        #expect(MemoryPlan(size: .m270, context: 32_768, kv: .bf16).kv == p.kv)
        #expect(MemoryPlan(size: .m270, context: 32_768, kv: .f32).kv.total == 2 * p.kv.total)
        let q8 = MemoryPlan(size: .m270, context: 32_768, kv: .q8_0)
        #expect(q8.kv.globalBytes == 3 * 32_768 * 2 * (256 / 32 * 34))
        #expect(q8.kv.localBytes == 15 * 512 * 2 * (256 / 32 * 34))
    }

    @Test func kvMatchesTheEngineCache() {
        // The plan counts what KVCache allocates once it has grown to the context.
        let config = Gemma3Config.known(.m270)
        let cache = KVCache(config: config, capacity: 2048, storage: .f16)
        cache.reserve(2048)
        #expect(cache.bytes == MemoryPlan(config: config, context: 2048, kv: .f16).kv.total)
        // Growing by doubling stops at the capacity: a cache filled one position at a time past a power of two
        // holds the plan, not twice it.
        let grown = KVCache(config: config, capacity: 5000, storage: .f16)
        for n in stride(from: 4096, through: 5000, by: 1) { grown.reserve(n) }
        #expect(grown.bytes == MemoryPlan(config: config, context: 5000, kv: .f16).kv.total)
    }

    @Test func allGlobalFactor() {
        // allGlobal / ring = L x n / (G x n + (L - G) x min(W, n)).
        for size in Gemma3Size.allCases {
            let c = Gemma3Config.known(size)
            let g = c.layers.filter(\.isGlobal).count, l = c.numHiddenLayers - g
            for n in [256, 512, 1024, 4096, 32_768, 131_072] {
                let p = MemoryPlan(config: c, context: n, kv: .bf16)
                #expect(p.kv.globalLayers == g && p.kv.localLayers == l)
                let expected = Double(c.numHiddenLayers * n) / Double(g * n + l * min(c.slidingWindow, n))
                #expect(abs(Double(p.allGlobalKV) / Double(p.kv.total) - expected) < 1e-12)
                if n <= c.slidingWindow { #expect(p.allGlobalKV == p.kv.total) } else { #expect(p.allGlobalKV > p.kv.total) }
            }
        }
        // At 32K: 270M 5.57x (576 / 103.5 MiB), 1B 5.99x, 27B 5.33x.
        #expect(abs(Double(MemoryPlan(size: .m270, context: 32_768).allGlobalKV)
                    / Double(MemoryPlan(size: .m270, context: 32_768).kv.total) - 576 / 103.5) < 1e-9)
        let b27 = MemoryPlan(size: .b27, context: 32_768)
        #expect(b27.kv.globalLayers == 10 && b27.kv.localLayers == 52)
        #expect(b27.allGlobalKV == 62 * 32_768 * 2 * 16 * 128 * 2)
    }

    // MARK: Weight formats

    @Test func weightFormats() {
        #expect(WeightEncoding.named("bf16") == .bf16)
        #expect(WeightEncoding.named("int4") == .int4)
        #expect(WeightEncoding.named("int4-b32") == .int4Blocks32)
        #expect(WeightEncoding.named("SFP8") == .sfp8)
        #expect(WeightEncoding.named("q4_k") == .gguf(.q4_K))
        #expect(WeightEncoding.named("Q8_0") == .gguf(.q8_0))
        #expect(WeightEncoding.named("i32") == nil)
        #expect(WeightEncoding.named("nope") == nil)
        #expect(WeightEncoding.int4Blocks32.matrixBytes(rows: 2, columns: 64) == TensorType.q4_0.rowBytes(64)! * 2)
        #expect(WeightEncoding.gguf(.q8_0).matrixBytes(rows: 3, columns: 640) == 3 * 680)
        #expect(WeightEncoding.gguf(.q4_K).matrixBytes(rows: 1, columns: 512) == 288)
        #expect(WeightEncoding.int4.matrixBytes(rows: 10, columns: 640) == 10 * (320 + 4))
        #expect(WeightEncoding.sfp8.matrixBytes(rows: 10, columns: 640) == 6400)
        // bf16 weights are 2 bytes per parameter, norms included.
        for size in Gemma3Size.allCases {
            let p = MemoryPlan(size: size, context: 1, weights: .bf16, includeVision: true)
            #expect(p.weights.total == 2 * p.parameters.total)
        }
    }

    @Test func planFromFileMatchesConfig() throws {
        guard let path = TestPaths.requireModel() else { return }
        let file = try GGUFFile(path: path)
        let config = try Gemma3Config(gguf: file)
        let fromFile = MemoryPlan(checkpoint: try Checkpoint(gguf: file), context: 32_768, kv: .f16)
        let fromConfig = MemoryPlan(config: config, context: 32_768, kv: .f16)
        #expect(fromFile.parameters.total == fromConfig.parameters.total)
        #expect(fromFile.weights.total == file.tensors.reduce(0) { $0 + $1.byteCount })
        #expect(fromFile.kv == fromConfig.kv)
        #expect(!fromFile.widenedQ5_0)
        // Widened: the plan counts what the loaded model holds, Q5_0 matrices as Q8_0 (34 bytes per 32, not 22).
        let widened = MemoryPlan(checkpoint: try Checkpoint(gguf: file), context: 32_768, kv: .f16, widenQ5_0: true)
        let model = try Gemma3Model(file: file, config: config, options: ModelOptions(threads: 1, widenQ5_0: true))
        let held = model.weights.matrices.reduce(0) { $0 + $1.rows * $1.rowBytes }
        let vectors = file.tensors.filter { $0.dimensions.count == 1 }.reduce(0) { $0 + $1.byteCount }
        let q5 = file.tensors.filter { $0.type == .q5_0 }.reduce(0) { $0 + $1.byteCount }
        #expect(widened.widenedQ5_0)
        #expect(widened.weights.total == held + vectors)
        #expect(widened.weights.total == fromFile.weights.total + q5 / 22 * 12)
    }

    // MARK: Table 3 of the report

    static func key(_ c: GemmaReportTable3.Cell) -> String {
        "\(c.size.rawValue) \(c.column.rawValue)\(c.withKV ? "+KV" : "")"
    }

    static func cell(_ key: String) -> GemmaReportTable3.Cell {
        GemmaReportTable3.reproduction().first { Self.key($0) == key }!
    }

    /// The all-global bf16 KV of a size from its published config, written out: layers x 32,768 positions x K and V
    /// x kv_heads x head_dim x 2 bytes.
    static func configKV(_ size: Gemma3Size) -> Int {
        let c = Gemma3Config.known(size)
        return c.numHiddenLayers * 32_768 * 2 * c.numKeyValueHeads * c.headDim * 2
    }

    @Test func table3WeightsFollowTheNominalConvention() {
        // Weights = nominal N x the column's bytes per weight, the vision tower (4B+) at bf16 out of N.
        let n: [Gemma3Size: Int] = [.b1: 1_000_000_000, .b4: 4_000_000_000, .b12: 12_000_000_000, .b27: 27_000_000_000]
        for size in GemmaReportTable3.sizes {
            let nominal = n[size]!
            let v = size == .b1 ? 0 : GemmaVisionTower.parameters(hiddenSize: Gemma3Config.known(size).hiddenSize)
            #expect(GemmaReportTable3.weightBytes(size, .bf16) == 2 * nominal)  // 2.0, 8.0, 24.0, 54.0
            #expect(GemmaReportTable3.weightBytes(size, .sfp8) == nominal + v)  // N + 0.4
            #expect(abs(GemmaReportTable3.weightBytes(size, .int4) - (nominal / 2 + 3 * v / 2)) <= 1)  // N/2 + 0.6
            // Int4 blocks=32 keeps the tensor count.
            #expect(GemmaReportTable3.weightBytes(size, .int4Blocks32) == GemmaReportTable3.plan(size, .int4Blocks32).weights.total)
            // Every nominal weight cell rounds to the report's value at its printed precision (0.1 GB).
            for column in [GemmaReportTable3.Column.bf16, .int4, .sfp8] {
                let ours = Double(GemmaReportTable3.weightBytes(size, column)) / 1e9
                #expect(abs(ours - GemmaReportTable3.reported[size]![column]!.weights) < 0.05, "\(size) \(column) \(ours)")
            }
        }
        // The vision tower is 0.42B of N (Table 1's "417M" plus the projector).
        for size in [Gemma3Size.b4, .b12, .b27] {
            let v = GemmaVisionTower.parameters(hiddenSize: Gemma3Config.known(size).hiddenSize)
            #expect(v > 417_000_000 && v < 424_000_000)
        }
        // The engine-facing plan is not affected: it keeps the tensor count (27B bf16 + vision: 2 x 27.43B params).
        let p27 = GemmaReportTable3.plan(.b27, .bf16)
        #expect(p27.weights.total == 2 * p27.parameters.total)
        #expect(p27.weights.total != GemmaReportTable3.weightBytes(.b27, .bf16))
    }

    /// The issue's ten cells: 27B raw, Int4, SFP8 with and without KV; 12B raw and raw+KV; 4B raw+KV and Int4+KV.
    static let issueWithin3Percent = ["27b bf16", "27b bf16+KV", "27b int4", "27b sfp8", "12b bf16", "4b bf16+KV", "4b int4+KV"]
    /// The three that stay out: weights match, the report's KV is ~2 GB above the all-global count of the configs.
    static let issueKVBound = ["27b int4+KV", "27b sfp8+KV", "12b bf16+KV"]

    @Test func table3IssueCells() {
        for key in Self.issueWithin3Percent {
            let c = Self.cell(key)
            #expect(abs(c.relativeDifference) <= 0.03, "\(key): ours \(c.gb) GB, report \(c.reportedGB) GB")
        }
        for key in Self.issueKVBound {
            let c = Self.cell(key)
            #expect(c.withKV)
            // The weights part matches the report's weights within 1%...
            let reportedWeights = GemmaReportTable3.reported[c.size]![c.column]!.weights
            #expect(abs(Double(c.weightBytes) / 1e9 / reportedWeights - 1) <= 0.01, "\(key) weights \(c.weightBytes)")
            // ...the KV delta is exactly the all-global bf16 cache of the published config...
            #expect(c.bytes - GemmaReportTable3.weightBytes(c.size, c.column) == Self.configKV(c.size))
            #expect(c.kvBytes == GemmaReportTable3.plan(c.size, c.column).allGlobalKV)
            // ...and the miss is the report's KV being ~2 GB above it (14.9 vs 12.885, 18.7 vs 16.643).
            let gap = GemmaReportTable3.reportedKV(c.size) - Double(c.kvBytes) / 1e9
            #expect(gap > 1.9 && gap < 2.1, "\(key) KV gap \(gap)")
            #expect(c.relativeDifference < -0.03 && c.relativeDifference > -0.07, "\(key) \(c.relativeDifference)")
        }
        // The expected values (GB, to 0.01; 27B Int4+KV = 14.134 + 16.643, SFP8+KV = 27.423 + 16.643).
        let expected: [String: Double] = [
            "27b bf16": 54.00, "27b bf16+KV": 70.64, "27b int4": 14.13, "27b sfp8": 27.42, "12b bf16": 24.00,
            "4b bf16+KV": 12.56, "4b int4+KV": 7.19, "27b int4+KV": 30.78, "27b sfp8+KV": 44.07, "12b bf16+KV": 36.88,
        ]
        for (key, gb) in expected { #expect(abs(Self.cell(key).gb - gb) < 0.005, "\(key) \(Self.cell(key).gb)") }
    }

    /// Cells of the whole table within 3% (20 of 32): every raw, Int4 and SFP8 weight cell; every "+KV" cell of
    /// those columns for 1B and 4B, and 27B raw+KV; 4B Int4 blocks=32+KV.
    static let reproducedWithin3Percent: Set<String> = [
        "1b bf16", "1b bf16+KV", "1b int4", "1b int4+KV", "1b sfp8", "1b sfp8+KV",
        "4b bf16", "4b bf16+KV", "4b int4", "4b int4+KV", "4b sfp8", "4b sfp8+KV", "4b int4-b32+KV",
        "12b bf16", "12b int4", "12b sfp8",
        "27b bf16", "27b bf16+KV", "27b int4", "27b sfp8",
    ]

    @Test func table3CellsWithin3Percent() {
        let cells = GemmaReportTable3.reproduction()
        #expect(cells.count == 32)
        for c in cells where Self.reproducedWithin3Percent.contains(Self.key(c)) {
            #expect(abs(c.relativeDifference) <= 0.03, "\(Self.key(c)): ours \(c.gb) GB, report \(c.reportedGB) GB")
        }
    }

    @Test func table3RemainingCellsHaveTheDocumentedResiduals() {
        for c in GemmaReportTable3.reproduction() where !Self.reproducedWithin3Percent.contains(Self.key(c)) {
            let d = c.relativeDifference
            switch (c.size, c.column, c.withKV) {
            case (.b12, _, true), (.b27, _, true):
                // The report's KV is ~2 GB above ours; with the weights' own residual (int4-b32: +0.3 to +0.7 GB)
                // (report - ours) is 1.2 to 2.1 GB.
                #expect(c.reportedGB - c.gb > 1.2 && c.reportedGB - c.gb < 2.1, "\(Self.key(c)) \(c.gb)")
                #expect(d < -0.03 && d > -0.10, "\(Self.key(c)) \(d)")
            case (.b4, .int4Blocks32, false), (.b12, .int4Blocks32, false), (.b27, .int4Blocks32, false):
                // The tensor count as Q4_0 (0.0625 B/param of scales, vision bf16) is above the report's.
                #expect(d > 0.03 && d < 0.08, "\(Self.key(c)) \(d)")
            case (.b1, .int4Blocks32, _):
                #expect(d < -0.03 && d > -0.25, "\(Self.key(c)) \(d)")
            default:
                Issue.record("unexpected residual \(Self.key(c)): \(d)")
            }
        }
    }

    @Test func table3KVIsAllGlobalAndTheSameInEveryColumn() {
        // The report's KV (weights+KV - weights) is the same in every column, as ours is.
        for size in GemmaReportTable3.sizes {
            let kvs = GemmaReportTable3.Column.allCases.map { col -> Double in
                let r = GemmaReportTable3.reported[size]![col]!
                return r.withKV - r.weights
            }
            #expect(kvs.allSatisfy { abs($0 - kvs[0]) < 0.11 }, "\(size) \(kvs)")
            #expect(abs(GemmaReportTable3.reportedKV(size) - kvs[0]) < 1e-9)
            for c in GemmaReportTable3.reproduction() where c.size == size {
                #expect(c.kvBytes == (c.withKV ? Self.configKV(size) : 0))
            }
        }
        // 1B and 4B: the report's KV is the all-global bf16 cache within 3.5% (0.872 vs 0.9, 4.563 vs 4.7).
        for size in [Gemma3Size.b1, .b4] {
            let ours = Double(GemmaReportTable3.kvBytes(size)) / 1e9
            #expect(abs(ours / GemmaReportTable3.reportedKV(size) - 1) < 0.035, "\(size) \(ours)")
        }
        // 12B and 27B: about 2 GB above it (12.885 vs 14.9, 16.643 vs 18.7).
        #expect(abs(Double(GemmaReportTable3.kvBytes(.b12)) / 1e9 - 12.885) < 0.001)
        #expect(abs(Double(GemmaReportTable3.kvBytes(.b27)) / 1e9 - 16.643) < 0.001)
        // The sliding-window cache is far below every reported KV (27B: 3.12 GB vs 18.7).
        for size in GemmaReportTable3.sizes {
            #expect(Double(GemmaReportTable3.plan(size, .bf16).kv.total) / 1e9 < 0.3 * GemmaReportTable3.reportedKV(size))
        }
    }

    @Test func table3UnitIsGBNotGiB() {
        // 1B raw: 2.00 GB (the report's 2.0) = 1.86 GiB; the tensor count (999,885,952 x 2 bytes) is also 2.00 GB.
        let c = Self.cell("1b bf16")
        #expect(abs(c.gb - 2.0) < 0.01)
        #expect(abs(Double(c.bytes) / 1_073_741_824 - 2.0) > 0.1)
        #expect(abs(Double(GemmaReportTable3.plan(.b1, .bf16).weights.total) / 1e9 - 2.0) < 0.01)
    }

    @Test func table3SomeCellPairsCannotBothBeWithin3Percent() {
        // With the published 27B config, the largest KV at 2 bytes (all 62 layers at 32,768 positions, 16 KV heads
        // x 128) is 16.64 GB; weights within 3% of 14.1 are at most 14.52 GB, so weights + KV is at most 31.17 GB,
        // 5% under the report's 32.8: no count of the weights reproduces both int4 cells.
        let maxKV = Double(MemoryPlan(size: .b27, context: 32_768, kv: .bf16).allGlobalKV) / 1e9
        #expect(abs(maxKV - 16.643) < 0.001)
        #expect((14.1 * 1.03 + maxKV) / 32.8 - 1 < -0.03)
        // Likewise 12B: raw within 3% of 24.0 is at most 24.72 GB; + 12.88 GB of KV is 37.60, 3.3% under 38.9.
        let maxKV12 = Double(MemoryPlan(size: .b12, context: 32_768, kv: .bf16).allGlobalKV) / 1e9
        #expect(abs(maxKV12 - 12.885) < 0.001)
        #expect((24.0 * 1.03 + maxKV12) / 38.9 - 1 < -0.03)
    }
}
