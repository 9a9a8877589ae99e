// Hostile data: URLs (what a server client sends as an image_url): seeded mutations of the fixture images' data URLs
// (the header, the base64 text, the image bytes inside), each read by ImageSource and decoded by GemmaVision. Every
// case must end in bytes that decode, or a typed error (ImageSourceError, ImageError), never a crash; the counts by
// outcome are printed. GEMMA_DATA_URL_FUZZ_CASES sets the number of cases (default 2,000).
import Foundation
import GemmaGenerate
import GemmaTestSupport
import GemmaVision
import Testing

@Suite struct DataURLFuzzTests {
    static let images = ["wide.png", "tall.png", "square.png", "square.jpg"].compactMap {
        FileManager.default.contents(atPath: TestPaths.fixtures + "/gemma3-tiny-vision/images/" + $0).map(Array.init)
    }

    @Test func mutatedDataURLsDecodeOrFailClearly() throws {
        try #require(Self.images.count == 4)
        let cases = Int(ProcessInfo.processInfo.environment["GEMMA_DATA_URL_FUZZ_CASES"] ?? "") ?? 2000
        var r = SplitMix64(seed: 0xDA7A)
        var outcomes: [String: Int] = [:]
        let headers = ["data:image/png;base64,", "data:image/jpeg;base64,", "data:;base64,", "data:image/png,", "data:base64,",
                       "data:image/png;BASE64,", "data:image/png;charset=utf-8;base64,", "data:", "data:image/png;base64"]
        for i in 0..<cases {
            var bytes = Self.images[Int(r.next() % 4)]
            // Mutate the image bytes (bit flips, a cut, a splice of random bytes) in half of the cases.
            if i % 2 == 0 {
                for _ in 0..<Int(r.next() % 8) { let k = Int(r.next() % UInt64(bytes.count)); bytes[k] ^= UInt8(1 << (r.next() % 8)) }
                if r.next() % 3 == 0 { bytes = Array(bytes.prefix(Int(r.next() % UInt64(bytes.count)))) }
                if r.next() % 5 == 0 { bytes.insert(contentsOf: r.bytes(Int(r.next() % 64)), at: Int(r.next() % UInt64(bytes.count + 1))) }
            }
            var text = Array(Data(bytes).base64EncodedString().utf8)
            // Mutate the base64 text (stray characters, padding, whitespace, a cut) in a third of the cases.
            if i % 3 == 0 && !text.isEmpty {
                let junk: [UInt8] = Array("=!*%\n \t-_.AZaz09+/".utf8)
                for _ in 0..<Int(r.next() % 6) { text[Int(r.next() % UInt64(text.count))] = junk[Int(r.next() % UInt64(junk.count))] }
                if r.next() % 4 == 0 { text = Array(text.prefix(Int(r.next() % UInt64(text.count)))) }
            }
            let url = headers[i % 7 == 0 ? Int(r.next() % UInt64(headers.count)) : 0] + String(decoding: text, as: UTF8.self)
            let outcome: String
            do {
                let b = try ImageSource.bytes(of: url)
                let image = try RGBImage.decode(b, options: DecodeOptions(maxPixels: 50_000_000))
                #expect(image.width > 0 && image.height > 0 && image.pixels.count == 3 * image.width * image.height)
                outcome = "decoded"
            } catch let e as ImageSourceError {
                outcome = "source: " + String(String(describing: e).prefix(28))
            } catch let e as ImageError {
                outcome = "image: " + String(String(describing: e).split(separator: ":").first?.split(separator: "(").first ?? "")
            } catch {
                Issue.record("untyped error \(error) for case \(i)")
                outcome = "untyped"
            }
            outcomes[outcome, default: 0] += 1
        }
        print("data: URL fuzz, \(cases) cases:", outcomes.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        #expect(outcomes["untyped"] == nil)
        #expect((outcomes["decoded"] ?? 0) > 0 && outcomes.count > 3, "the mutations should reach both decodes and errors")
    }
}
