// MemoryPlan: parameter counts against the report's Table 1, the KV split of the sliding-window cache, and the
// reproduction of the report's Table 3 (GB = 10^9 bytes, 32,768 tokens).
import Foundation
import GemmaFormats
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
        #expect(WeightFormat(name: "bf16") == .bf16)
        #expect(WeightFormat(name: "int4") == .int4)
        #expect(WeightFormat(name: "int4-b32") == .int4Blocks32)
        #expect(WeightFormat(name: "SFP8") == .sfp8)
        #expect(WeightFormat(name: "q4_k") == .gguf(.q4_K))
        #expect(WeightFormat(name: "Q8_0") == .gguf(.q8_0))
        #expect(WeightFormat(name: "i32") == nil)
        #expect(WeightFormat(name: "nope") == nil)
        #expect(WeightFormat.int4Blocks32.matrixBytes(rows: 2, columns: 64) == TensorType.q4_0.rowBytes(64)! * 2)
        #expect(WeightFormat.gguf(.q8_0).matrixBytes(rows: 3, columns: 640) == 3 * 680)
        #expect(WeightFormat.gguf(.q4_K).matrixBytes(rows: 1, columns: 512) == 288)
        #expect(WeightFormat.int4.matrixBytes(rows: 10, columns: 640) == 10 * (320 + 2))
        #expect(WeightFormat.sfp8.matrixBytes(rows: 10, columns: 640) == 6400)
        // bf16 weights are 2 bytes per parameter, norms included.
        for size in Gemma3Size.allCases {
            let p = MemoryPlan(size: size, context: 1, weights: .bf16, includeVision: true)
            #expect(p.weights.total == 2 * p.parameters.total)
        }
    }

    @Test func planFromFileMatchesConfig() throws {
        let path = TestPaths.model
        guard FileManager.default.fileExists(atPath: path) else { return }
        let file = try GGUFFile(path: path)
        let config = try Gemma3Config(gguf: file)
        let fromFile = MemoryPlan(config: config, file: file, context: 32_768, kv: .f16)
        let fromConfig = MemoryPlan(config: config, context: 32_768, kv: .f16)
        #expect(fromFile.parameters.total == fromConfig.parameters.total)
        #expect(fromFile.weights.total == file.tensors.reduce(0) { $0 + $1.byteCount })
        #expect(fromFile.kv == fromConfig.kv)
    }

    // MARK: Table 3 of the report

    /// Cells that reproduce within 3% (16 of 32). The others: the 4B weights with the bf16 vision tower (+4 to +8%),
    /// int4-b32 at Q4_0's 16-bit scale per 32 weights (+4 to +5% for 4B-27B; the report's 1B int4-b32 is 0.2 GB over
    /// int4, which no block scale gives), and the 12B/27B "+KV" cells, whose report KV is ~2 GB above any count of
    /// the published configs.
    static let reproducedWithin3Percent: Set<String> = [
        "1b bf16", "1b bf16+KV", "1b int4", "1b int4+KV", "1b sfp8", "1b sfp8+KV",
        "4b int4+KV", "4b int4-b32+KV", "4b sfp8+KV",
        "12b bf16", "12b int4", "12b sfp8",
        "27b bf16", "27b bf16+KV", "27b int4", "27b sfp8",
    ]

    static func key(_ c: GemmaReportTable3.Cell) -> String {
        "\(c.size.rawValue) \(c.column.rawValue)\(c.withKV ? "+KV" : "")"
    }

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
                // Our KV is the report's minus ~2 GB: (report - ours) is 1.2 to 2.6 GB in every column.
                #expect(c.reportedGB - c.gb > 1.2 && c.reportedGB - c.gb < 2.6, "\(Self.key(c)) \(c.gb)")
                #expect(d < -0.03 && d > -0.10, "\(Self.key(c)) \(d)")
            case (.b4, _, _):
                #expect(d > 0.03 && d < 0.08, "\(Self.key(c)) \(d)")  // the bf16 vision tower, 0.85 GB
            case (.b12, .int4Blocks32, false), (.b27, .int4Blocks32, false):
                #expect(d > 0.03 && d < 0.06, "\(Self.key(c)) \(d)")  // 0.0625 B/param of scales vs the report's ~0.044
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
        }
        // 1B and 4B: the report's KV is the all-global bf16 cache within 3.5% (0.87 vs 0.9, 4.56 vs 4.7).
        for size in [Gemma3Size.b1, .b4] {
            let r = GemmaReportTable3.reported[size]![.bf16]!
            let ours = Double(GemmaReportTable3.plan(size, .bf16).allGlobalKV) / 1e9
            #expect(abs(ours / (r.withKV - r.weights) - 1) < 0.035, "\(size) \(ours)")
        }
        // The sliding-window cache is far below every reported KV (27B: 3.12 GB vs 18.7).
        for size in GemmaReportTable3.sizes {
            let r = GemmaReportTable3.reported[size]![.bf16]!
            #expect(Double(GemmaReportTable3.plan(size, .bf16).kv.total) / 1e9 < 0.3 * (r.withKV - r.weights))
        }
    }

    @Test func table3UnitIsGBNotGiB() {
        // 1B raw: 999,885,952 params x 2 bytes = 2.00 GB (the report's 2.0) = 1.86 GiB.
        let p = GemmaReportTable3.plan(.b1, .bf16)
        #expect(abs(Double(p.weights.total) / 1e9 - 2.0) < 0.01)
        #expect(abs(Double(p.weights.total) / 1_073_741_824 - 2.0) > 0.1)
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
