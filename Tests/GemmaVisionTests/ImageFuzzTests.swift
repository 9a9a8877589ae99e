// Hostile images: the fixture JPEGs, PNGs and WebPs mutated at random (seeded): bit flips, truncation, inserted,
// deleted and overwritten runs, spliced copies of the file's own bytes, and edits of the dimensions in the headers
// (PNG IHDR with and without a fixed CRC, JPEG SOF, WebP VP8X / VP8 / VP8L). Every case must end in an RGB image or a
// thrown ImageError (never a crash: libjpeg's and libpng's error paths longjmp back into C, not exit), within a time
// bound, and without the process's peak memory growing out of proportion. Decoded images also go through the
// processor (Pan & Scan on, a small size). The suite runs 3,000 cases; GEMMA_IMAGE_FUZZ_CASES=10000 runs more and
// prints the same report (outcomes by kind and format, slowest case, peak RSS growth); GEMMA_IMAGE_FUZZ_MAX_PIXELS sets
// the decode limit (default 4096 x 4096):
//   GEMMA_IMAGE_FUZZ_CASES=10000 swift test --skip-build -c release --filter ImageFuzzTests
import Foundation
import GemmaTestSupport
import GemmaVision
import Testing

@Suite(.serialized) struct ImageFuzzTests {
    static var cases: Int {
        Int(ProcessInfo.processInfo.environment["GEMMA_IMAGE_FUZZ_CASES"] ?? "") ?? 3000
    }
    /// A limit below the default (PIL's 178,956,970) keeps each case small: headers edited to claim large images
    /// over a few bytes are refused, or decoded in bounded time. The default limit is exercised by the bomb tests.
    static var maxPixels: Int {
        Int(ProcessInfo.processInfo.environment["GEMMA_IMAGE_FUZZ_MAX_PIXELS"] ?? "") ?? 4096 * 4096
    }

    enum Mutation: String, CaseIterable {
        case bitFlips, truncate, insert, delete, overwrite, splice, zeroRun, dimensions, dimensionsKeepCRC
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        let tiny = ["square.jpg", "tall.png"].map { ("gemma3-tiny-vision/images/" + $0, VisionFixtures.tiny + "/images/" + $0) }
        let own = ["progressive.jpg", "cmyk.jpg", "grey.jpg", "orient-6.jpg", "orient-xmp-8.jpg", "interlaced.png",
                   "palette-trns.png", "rgba16.png", "grey16.png", "orient-3-rawprofile.png", "lossy.webp",
                   "lossless.webp", "alpha-lossy.webp", "animated.webp", "orient-6.webp"]
            .map { ("vision-image/" + $0, VisionFixtures.images + "/" + $0) }
        return try (tiny + own).map { ($0.0, try VisionFixtures.bytes($0.1)) }
    }

    static let nastyDims: [UInt32] = [0, 1, 2, 3, 7, 8, 255, 256, 4095, 4096, 4097, 16383, 16384, 65499, 65500, 65535,
                                      65536, 1 << 20, 1 << 24, (1 << 31) - 1, 1 << 31, .max]

