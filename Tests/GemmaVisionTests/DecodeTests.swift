// Decoding against Pillow and transformers: every test image of Tests/Fixtures/vision-image decoded as transformers'
// load_image does it (exif_transpose + convert("RGB")) and, for images with alpha, as its convert_to_rgb composites a
// PIL image over white; the tiny-vision fixture's PNGs and JPEG; and the typed errors for formats not decoded,
// truncated and corrupt files and decompression bombs.
import Foundation
import GemmaTestSupport
import GemmaVision
import Testing

struct DecodeTests {
    /// libjpeg-turbo 2.1.5 (Debian) against the libjpeg-turbo bundled in Pillow 13's wheel: the same ISLOW IDCT and
    /// fancy upsampling, so equal in practice; a bound, not an expectation of difference.
    static let jpegTolerance = 1
    /// Lossy WebP: the same libwebp algorithm (Debian 1.2.4 vs Pillow's bundled libwebp).
    static let lossyWebPTolerance = 1

    struct Case {
        let file: String
        let transformersDecodes: Bool
        let composite: Bool
    }

    static func cases() throws -> [Case] {
        let meta = try VisionFixtures.json(VisionFixtures.images + "/cases.json")
        guard let list = meta["cases"] as? [[String: Any]] else { throw VisionFixtures.FixtureError.malformed("cases") }
        return list.compactMap { c in
            guard let file = c["file"] as? String, let outcome = c["transformers"] as? String else { return nil }
            return Case(file: file, transformersDecodes: outcome == "decoded", composite: c["composite"] as? Bool ?? false)
        }
    }

    static func tolerance(_ file: String) -> Int {
        if file.hasSuffix(".jpg") { return jpegTolerance }
        if file.hasSuffix(".webp") && file.contains("lossy") { return lossyWebPTolerance }
        return 0
    }

    @Test func decodesAsTransformersLoadImage() throws {
        let cases = try Self.cases().filter { $0.transformersDecodes && !$0.file.hasSuffix(".gif") }
        #expect(cases.count >= 40)
        var report: [String] = []
        for c in cases {
            let expected = try VisionFixtures.image(VisionFixtures.references, "decode.\(c.file)")
            let got = try RGBImage(contentsOfFile: VisionFixtures.images + "/" + c.file)
            #expect(got.width == expected.width && got.height == expected.height, "\(c.file): size")
            guard got.width == expected.width, got.height == expected.height else { continue }
            let d = Difference(got.pixels, expected.pixels)
            #expect(d.max <= Self.tolerance(c.file), "\(c.file): \(d)")
            if d.max > 0 { report.append("\(c.file) \(d)") }
        }
        print("decode vs transformers.load_image: \(cases.count) files, \(cases.count - report.count) identical;"
            + " differing: \(report.isEmpty ? "none" : report.joined(separator: "; "))")
    }

    @Test func compositesAlphaOnWhiteAsConvertToRGB() throws {
        let cases = try Self.cases().filter(\.composite)
        #expect(cases.count >= 9)
        var options = DecodeOptions(applyOrientation: false, alpha: .compositeOnWhite)
        options.maxPixels = 1 << 20
        for c in cases {
            let expected = try VisionFixtures.image(VisionFixtures.references, "composite.\(c.file)")
            let got = try RGBImage(contentsOfFile: VisionFixtures.images + "/" + c.file, options: options)
            let d = Difference(got.pixels, expected.pixels)
            #expect(d.max <= Self.tolerance(c.file), "\(c.file): \(d)")
            // And alpha really changes something here (the default drops it).
            let dropped = try RGBImage(contentsOfFile: VisionFixtures.images + "/" + c.file)
            #expect(dropped.pixels != got.pixels, "\(c.file): compositing had no effect")
        }
    }

    @Test func orientationIsAppliedAsExifTranspose() throws {
        // Each orientation of the same JPEG: decoding with orientation equals decoding without it and transposing,
        // and PIL's exif_transpose gives the same pixels (checked in decodesAsTransformersLoadImage).
        let upright = try RGBImage(contentsOfFile: VisionFixtures.images + "/orient-1.jpg")
        #expect(upright.width == 40 && upright.height == 24)
        for n in 1...8 {
            let path = VisionFixtures.images + "/orient-\(n).jpg"
            let raw = try RGBImage(contentsOfFile: path, options: DecodeOptions(applyOrientation: false))
            #expect(raw == upright, "orient-\(n).jpg stores the same pixels")
            let oriented = try RGBImage(contentsOfFile: path)
            #expect(oriented == raw.oriented(n), "orientation \(n)")
            let pil = try VisionFixtures.image(VisionFixtures.references, "decode.orient-\(n).jpg")
            #expect(oriented.width == pil.width && oriented.height == pil.height, "orientation \(n): size")
        }
        // Distinct transposes: the eight results are pairwise different (the pattern has no symmetry).
        let all = try (1...8).map { try RGBImage(contentsOfFile: VisionFixtures.images + "/orient-\($0).jpg") }
        #expect(Set(all.map { $0.pixels }).count == 8)
        // Other carriers of the tag: big-endian EXIF, XMP only, EXIF 1 overriding XMP 6, PNG eXIf / raw profile /
        // XMP, WebP EXIF.
        let expectations: [(String, Int)] = [("orient-6-bigendian.jpg", 6), ("orient-xmp-8.jpg", 8),
                                              ("orient-exif1-xmp6.jpg", 1), ("orient-6.png", 6),
                                              ("orient-3-rawprofile.png", 3), ("orient-5-xmp.png", 5),
                                              ("orient-6.webp", 6)]
        for (file, n) in expectations {
            let path = VisionFixtures.images + "/" + file
            let raw = try RGBImage(contentsOfFile: path, options: DecodeOptions(applyOrientation: false))
            #expect(try RGBImage(contentsOfFile: path) == raw.oriented(n), "\(file): orientation \(n)")
        }
    }

