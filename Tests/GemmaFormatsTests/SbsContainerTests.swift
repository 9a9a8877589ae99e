// The .sbs container: gemma.cpp's field serialization word for word (hand-written expectations from io/fields.cc and
// util/mat.h's field order), our writer's V2 layout byte for byte where gemma.cpp fixes it, the V1 layout (rebuilt
// here from a V2 file), old data with missing fields and new data with extra words, and hostile files.
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

/// Helpers to build small .sbs files in tests.
enum SbsTestFiles {
    static func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "sbs-test-\(UUID().uuidString)-\(name)"
    }

    /// A small V2 file: an f32 matrix, a bf16 vector, an SFP8 matrix with a scale, config and tokenizer.
    static func small() throws -> [UInt8] {
        let path = temporaryPath("small.sbs")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let w = try SbsWriter(path: path)
        let f32: [Float] = (0..<12).map { Float($0) - 5.5 }
        try f32.withUnsafeBytes { try w.addTensor(name: "linear_w_0", type: .f32, rows: 3, cols: 4, bytes: $0) }
        let bf16: [UInt16] = [0x3f80, 0xbf80, 0x4000, 0x0000, 0x3f00]
        try bf16.withUnsafeBytes { try w.addTensor(name: "c_final_norm", type: .bf16, rows: 1, cols: 5, bytes: $0) }
        let sfp = sfpCodes
        try sfp.withUnsafeBytes { try w.addTensor(name: "qkv_ein_0", type: .sfp, rows: 15, cols: 17, scale: 2.5, bytes: $0) }
        var config = SbsModelConfig()
        config.displayName = "tiny"
        config.numLayers = 1
        try w.finish(config: config, tokenizer: Array("not really a proto".utf8))
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// The same blobs in the V1 layout (directory after the header at the start, no end padding).
    static func v1(from v2: [UInt8]) throws -> [UInt8] {
        let store = try v2.withUnsafeBytes { try SbsBlobStore($0) }
        let n = store.blobs.count
        var out = [UInt8](repeating: 0, count: roundUp(16 + 32 * n))
        var offsets: [Int] = []
        for b in store.blobs {
            offsets.append(out.count)
            out += v2[b.offset..<b.offset + b.size]
            out += [UInt8](repeating: 0, count: roundUp(b.size) - b.size)
        }
        put32(&out, 0, 0x0A53_4253)
        put32(&out, 4, UInt32(n))
        put64(&out, 8, UInt64(out.count))
        for (i, b) in store.blobs.enumerated() {
            for (k, c) in b.name.utf8.enumerated() { out[16 + 16 * i + k] = c }
            put64(&out, 16 + 16 * (n + i), UInt64(offsets[i]))
            put64(&out, 16 + 16 * (n + i) + 8, UInt64(b.size))
        }
        return out
    }

    /// Every SFP8 code but the reserved 0x80 (replaced by 0), in order: 255 bytes.
    static let sfpCodes: [UInt8] = (0..<255).map { (i: Int) -> UInt8 in i == 0x80 ? 0 : UInt8(i) }

    static func roundUp(_ n: Int) -> Int { (n + 255) / 256 * 256 }
    static func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) { for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) } }
    static func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) { for k in 0..<8 { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) } }

    static func open(_ bytes: [UInt8]) throws(FormatError) -> SbsFile {
        try SbsFile(storage: ByteStorage(bytes: bytes))
    }
}

@Suite struct SbsContainerTests {
    /// "c_final_norm" as gemma.cpp's string field: 3 words of 4 ASCII bytes, low byte first.
    static let nameWords: [UInt32] = [0x6966_5f63, 0x5f6c_616e, 0x6d72_6f6e]

    @Test func matPtrSerializesInGemmaCppFieldOrder() throws {
        var w = SbsFieldWriter()
        try w.append(SbsMatPtr(name: "c_final_norm", type: .bf16, rows: 1, cols: 640, scale: 1))
        // payload length, name (count + words), type, element_bytes, num_elements, rows, cols, scale bits, stride.
        #expect(w.words == [11, 3] + Self.nameWords + [2, 2, 640, 1, 640, 0x3f80_0000, 640])
    }

    @Test func oldDataKeepsDefaultsAndNewDataIsSkipped() throws {
        // A MatPtr cut after cols (as if written before scale and stride existed), then one with two unknown words.
        let old: [UInt32] = [9, 3] + Self.nameWords + [3, 1, 6, 2, 3]
        let new: [UInt32] = [13, 3] + Self.nameWords + [1, 4, 6, 2, 3, 0x4020_0000, 3, 77, 78]
        let words = old + new
        let (a, next, r1) = try SbsFieldReader.read(SbsMatPtr.self, from: words, blob: "toc")
        #expect(a.name == "c_final_norm" && a.type == 3 && a.rows == 2 && a.cols == 3)
        #expect(a.scale == 1 && r1.missingFields == 2 && next == old.count)
        let (b, end, r2) = try SbsFieldReader.read(SbsMatPtr.self, from: words, at: next, blob: "toc")
        #expect(b.scale == 2.5 && b.stride == 3 && r2.extraWords == 2 && end == words.count)
    }

