// Resizing against Pillow and transformers: PIL.Image.resize of a test pattern with each of PIL's five convolution
// filters, down and up, one axis at a time; and the tiny-vision fixture's resized uint8 tensors (both transformers
// backends, with and without Pan & Scan, at 224 and at the released models' 896).
import GemmaTestSupport
import GemmaVision
import Testing

struct ResizeTests {
    static let sizes = [(40, 30), (150, 90), (97, 20), (33, 61), (13, 7), (90, 20), (120, 30)]

    @Test(arguments: ResampleFilter.allCases)
    func resizeEqualsPIL(filter: ResampleFilter) throws {
        let source = try VisionFixtures.image(VisionFixtures.references, "resize.source")
        #expect(source.width == 97 && source.height == 61)
        for (w, h) in Self.sizes {
            let expected = try VisionFixtures.image(VisionFixtures.references, "resize.\(filter.rawValue).\(w)x\(h)")
            let got = source.resized(width: w, height: h, filter: filter)
            #expect(got.width == w && got.height == h)
            let d = Difference(got.pixels, expected.pixels)
            #expect(d.max == 0, "\(filter) \(w)x\(h): \(d)")
        }
        #expect(source.resized(width: 97, height: 61, filter: filter) == source)
    }

    /// The fixture's tensors: N images (the original, then the crops), each [3, size, size].
    static func fixtureImages(_ name: String, count: Int) throws -> [RGBImage] {
        try (0..<count).map { try VisionFixtures.chwImage(VisionFixtures.preprocess, name, index: $0) }
    }

    @Test(arguments: [("wide", 3), ("tall", 2), ("square", 0)])
    func resizedLikeTransformersAt224(image: String, crops: Int) throws {
        let decoded = try RGBImage(contentsOfFile: VisionFixtures.tiny + "/images/\(image).png")
        let processor = try ImageProcessor(folder: VisionFixtures.tiny)
        for pas in [false, true] {
            let (ours, boxes) = processor.resizedImages(decoded, panAndScan: pas)
            let n = pas ? crops + 1 : 1
            #expect(ours.count == n && boxes.count == n - 1, "\(image) pas\(pas ? 1 : 0)")
            guard ours.count == n else { continue }
            let tag = "\(image).pas\(pas ? 1 : 0)"
            let pil = try Self.fixtureImages("resized_u8.\(image).pil.pas\(pas ? 1 : 0)", count: n)
            let tv = try Self.fixtureImages("resized_u8.\(image).tv.pas\(pas ? 1 : 0)", count: n)
            var tvMax = 0, tvMean = 0.0
            for i in 0..<n {
                let dPIL = Difference(ours[i].pixels, pil[i].pixels)
                #expect(dPIL.max == 0, "\(tag)[\(i)] vs pil: \(dPIL)")
                let dTV = Difference(ours[i].pixels, tv[i].pixels)
                #expect(dTV.max <= 1, "\(tag)[\(i)] vs tv: \(dTV)")
                tvMax = max(tvMax, dTV.max)
                tvMean += dTV.mean / Double(n)
            }
            print("resize \(tag) at 224: \(n) images, pil max 0, tv max \(tvMax) mean \(tvMean)")
        }
    }

    @Test func resizedLikeTransformersAt896() throws {
        let decoded = try RGBImage(contentsOfFile: VisionFixtures.tiny + "/images/wide.png")
        var config = try ImageProcessorConfig.load(folder: VisionFixtures.tiny)
        config.size = ImageSize(height: 896, width: 896)
        let ours = ImageProcessor(config: config).resizedImages(decoded).images
        #expect(ours.count == 1 && ours[0].width == 896 && ours[0].height == 896)
        let pil = try VisionFixtures.chwImage(VisionFixtures.preprocess, "resized_u8_896.wide.pil.pas0", index: 0)
        let tv = try VisionFixtures.chwImage(VisionFixtures.preprocess, "resized_u8_896.wide.tv.pas0", index: 0)
        let dPIL = Difference(ours[0].pixels, pil.pixels), dTV = Difference(ours[0].pixels, tv.pixels)
        print("resize wide at 896 (upscale 1000x400 -> 896x896): vs pil \(dPIL); vs tv \(dTV)")
        #expect(dPIL.max == 0, "\(dPIL)")
        #expect(dTV.max <= 1, "\(dTV)")
    }
}
