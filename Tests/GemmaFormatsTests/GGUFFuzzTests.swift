// Robustness: a valid small GGUF mutated at random tens of thousands of times. Each case must end in a thrown
// FormatError or a clean load whose every tensor's bytes can be read; none may crash, take over 1 s, or make the
// process allocate out of proportion (peak RSS growth is checked against 1 GiB; scripts/test.sh runs this suite in a
// process of its own so that no other test's memory counts).
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct GGUFFuzzTests {
    static let cases = 20_000

    enum Mutation: CaseIterable {
        case bitFlips, truncate, hugeU64, hugeU32, typeID, extend, splice
    }

    /// Values that break counts, lengths, dimensions and offsets.
    static let nasty64: [UInt64] = [0, 1, 31, 32, 33, 255, 1 << 16, 1 << 31, 1 << 32, (1 << 32) - 1, 1 << 40, 1 << 62,
                                    1 << 63, .max, .max - 1, UInt64(Int.max), UInt64(Int.max) / 2 + 1, 0x7FFF_FFFF_FFFF_FFF0]
    static let nasty32: [UInt32] = [0, 1, 3, 4, 5, 9, 12, 13, 15, 29, 30, 31, 39, 42, 100, 1000, 1 << 16, 1 << 31, .max]

    static func mutate(_ input: [UInt8], _ kind: Mutation, _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        guard b.count >= 8 else { return b + rng.bytes(Int.random(in: 0...8, using: &rng)) }
        switch kind {
        case .bitFlips:
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let i = Int.random(in: 0..<b.count, using: &rng)
                b[i] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            }
        case .truncate:
            b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
        case .hugeU64:
            let v = nasty64.randomElement(using: &rng)! &+ (Bool.random(using: &rng) ? 0 : UInt64.random(in: 0...3, using: &rng))
            let i = Int.random(in: 0...(min(b.count, 600) - 8), using: &rng)  // the header: counts, lengths, dims
            withUnsafeBytes(of: v.littleEndian) { for k in 0..<8 { b[i + k] = $0[k] } }
        case .hugeU32, .typeID:
            let v = kind == .typeID ? UInt32.random(in: 0...64, using: &rng) : nasty32.randomElement(using: &rng)!
            let i = Int.random(in: 0...(min(b.count, 600) - 4), using: &rng)
            withUnsafeBytes(of: v.littleEndian) { for k in 0..<4 { b[i + k] = $0[k] } }
        case .extend:
            b += rng.bytes(Int.random(in: 1...300, using: &rng))
        case .splice:
            let i = Int.random(in: 0..<b.count, using: &rng), j = Int.random(in: 0..<b.count, using: &rng)
            let n = Int.random(in: 1...64, using: &rng)
            for k in 0..<n where i + k < b.count && j + k < b.count { b[i + k] = input[j + k] }
        }
        return b
    }

    static func peakRSSBytes() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Int(u.ru_maxrss) * 1024
    }

    @Test func randomMutationsNeverCrashHangOrBalloon() throws {
        let valid = try sampleGGUF()
        _ = try GGUFFile(bytes: valid)
        var rng = SplitMix64(seed: 0x5EED)
        var errors = 0, loads = 0, slowest = Duration.zero
        var byKind: [String: Int] = [:]
        let rssBefore = Self.peakRSSBytes()
        let clock = ContinuousClock()
        for n in 0..<Self.cases {
            let kinds = (0..<Int.random(in: 1...3, using: &rng)).map { _ in Mutation.allCases.randomElement(using: &rng)! }
            var bytes = valid
            for k in kinds { bytes = Self.mutate(bytes, k, &rng); if bytes.isEmpty { break } }
            let start = clock.now
            do {
                let f = try GGUFFile(bytes: bytes)
                // A clean load must give tensors whose bytes all lie inside the file.
                var sum = 0
                for t in f.tensors { for byte in f.data(for: t) { sum &+= Int(byte) } }
                _ = sum
                loads += 1
            } catch {
                errors += 1
                byKind[Mirror(reflecting: error).children.first?.label ?? "\(error)", default: 0] += 1
            }
            let took = clock.now - start
            slowest = max(slowest, took)
            #expect(took < .seconds(1), "case \(n) took \(took)")
        }
        let growth = Self.peakRSSBytes() - rssBefore
        print("fuzz: \(Self.cases) cases, \(errors) thrown errors, \(loads) clean loads, slowest \(slowest), peak RSS growth \(growth / 1024) KiB; errors by kind \(byKind.sorted { $0.key < $1.key })")
        #expect(errors + loads == Self.cases)
        #expect(errors > Self.cases / 4, "mutations should mostly be caught")
        #expect(growth < 1 << 30)
    }

    @Test func hostileCountsDoNotAllocate() throws {
        // Header claiming 2^62 tensors and metadata entries, and an array claiming 2^60 strings.
        var b: [UInt8] = [0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0]
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        u64(1 << 62); u64(1)
        #expect(throws: FormatError.self) { try GGUFFile(bytes: b) }
        b = [0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0]
        u64(0); u64(1); u64(1); b += [0x61]; u32(9); u32(8); u64(1 << 60)
        #expect(throws: FormatError.self) { try GGUFFile(bytes: b) }
        // Deeply nested arrays are refused, not recursed into without bound.
        b = [0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0]
        u64(0); u64(1); u64(1); b += [0x61]; u32(9)
        for _ in 0..<200 { u32(9); u64(1) }
        u32(0); u64(0)
        #expect(throws: FormatError.self) { try GGUFFile(bytes: b) }
    }
}