    @Test func modelConfigRoundTripsWithNestedLayers() throws {
        let c = SbsModelConfig.gemma3(.b4, weight: .sfp)
        var w = SbsFieldWriter()
        try w.append(c)
        let (back, next, r) = try SbsFieldReader.read(SbsModelConfig.self, from: w.words, blob: "config")
        #expect(back == c && next == w.words.count && r.missingFields == 0 && r.extraWords == 0)
        // The layer configs are nested structs: 34 of them, each with a length word of 15 (fields, bools as words).
        #expect(w.words.count(where: { $0 == 15 }) >= 34)
    }

    @Test func fieldReaderRefusesBadValues() throws {
        func expectBad(_ words: [UInt32], _ fragment: String) {
            #expect {
                _ = try SbsFieldReader.read(SbsMatPtr.self, from: words, blob: "toc")
            } throws: { "\($0)".contains(fragment) }
        }
        expectBad([20, 0], "runs past")                           // struct longer than the data
        expectBad([5, 65] + [UInt32](repeating: 0x41, count: 4), "longer than")   // string of 65 words
        expectBad([3, 3, 0x41, 0], "runs past")                   // string past its struct
        expectBad([2, 1, 0x0000_0000], "zero or not ASCII")       // an all-zero string word
        expectBad([2, 1, 0x0000_00e9], "zero or not ASCII")       // a non-ASCII byte
        var floatWords: [UInt32] = [8, 0, 1, 4, 1, 1, 1, Float.nan.bitPattern, 1]
        expectBad(floatWords, "not a finite")
        floatWords[7] = Float.infinity.bitPattern
        expectBad(floatWords, "not a finite")
        // A config whose bool is 2, and one whose vector claims 2^20 elements.
        // (Word 0 is the length, 1 model_family_version, 2 the empty display_name, ..., 13 absolute_pe,
        // 16 the count of layer_configs.)
        expectBadConfig(field: 13, value: 2, "not a bool")
        expectBadConfig(field: 16, value: 1 << 20, "longer than")
    }

    /// A default ModelConfig with word `field` (counting from the length word) replaced.
    func expectBadConfig(field: Int, value: UInt32, _ fragment: String) {
        var w = SbsFieldWriter()
        try? w.append(SbsModelConfig())
        var words = w.words
        words[field] = value
        #expect {
            _ = try SbsFieldReader.read(SbsModelConfig.self, from: words, blob: "config")
        } throws: { "\($0)".contains(fragment) }
    }

    @Test func writerLayoutIsGemmaCppV2() throws {
        let bytes = try SbsTestFiles.small()
        #expect(bytes.count == 64 * 1024)
        // The placeholder header: magic, no blobs, 64 KiB; zeros to 256.
        #expect(Array(bytes[0..<16]) == [0x53, 0x42, 0x53, 0x0a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0])
        #expect(bytes[16..<256].allSatisfy { $0 == 0 })
        let file = try SbsTestFiles.open(bytes)
        #expect(file.store.layout == .v2)
        #expect(file.store.blobs.map(\.name) == ["linear_w_0", "c_final_norm", "qkv_ein_0", "config", "tokenizer", "toc"])
        #expect(file.store.blobs.map(\.offset) == [256, 512, 768, 1024, 1280, 1536])
        // The real header is the last 16 bytes, the directory the 6 x 32 before it.
        let tail = Array(bytes[(bytes.count - 16)...])
        #expect(tail == [0x53, 0x42, 0x53, 0x0a, 6, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0])
        #expect(Array(bytes[(bytes.count - 16 - 192)..<(bytes.count - 16 - 182)]) == Array("linear_w_0".utf8))
        #expect(file.config?.weight == SbsType.sfp.rawValue && file.config?.displayName == "tiny")
        #expect(file.tokenizerModel == Array("not really a proto".utf8))
        try checkSmallTensors(file)
    }

    func checkSmallTensors(_ file: SbsFile) throws {
        let m = try #require(file.tensor(named: "linear_w_0"))
        #expect(m.type == .f32 && m.rows == 3 && m.cols == 4 && m.scale == 1)
        #expect(Array(m.bytes.bindMemory(to: Float.self)) == (0..<12).map { Float($0) - 5.5 })
        let v = try #require(file.tensor(named: "c_final_norm"))
        #expect(v.type == .bf16 && v.rows == 1 && v.cols == 5 && Array(v.bytes.bindMemory(to: UInt16.self)) == [0x3f80, 0xbf80, 0x4000, 0, 0x3f00])
        let s = try #require(file.tensor(named: "qkv_ein_0"))
        #expect(s.type == .sfp && s.rows == 15 && s.cols == 17 && s.scale == 2.5 && s.bytes.count == 255)
        #expect(Array(s.bytes) == SbsTestFiles.sfpCodes)
    }

    @Test func v1LayoutReadsTheSame() throws {
        let v1 = try SbsTestFiles.v1(from: SbsTestFiles.small())
        let file = try SbsTestFiles.open(v1)
        #expect(file.store.layout == .v1)
        #expect(file.store.blobs.first?.offset == 256)  // 16 + 6 x 32 = 208, rounded up
        try checkSmallTensors(file)
    }

    // MARK: - Hostile files

    func expectError(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) { _ = try SbsTestFiles.open(bytes) } throws: { error in
            let text = "\(error)"
            if !fragment.isEmpty && !text.contains(fragment) { Issue.record("error \"\(text)\" lacks \"\(fragment)\"", sourceLocation: sourceLocation) }
            return error is FormatError
        }
    }

    @Test func truncatedAndBadMagicFilesAreRefused() throws {
        let v2 = try SbsTestFiles.small(), v1 = try SbsTestFiles.v1(from: v2)
        expectError([], "fewer than the 16-byte header")
        expectError(Array(v2.prefix(15)), "fewer than the 16-byte header")
        expectError(Array(v2.prefix(16)), "lists no blobs")  // the placeholder header read as the end header
        for cut in [256, 1000, v2.count - 17, v2.count - 1] { expectError(Array(v2.prefix(cut)), "magic") }
        for cut in [16, 100, 300, v1.count - 1] { expectError(Array(v1.prefix(cut)), "says the file has \(v1.count) bytes but it has \(cut)") }
        var bad = v2
        bad[0] = 0x47
        expectError(bad, "does not start with the magic")
        bad = v2
        bad[bad.count - 16] ^= 1
        expectError(bad, "magic is 0xa534253 at the start and 0xa534252 at the end")
        expectError(v2 + [0], "magic")                            // an extra byte moves the end header
        var longer = v1 + [UInt8](repeating: 0, count: 256)        // V1 with a stale file size
        SbsTestFiles.put64(&longer, 8, UInt64(v1.count))
        expectError(longer, "says the file has \(v1.count) bytes but it has \(v1.count + 256)")
    }

    @Test func badDirectoriesAreRefused() throws {
        let v2 = try SbsTestFiles.small()
        let directory = v2.count - 16 - 6 * 32, ranges = directory + 6 * 16
        func with(_ at: Int, _ v: UInt64) -> [UInt8] { var b = v2; SbsTestFiles.put64(&b, at, v); return b }
        expectError(with(ranges, 0x7fff_ffff_ffff_ff00), "must be at 256")        // offset past the end
        expectError(with(ranges + 16, 256), "must be at 512")                       // overlaps blob 0
        expectError(with(ranges + 8, 0), "size 0")
        expectError(with(ranges + 8, .max), "past the end of the blob area")        // huge size
        expectError(with(ranges + 5 * 16 + 8, 70_000), "past the end of the blob area")  // toc into the directory
        var dup = v2
        for (k, c) in "linear_w_0".utf8.enumerated() { dup[directory + 16 + k] = c }
        for k in 10..<16 { dup[directory + 16 + k] = 0 }
        expectError(dup, "duplicate blob \"linear_w_0\"")
        var empty = v2
        for k in 0..<16 { empty[directory + k] = 0 }
        expectError(empty, "empty key")
        var count = v2                                                             // huge and impossible counts
        SbsTestFiles.put32(&count, v2.count - 12, 1 << 20)
        expectError(count, "more than the 16384")
        SbsTestFiles.put32(&count, v2.count - 12, 2100)
        expectError(count, "needs 67472 bytes")
        var v1 = try SbsTestFiles.v1(from: v2)
        SbsTestFiles.put32(&v1, 4, 16_000)
        expectError(v1, "directory of 16000 blobs")
    }

    @Test func badTablesOfContentsAreRefused() throws {
        let v2 = try SbsTestFiles.small()
        let file = try SbsTestFiles.open(v2)
        let toc = try #require(file.store.blob(named: "toc"))
        // The toc's words: the first MatPtr is linear_w_0 (3 name words): type at word 5, element_bytes 6,
        // num_elements 7, rows 8, cols 9, scale 10.
        func with(_ word: Int, _ v: UInt32) -> [UInt8] { var b = v2; SbsTestFiles.put32(&b, toc.offset + 4 * word, v); return b }
        expectError(with(5, 9), "unknown tensor type id 9")
        expectError(with(5, 2), "element_bytes is 4 but bf16 elements take 2")
        expectError(with(7, 13), "num_elements is 13 but the shape 3 x 4 has 12")
        expectError(with(8, 4), "num_elements is 12 but the shape 4 x 4 has 16")
        expectError(with(9, 0), "is empty")
        expectError(with(10, 0), "scale 0.0 is not positive")
        expectError(with(10, Float.nan.bitPattern), "not a finite number")
        expectError(with(0, 1000), "runs past")
        expectError(with(2, 0x5f5f_5f5f), "has no blob of that name")
    }
}

