// SFP8 (gemma.cpp's switched floating point) against Tests/Fixtures/sfp8-reference.json, made by
// scripts/reference/make_sfp8_refs.py from an executable description of the format (scripts/reference/sfp8.py):
// the 256 codes' values, gemma.cpp's golden vectors, the round trip of every code, and 1M pseudo-random weights
// encoded with the tensor scale and compared byte for byte (hash and histogram) with the reference encoder.
import GemmaFormats
import GemmaKernels
import GemmaTestSupport
import Testing

@Suite struct SFP8Tests {
    let reference: [String: Any]
    init() throws { reference = try #require(TestPaths.json("sfp8-reference.json") as? [String: Any]) }

    @Test func everyCodeDecodesAsTheReference() throws {
        let bits = try #require(reference["decoded_bits"] as? [Int])
        #expect(bits.count == 256)
        for c in 0..<256 {
            #expect(SFP8.decode(UInt8(c)).bitPattern == UInt32(bits[c]), "code \(c)")
            #expect(SFP8.table[c].bitPattern == UInt32(bits[c]))
        }
        // The bounds of formats.md 1.1.
        #expect(SFP8.decode(0x7f) == 1.875 && SFP8.decode(0xff) == -1.875)
        #expect(SFP8.decode(0x01) == 1.25 * 0x1p-23 && SFP8.decode(0x00) == 0)
        #expect(Set((0..<256).filter { $0 != 0x80 }.map { SFP8.decode(UInt8($0)) }).count == 255)
    }

    @Test func goldenVectorsOfGemmaCpp() throws {
        let golden = try #require(reference["golden"] as? [[String: Any]])
        #expect(golden.count == 40)
        for g in golden {
            let x = Float(try #require(g["input"] as? Double)), want = try #require(g["decoded"] as? Double)
            let code = SFP8.encode(x)
            #expect(Int(code) == (g["code"] as? Int), "encode(\(x))")
            #expect(Double(SFP8.decode(code)) == want, "decode(encode(\(x)))")
        }
    }

    @Test func everyCodeRoundTrips() {
        for c in 0..<256 where c != 0x80 {
            #expect(SFP8.encode(SFP8.decode(UInt8(c))) == UInt8(c), "code \(c)")
        }
    }

    /// 2 x 512K weights over 2^-26 ... 2^1 (one set with the tensor scale, one clamped at 1.875): the encoder's bytes
    /// hash to the reference encoder's, and the kernels' vectorized bf16 decoding agrees with `SFP8.bits`.
    @Test func millionRandomWeightsEncodeAsTheReference() throws {
        let sets = try #require(reference["random"] as? [[String: Any]])
        #expect(sets.count == 2)
        for set in sets {
            let seed = UInt64(try #require(set["seed"] as? Int)), count = try #require(set["count"] as? Int)
            let exponents = UInt64(try #require(set["exponents"] as? Int)), scaled = try #require(set["scaled"] as? Bool)
            var r = SplitMix64(seed: seed)
            let w: [Float] = (0..<count).map { _ in
                let u = r.next(), e = Int64((u >> 32) % exponents) - 26
                return Float(bitPattern: UInt32(u >> 63) << 31 | UInt32(e + 127) << 23 | UInt32(u & 0x7f_ffff))
            }
            let scale = scaled ? w.withUnsafeBufferPointer { SFP8.tensorScale($0) } : 1
            #expect(Int(scale.bitPattern) == (set["scale_bits"] as? Int))
            var codes = [UInt8](repeating: 0, count: count)
            SFP8.encode(w, count: count, scale: scale, into: &codes)
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            var histogram = [Int](repeating: 0, count: 256)
            for b in codes {
                hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3
                histogram[Int(b)] += 1
            }
            #expect(Array(codes.prefix(64)).map(Int.init) == (set["first_codes"] as? [Int]))
            #expect(histogram == (set["histogram"] as? [Int]))
            #expect(String(hash, radix: 16).leftPadded(16) == (set["fnv1a64"] as? String), "seed \(seed)")
            #expect(histogram[0x80] == 0)

            var bf16 = [UInt16](repeating: 0, count: count)
            decodeSFP8ToBF16(codes, count, into: &bf16)
            var mismatches = 0
            for i in 0..<count where UInt32(bf16[i]) << 16 != SFP8.bits(codes[i]) { mismatches += 1 }
            #expect(mismatches == 0)
        }
    }
}

private extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