    static func mutate(_ b: [UInt8], _ m: Mutation, _ rng: inout SplitMix64) -> [UInt8] {
        var b = b
        guard !b.isEmpty else { return b }
        func pos() -> Int { Int.random(in: 0..<b.count, using: &rng) }
        switch m {
        case .bitFlips:
            for _ in 0..<Int.random(in: 1...8, using: &rng) { b[pos()] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng) }
        case .truncate:
            b.removeLast(Int.random(in: 1...b.count, using: &rng))
        case .insert:
            b.insert(contentsOf: rng.bytes(Int.random(in: 1...64, using: &rng)), at: Int.random(in: 0...b.count, using: &rng))
        case .delete:
            let at = pos()
            b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...64, using: &rng)))
        case .overwrite:
            let at = pos(), n = min(b.count - at, Int.random(in: 1...32, using: &rng))
            b.replaceSubrange(at..<(at + n), with: rng.bytes(n))
        case .splice:
            let from = pos(), n = min(b.count - from, Int.random(in: 1...256, using: &rng))
            b.insert(contentsOf: Array(b[from..<(from + n)]), at: pos())
        case .zeroRun:
            let at = pos()
            for i in at..<min(b.count, at + Int.random(in: 1...512, using: &rng)) { b[i] = 0 }
        case .dimensions, .dimensionsKeepCRC:
            editDimensions(&b, fixCRC: m == .dimensions, &rng)
        }
        return b
    }

    /// Writes nasty or scaled dimensions into the file's header, wherever its format keeps them.
    static func editDimensions(_ b: inout [UInt8], fixCRC: Bool, _ rng: inout SplitMix64) {
        func value(_ original: Int, bits: Int) -> Int {
            let v: Int
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: v = Int(nastyDims.randomElement(using: &rng) ?? 0)
            case 1: v = original * Int.random(in: 2...64, using: &rng)
            default: v = original + Int.random(in: -2...2, using: &rng)
            }
            return max(0, v) & ((1 << bits) - 1)
        }
        func be(_ o: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 << 8 | Int(b[o + $1]) } }
        func putBE(_ o: Int, _ n: Int, _ v: Int) { for k in 0..<n { b[o + k] = UInt8(truncatingIfNeeded: v >> (8 * (n - 1 - k))) } }
        func le(_ o: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(b[o + $1]) << (8 * $1) } }
        func putLE(_ o: Int, _ n: Int, _ v: Int) { for k in 0..<n { b[o + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }
        let which = Int.random(in: 0..<3, using: &rng)  // width, height or both
        if b.count >= 33, b[0] == 0x89, b[1] == 0x50 {  // PNG IHDR at 16 (width), 20 (height), CRC at 29
            if which != 1 { putBE(16, 4, value(be(16, 4), bits: 32)) }
            if which != 0 { putBE(20, 4, value(be(20, 4), bits: 32)) }
            if fixCRC { putBE(29, 4, Int(crc32(Array(b[12..<29])))) }
        } else if b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 {  // JPEG: the first SOFn
            var i = 2
            while i + 9 < b.count {
                guard b[i] == 0xFF else { return }
                let m = b[i + 1]
                if (0xC0...0xCF).contains(m) && ![0xC4, 0xC8, 0xCC].contains(m) {
                    if which != 1 { putBE(i + 7, 2, value(be(i + 7, 2), bits: 16)) }
                    if which != 0 { putBE(i + 5, 2, value(be(i + 5, 2), bits: 16)) }
                    return
                }
                i += 2 + be(i + 2, 2)
            }
        } else if b.count >= 30 {  // WebP: the first chunk after "WEBP"
            let fourcc = String(decoding: b[12..<16], as: UTF8.self)
            switch fourcc {
            case "VP8X":  // canvas width - 1, height - 1: 24 bits each at 24 and 27
                if which != 1 { putLE(24, 3, value(le(24, 3), bits: 24)) }
                if which != 0 { putLE(27, 3, value(le(27, 3), bits: 24)) }
            case "VP8 ":  // key frame: 14-bit width at 26, height at 28 (2 scale bits above)
                if which != 1 { putLE(26, 2, value(le(26, 2), bits: 16)) }
                if which != 0 { putLE(28, 2, value(le(28, 2), bits: 16)) }
            case "VP8L":  // after the 0x2f signature at 20: 14 bits width - 1, 14 bits height - 1
                var bits = le(21, 4)
                if which != 1 { bits = bits & ~0x3FFF | value(bits & 0x3FFF, bits: 14) }
                if which != 0 { bits = bits & ~(0x3FFF << 14) | value(bits >> 14 & 0x3FFF, bits: 14) << 14 }
                putLE(21, 4, bits)
            default: return
            }
        }
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            c ^= UInt32(byte)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }

    static func peakRSSBytes() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Int(u.ru_maxrss) * 1024
    }

    /// The outcome's name: "decoded" or the error's case and format.
    static func kind(_ e: ImageError) -> String {
        switch e {
        case .empty: "empty"
        case .unknownFormat: "unknownFormat"
        case let .unsupportedFormat(name): "unsupportedFormat(\(name))"
        case let .truncated(f, _): "truncated(\(f))"
        case let .corrupt(f, _): "corrupt(\(f))"
        case let .unsupported(f, _): "unsupported(\(f))"
        case let .badDimensions(f, _, _): "badDimensions(\(f))"
        case let .tooManyPixels(f, _, _, _): "tooManyPixels(\(f))"
        case let .resourceLimit(f, _): "resourceLimit(\(f))"
        case .file, .config, .imageCountMismatch: "other"
        }
    }

    @Test func mutatedImagesDecodeOrThrowTypedErrors() throws {
        let seeds = try Self.seeds()
        var options = DecodeOptions()
        options.maxPixels = Self.maxPixels
        for s in seeds { _ = try RGBImage.decode(s.bytes, options: options) }  // the seeds themselves decode
        var config = ImageProcessorConfig()
        config.size = ImageSize(height: 32, width: 32)
        config.doPanAndScan = true
        config.panAndScanMinCropSize = 8
        let processor = ImageProcessor(config: config)

        var rng = SplitMix64(seed: 0x1A6E_F022)
        var outcomes: [String: Int] = [:]
        var slowest = (time: Duration.zero, what: "")
        let rssBefore = Self.peakRSSBytes()
        let clock = ContinuousClock()
        let total = clock.now
        for n in 0..<Self.cases {
            let seed = seeds[n % seeds.count]
            let mutations = (0..<Int.random(in: 1...3, using: &rng)).map { _ in
                Mutation.allCases.randomElement(using: &rng) ?? .bitFlips
            }
            var bytes = seed.bytes
            for m in mutations { bytes = Self.mutate(bytes, m, &rng) }
            let start = clock.now
            let outcome: String
            do {
                let image = try RGBImage.decode(bytes, options: options)
                #expect(image.width * image.height <= Self.maxPixels && image.pixels.count == image.width * image.height * 3)
                let processed = processor.process(image)
                #expect(processed.pixelValues.allSatisfy { $0.values.count == 3 * 32 * 32 })
                outcome = "decoded"
            } catch {
                outcome = Self.kind(error)
                #expect(!error.description.isEmpty)
            }
            outcomes[outcome, default: 0] += 1
            let took = clock.now - start
            let what = "case \(n): \(seed.name) \(mutations.map(\.rawValue)) -> \(outcome)"
            if took > slowest.time { slowest = (took, what) }
            #expect(took < .seconds(Self.maxPixels <= 4096 * 4096 ? 2 : 30), "\(what) took \(took)")
        }
        let elapsed = clock.now - total
        let growth = Self.peakRSSBytes() - rssBefore
        let table = outcomes.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("image fuzz: \(Self.cases) cases in \(elapsed) (\(seeds.count) seed files, limit \(Self.maxPixels) pixels): \(table); slowest \(slowest.time)"
            + " (\(slowest.what)); peak RSS \(Self.peakRSSBytes() >> 20) MiB, growth \(growth >> 20) MiB")
        #expect(outcomes.values.reduce(0, +) == Self.cases)
        #expect((outcomes["decoded"] ?? 0) > 0 && (outcomes["decoded"] ?? 0) < Self.cases)
        #expect(outcomes["other"] == nil)
        #expect(growth < (Self.maxPixels <= 4096 * 4096 ? 1 << 30 : 4 << 30), "peak RSS grew by \(growth >> 20) MiB")
    }
}