    @Test func fixturePNGsDecodeAsPIL() throws {
        let meta = try VisionFixtures.json(VisionFixtures.images + "/cases.json")
        let refs = try #require(meta["fixture_png_decodes"] as? [String: [String: Any]])
        for name in ["wide.png", "tall.png", "square.png"] {
            let image = try RGBImage(contentsOfFile: VisionFixtures.tiny + "/images/" + name)
            let ref = try #require(refs[name])
            #expect(ref["shape"] as? [Int] == [image.height, image.width, 3], "\(name)")
            #expect(ref["fnv1a64"] as? String == fnv1a64(image.pixels), "\(name)")
        }
    }

    @Test func fixtureJPEGDecodesCloseToPIL() throws {
        let image = try RGBImage(contentsOfFile: VisionFixtures.tiny + "/images/square.jpg")
        let pil = try VisionFixtures.image(VisionFixtures.preprocess, "image.square.jpeg_decoded_u8_hwc")
        #expect(image.width == pil.width && image.height == pil.height)
        let d = Difference(image.pixels, pil.pixels)
        print("square.jpg vs PIL's decode: \(d)")
        #expect(d.max <= Self.jpegTolerance, "\(d)")
    }

    // MARK: errors

    static func decodeError(_ bytes: [UInt8], _ options: DecodeOptions = DecodeOptions()) -> ImageError? {
        do {
            _ = try RGBImage.decode(bytes, options: options)
            return nil
        } catch {
            return error
        }
    }

    @Test func refusesWhatItDoesNotDecode() throws {
        #expect(Self.decodeError([]) == .empty)
        #expect(Self.decodeError(try VisionFixtures.bytes(VisionFixtures.images + "/image.gif"))
            == .unsupportedFormat(name: "GIF"))
        #expect(Self.decodeError(Array("<!DOCTYPE html>".utf8)) == .unknownFormat(leadingBytes: Array("<!DOCTYPE".utf8.prefix(8))))
        #expect(Self.decodeError([0x42, 0x4D, 0, 0, 0, 0]) == .unsupportedFormat(name: "BMP"))
        let e = Self.decodeError(Array("hello".utf8))
        #expect(e?.description.contains("not a JPEG, PNG or WebP image") == true, "\(String(describing: e))")
    }

    @Test func refusesDecompressionBombsBeforeAllocating() throws {
        let limit = DecodeOptions.pilMaxImagePixels
        #expect(Self.decodeError(try VisionFixtures.bytes(VisionFixtures.images + "/bomb.png"))
            == .tooManyPixels(.png, width: 100_000, height: 100_000, limit: limit))
        #expect(Self.decodeError(try VisionFixtures.bytes(VisionFixtures.images + "/bomb.jpg"))
            == .tooManyPixels(.jpeg, width: 65500, height: 65500, limit: limit))
        #expect(Self.decodeError(try VisionFixtures.bytes(VisionFixtures.images + "/bomb.webp"))
            == .tooManyPixels(.webp, width: 16384, height: 16384, limit: limit))
        // A lower limit applies to ordinary files too.
        var small = DecodeOptions()
        small.maxPixels = 100
        for (file, format) in [("rgb8.png", ImageFormat.png), ("orient-1.jpg", .jpeg), ("lossy.webp", .webp)] {
            let bytes = try VisionFixtures.bytes(VisionFixtures.images + "/" + file)
            guard case let .tooManyPixels(f, w, h, l)? = Self.decodeError(bytes, small) else {
                Issue.record("\(file): not refused for its size")
                continue
            }
            #expect(f == format && w * h > 100 && l == 100)
        }
    }

    @Test func truncatedFilesAreTypedErrors() throws {
        for (file, format) in [("rgb8.png", ImageFormat.png), ("interlaced.png", .png), ("orient-1.jpg", .jpeg),
                               ("progressive.jpg", .jpeg), ("lossy.webp", .webp), ("lossless.webp", .webp)] {
            let bytes = try VisionFixtures.bytes(VisionFixtures.images + "/" + file)
            for fraction in [0.1, 0.5, 0.9] {
                let cut = Array(bytes.prefix(Int(Double(bytes.count) * fraction)))
                let e = Self.decodeError(cut)
                guard case let .truncated(f, detail)? = e else {
                    Issue.record("\(file) cut to \(cut.count) bytes: \(String(describing: e))")
                    continue
                }
                #expect(f == format && !detail.isEmpty)
            }
        }
    }

    @Test func corruptFilesAreTypedErrors() throws {
        var png = try VisionFixtures.bytes(VisionFixtures.images + "/rgb8.png")
        png[29] ^= 0xFF  // IHDR's CRC
        guard case .corrupt(.png, let detail)? = Self.decodeError(png) else {
            Issue.record("bad IHDR CRC: \(String(describing: Self.decodeError(png)))")
            return
        }
        #expect(detail.contains("CRC"), "\(detail)")

        // SOI, then an SOF0 marker whose length field is 2 (no room for its fields), then junk.
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x02] + [UInt8](repeating: 0x5A, count: 200)
        if case .corrupt(.jpeg, _)? = Self.decodeError(jpeg) {} else {
            Issue.record("garbage JPEG: \(String(describing: Self.decodeError(jpeg)))")
        }

        var webp = try VisionFixtures.bytes(VisionFixtures.images + "/lossy.webp")
        for i in 12..<min(webp.count, 40) { webp[i] = 0xEE }
        if case .corrupt(.webp, _)? = Self.decodeError(webp) {} else {
            Issue.record("garbage WebP: \(String(describing: Self.decodeError(webp)))")
        }
    }
}