/// Robustness: small V1 and V2 files mutated at random; each case must end in a thrown FormatError or a file whose
/// every tensor's bytes can be read (all inside the file), never a crash.
@Suite struct SbsFuzzTests {
    @Test func mutatedFilesThrowOrReadCleanly() throws {
        let v2 = try SbsTestFiles.small(), v1 = try SbsTestFiles.v1(from: v2)
        var rng = SplitMix64(seed: 0x5b5)
        var loaded = 0, refused = 0
        let nasty: [UInt64] = [0, 1, 15, 16, 255, 256, 257, 4096, 65_536, 1 << 31, 1 << 32, 1 << 62, .max, .max - 255]
        for i in 0..<6000 {
            let base = i % 2 == 0 ? v1 : v2
            var b = base
            // Where the structure is: V1's header, directory and small blobs; V2's header and its trailing directory.
            let hot = i % 2 == 0 ? 0..<min(b.count, 2048) : (b.count - 16 - 6 * 32)..<b.count
            switch i % 5 {
            case 0:
                for _ in 0..<Int.random(in: 1...6, using: &rng) { b[Int.random(in: hot, using: &rng)] ^= 1 << UInt8.random(in: 0...7, using: &rng) }
            case 1:
                let at = Int.random(in: hot.lowerBound...(hot.upperBound - 8), using: &rng)
                SbsTestFiles.put64(&b, at, nasty.randomElement(using: &rng)!)
            case 2:
                let at = Int.random(in: hot.lowerBound...(hot.upperBound - 4), using: &rng)
                SbsTestFiles.put32(&b, at, UInt32(truncatingIfNeeded: nasty.randomElement(using: &rng)!))
            case 3:
                b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
            default:
                // Mutate the config and toc blobs' words (V2: they sit at 1024 ..< 1792).
                let at = 1024 + 4 * Int.random(in: 0..<150, using: &rng)
                if at + 4 <= b.count { SbsTestFiles.put32(&b, at, UInt32(truncatingIfNeeded: nasty.randomElement(using: &rng)!) &+ UInt32.random(in: 0...3, using: &rng)) }
            }
            do {
                let f = try SbsTestFiles.open(b)
                var sum = 0
                for t in f.tensors { sum &+= t.bytes.reduce(0) { $0 &+ Int($1) } }
                #expect(f.tensors.allSatisfy { $0.bytes.count == $0.rows * $0.cols * $0.type.elementBytes || $0.type == .nuq || $0.type == .i8 })
                _ = sum
                loaded += 1
            } catch {
                refused += 1
            }
        }
        print("sbs fuzz: \(loaded) loaded, \(refused) refused")
        #expect(refused > 1000 && loaded > 100)
    }
}

