// Resizing against Pillow: PIL.Image.resize of a test pattern with each of PIL's five convolution filters, down and
// up, one axis at a time, and in both of Pillow 13's pass orders.
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
}
