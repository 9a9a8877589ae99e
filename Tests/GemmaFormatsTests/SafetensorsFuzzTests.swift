// Robustness: valid safetensors files (the library-written file with every dtype, and the tiny Gemma 3 bf16
// checkpoint) mutated at random 10,000 times, in their bytes (bit flips, truncation, appended and spliced bytes, the
// header length) and in their header's JSON (numbers, dtypes, shapes, offsets, repeated or dropped entries and fields,
// punctuation). Each case must end in a thrown FormatError or a clean load whose every tensor's bytes lie inside the
// file and can be read; none may crash, take over 1 s, or make the process allocate out of proportion (peak RSS growth
// is checked against 1 GiB; scripts/test.sh runs this suite in a process of its own so that no other test's memory
// counts).
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

@Suite(.serialized) struct SafetensorsFuzzTests {
    static let cases = 10_000

    enum Mutation: String, CaseIterable {
        // On the file's bytes.
        case bitFlips, truncate, extend, splice, headerLength, randomRun
        // On the header's text, with the length field rewritten to match (mostly).
        case number, dtype, shape, punctuation
        // On the header's JSON entries, written back as compact JSON.
        case duplicateEntry, dropEntry, swapValues, duplicateField, copyOffsets, renameEntry
    }

    static let nastyNumbers = ["0", "1", "-1", "-0", "7", "9", "255", "4294967296", "9007199254740992", "9007199254740993",
                               "18446744073709551615", "18446744073709551616", "1e308", "1e400", "-1e400", "0.5", "1.0",
                               "2e0", "100000000", "99999999999999999999999999"]
    static let nastyDTypes = SafetensorsDType.allCases.map(\.rawValue) + ["", "F128", "f32", "BF16 ", "U8\\u0000", "Ω", "\\\""]
    static let nastyShapes = ["[]", "[0]", "[1]", "[3,0]", "[1,1,1,1,1,1,1,1,1]", "[4294967296,4294967296]", "[-1]", "[\"1\"]",
                              "[[1]]", "[1.5]", "null", "{}", "[9007199254740992,2]", "[0,18446744073709551616]",
                              String(repeating: "[", count: 70)]
    static let nasty64: [UInt64] = [0, 1, 2, 7, 8, 9, 100_000_000, 100_000_001, 1 << 31, 1 << 32, 1 << 62, 1 << 63, .max, .max - 7]