extension SbsFuzzTests {
    /// The pre-2025 fixture (shapes read off element counts, Fscales) mutated at random: throw or read cleanly.
    @Test func mutatedLegacyFilesThrowOrReadCleanly() throws {
        let base = try [UInt8](Data(contentsOf: URL(fileURLWithPath: TestPaths.fixtures + "/sbs/tiny-legacy.sbs")))
        var rng = SplitMix64(seed: 0x1e6)
        var loaded = 0
        for i in 0..<3000 {
            var b = base
            let at = Int.random(in: 0...(min(b.count, 1024) - 8), using: &rng)  // header, directory (23 blobs: 752 bytes)
            switch i % 4 {
            case 0: b[Int.random(in: 0..<b.count, using: &rng)] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            case 1: SbsTestFiles.put64(&b, at, [0, 1, 256, 4096, 1 << 40, .max].randomElement(using: &rng)!)
            case 2: for k in 0..<4 { b[at + k] = UInt8.random(in: 0x20...0x7e, using: &rng) }  // key characters
            default: b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
            }
            guard let f = try? SbsTestFiles.open(b) else { continue }
            #expect(f.tensors.allSatisfy { $0.bytes.count == $0.rows * $0.cols * $0.type.elementBytes && $0.scale > 0 })
            loaded += 1
        }
        #expect(loaded > 100)
    }
}