    /// The header's text and the bytes after it, when the length field fits the file.
    static func split(_ b: [UInt8]) -> (header: [UInt8], data: ArraySlice<UInt8>)? {
        guard b.count >= 8 else { return nil }
        let n = b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian }
        guard n <= UInt64(b.count - 8) else { return nil }
        return (Array(b[8..<(8 + Int(n))]), b[(8 + Int(n))...])
    }

    static func join(_ header: [UInt8], _ data: ArraySlice<UInt8>, length: UInt64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(header.count)).littleEndian) { out += $0 }
        return out + header + data
    }

    /// Ranges of `text` right after each occurrence of `marker`, up to (not including) the first `end` byte.
    static func spans(_ text: [UInt8], after marker: String, until end: UInt8) -> [Range<Int>] {
        let m = Array(marker.utf8)
        var out: [Range<Int>] = []
        var i = 0
        while i + m.count <= text.count {
            if text[i..<(i + m.count)].elementsEqual(m) {
                let start = i + m.count
                var j = start
                while j < text.count, text[j] != end { j += 1 }
                if j < text.count { out.append(start..<j) }
                i = j
            } else { i += 1 }
        }
        return out
    }

    static func mutateText(_ h: [UInt8], _ kind: Mutation, _ rng: inout SplitMix64) -> [UInt8] {
        var h = h
        switch kind {
        case .number:
            var runs: [Range<Int>] = []
            var i = 0
            while i < h.count {
                guard (0x30...0x39).contains(h[i]) else { i += 1; continue }
                let s = i
                while i < h.count, (0x30...0x39).contains(h[i]) { i += 1 }
                runs.append(s..<i)
            }
            guard let r = runs.randomElement(using: &rng) else { return h }
            let old = Int(String(decoding: h[r], as: UTF8.self)) ?? 0
            let replacement = Bool.random(using: &rng) ? nastyNumbers.randomElement(using: &rng)!
                : String(old &+ Int.random(in: -9...9, using: &rng))  // off by a few: sizes and offsets
            h.replaceSubrange(r, with: Array(replacement.utf8))
        case .dtype:
            guard let r = spans(h, after: "\"dtype\":\"", until: UInt8(ascii: "\"")).randomElement(using: &rng) else { return h }
            h.replaceSubrange(r, with: Array(nastyDTypes.randomElement(using: &rng)!.utf8))
        case .shape:
            guard let r = spans(h, after: "\"shape\":", until: UInt8(ascii: "]")).randomElement(using: &rng) else { return h }
            h.replaceSubrange(r.lowerBound..<(r.upperBound + 1), with: Array(nastyShapes.randomElement(using: &rng)!.utf8))
        case .punctuation:
            let chars = Array("{}[],:\"\\ 0-e.".utf8) + [0, 0x80, 0xFF]
            let i = Int.random(in: 0...h.count, using: &rng)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: h.insert(chars.randomElement(using: &rng)!, at: i)
            case 1: if i < h.count { h.remove(at: i) }
            default: if i < h.count { h[i] = chars.randomElement(using: &rng)! }
            }
        default: break
        }
        return h
    }

    static func mutateEntries(_ h: [UInt8], _ kind: Mutation, _ rng: inout SplitMix64) -> [UInt8] {
        guard case var .object(pairs)? = try? JSONValue.parse(h), pairs.count >= 2 else { return h }
        let i = Int.random(in: 0..<pairs.count, using: &rng), j = Int.random(in: 0..<pairs.count, using: &rng)
        switch kind {
        case .duplicateEntry: pairs.insert(pairs[i], at: Int.random(in: 0...pairs.count, using: &rng))
        case .dropEntry: pairs.remove(at: i)
        case .swapValues:
            let v = pairs[i].1
            pairs[i].1 = pairs[j].1
            pairs[j].1 = v
        case .renameEntry: pairs[i].0 = ["__metadata__", "", pairs[j].0, pairs[i].0 + "\u{0}"].randomElement(using: &rng)!
        case .duplicateField, .copyOffsets:
            guard case var .object(fields) = pairs[i].1, !fields.isEmpty else { return h }
            if kind == .duplicateField {
                fields.append(fields.randomElement(using: &rng)!)
            } else if let offsets = pairs[j].1["data_offsets"], let k = fields.firstIndex(where: { $0.0 == "data_offsets" }) {
                fields[k].1 = offsets  // two tensors over the same bytes
            }
            pairs[i].1 = .object(fields)
        default: break
        }
        return Array(JSONValue.object(pairs).serialized.utf8)
    }

    static func mutate(_ input: [UInt8], _ kind: Mutation, _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        guard b.count >= 8 else { return b + rng.bytes(Int.random(in: 0...8, using: &rng)) }
        switch kind {
        case .bitFlips:
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let i = Int.random(in: 0..<min(b.count, 4096), using: &rng)  // mostly the header
                b[i] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            }
        case .truncate: b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
        case .extend: b += rng.bytes(Int.random(in: 1...300, using: &rng))
        case .splice:
            let i = Int.random(in: 0..<b.count, using: &rng), j = Int.random(in: 0..<b.count, using: &rng)
            for k in 0..<Int.random(in: 1...64, using: &rng) where i + k < b.count && j + k < b.count { b[i + k] = input[j + k] }
        case .headerLength:
            let old = b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian }
            let v = Bool.random(using: &rng) ? nasty64.randomElement(using: &rng)! : old &+ UInt64(bitPattern: Int64.random(in: -9...9, using: &rng))
            withUnsafeBytes(of: v.littleEndian) { for k in 0..<8 { b[k] = $0[k] } }
        case .randomRun:
            let i = Int.random(in: 8..<max(9, min(b.count, 2048)), using: &rng)
            for k in 0..<Int.random(in: 1...16, using: &rng) where i + k < b.count { b[i + k] = UInt8.random(in: 0...255, using: &rng) }
        case .number, .dtype, .shape, .punctuation, .duplicateEntry, .dropEntry, .swapValues, .duplicateField, .copyOffsets,
             .renameEntry:
            guard let parts = split(b) else { return mutate(b, .bitFlips, &rng) }
            let text: [Mutation] = [.number, .dtype, .shape, .punctuation]
            let mutated = text.contains(kind) ? mutateText(parts.header, kind, &rng) : mutateEntries(parts.header, kind, &rng)
            // Now and then the old length stays: the header then ends early or runs into the data.
            let keepLength = Int.random(in: 0..<10, using: &rng) == 0
            b = join(mutated, parts.data, length: keepLength ? UInt64(parts.header.count) : nil)
        }
        return b
    }

    /// Checks a clean load: every tensor's bytes inside the file, readable; returns a checksum so the reads happen.
    static func readEverything(_ f: SafetensorsFile) -> Int {
        let file = f.storage.buffer
        var sum = 0
        for name in f.tensorNames {
            guard let t = f.sourceTensor(named: name), let p = t.bytes.baseAddress, let base = file.baseAddress else {
                Issue.record("tensor \(name) listed but not readable")
                continue
            }
            #expect(p >= base + f.dataOffset && p + t.bytes.count <= base + file.count, "tensor \(name) outside the file")
            for byte in t.bytes { sum &+= Int(byte) }
        }
        for r in f.dataRegions {
            #expect(r.bytes.baseAddress == file.baseAddress.map { $0 + f.dataOffset } && f.dataOffset + r.bytes.count == file.count)
        }
        return sum
    }

    @Test func randomMutationsNeverCrashHangOrBalloon() throws {
        let bases = [try SafetensorsFixtures.bytes(SafetensorsFixtures.dtypes), try SafetensorsFixtures.bytes(SafetensorsFixtures.bf16)]
        for b in bases { #expect(Self.readEverything(try SafetensorsFile(bytes: b)) != 0) }
        var rng = SplitMix64(seed: 0x5AFE)
        var errors = 0, loads = 0, slowest = Duration.zero, slowestCase = -1
        var byKind: [String: Int] = [:]
        let rssBefore = GGUFFuzzTests.peakRSSBytes()
        let clock = ContinuousClock()
        for n in 0..<Self.cases {
            var bytes = bases[Int.random(in: 0..<10, using: &rng) == 0 ? 1 : 0]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                bytes = Self.mutate(bytes, Mutation.allCases.randomElement(using: &rng)!, &rng)
                if bytes.isEmpty { break }
            }
            let start = clock.now
            do {
                _ = Self.readEverything(try SafetensorsFile(bytes: bytes))
                loads += 1
            } catch {
                errors += 1
                byKind[Mirror(reflecting: error).children.first?.label ?? "\(error)", default: 0] += 1
            }
            let took = clock.now - start
            if took > slowest { (slowest, slowestCase) = (took, n) }
            #expect(took < .seconds(1), "case \(n) took \(took)")
        }
        let peak = GGUFFuzzTests.peakRSSBytes()
        let growth = peak - rssBefore
        print("safetensors fuzz: \(Self.cases) cases, \(errors) thrown errors, \(loads) clean loads, slowest \(slowest) (case \(slowestCase)), peak RSS \(peak / 1024) KiB, growth \(growth / 1024) KiB during the cases; errors by kind \(byKind.sorted { $0.key < $1.key })")
        #expect(errors + loads == Self.cases)
        #expect(errors > Self.cases / 4, "mutations should mostly be caught")
        #expect(loads > Self.cases / 100, "some mutations keep the file valid (reordered JSON, renamed tensors)")
        #expect(growth < 1 << 30)
    }

    @Test func hostileSizesDoNotAllocate() throws {
        // A header length of 2^63, and just under the format's limit, with a 16-byte file: refused before any copy.
        for n: UInt64 in [1 << 63, 99_999_999] {
            #expect(throws: FormatError.self) { try SafetensorsFile(bytes: safetensorsBytes("{}", length: n) + [UInt8](repeating: 32, count: 6)) }
        }
        // Element counts of 2^53 per dimension whose product is zero: a valid empty tensor, nothing allocated.
        let empty = try SafetensorsFile(bytes: safetensorsBytes(#"{"a":{"dtype":"F64","shape":[9007199254740992,0,9007199254740992],"data_offsets":[0,0]}}"#))
        #expect(empty.sourceTensor(named: "a")?.bytes.count == 0)
        // Many tensors: 20,000 empty ones in one header.
        let many = (0..<20_000).map { #""t\#($0)":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}"# }.joined(separator: ",")
        let f = try SafetensorsFile(bytes: safetensorsBytes("{" + many + "}"))
        #expect(f.tensors.count == 20_000 && f.tensor(named: "t19999")?.byteCount == 0)
        // A header of 10 MB of padding after a valid object.
        let padded = try SafetensorsFile(bytes: safetensorsBytes("{}" + String(repeating: " ", count: 10_000_000)))
        #expect(padded.tensors.isEmpty && padded.dataOffset == 10_000_010)
    }
}
