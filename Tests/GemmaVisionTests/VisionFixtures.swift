// Where the vision tests' reference data lives and how it is read: the transformers fixture of the tiny Gemma 3
// vision model (Tests/Fixtures/gemma3-tiny-vision) and the decoding references made by Pillow and transformers
// (Tests/Fixtures/vision-image, scripts/reference/make_vision_image_refs.py). uint8 tensors come through
// GemmaFormats' safetensors reader.
import Foundation
import GemmaFormats
import GemmaTestSupport
import GemmaVision
import Testing

enum VisionFixtures {
    static let tiny = TestPaths.fixtures + "/gemma3-tiny-vision"
    static let images = TestPaths.fixtures + "/vision-image"

    static func bytes(_ path: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func json(_ path: String) throws -> [String: Any] {
        let any = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        guard let object = any as? [String: Any] else { throw FixtureError.malformed(path) }
        return object
    }

    /// The image references (decode.*, composite.*, resize.*).
    static let references: SafetensorsFile? = try? SafetensorsFile(path: images + "/references.safetensors")
    /// transformers' preprocessing outputs (resized_u8.*, image.square.jpeg_decoded_u8_hwc).
    static let preprocess: SafetensorsFile? = try? SafetensorsFile(path: tiny + "/preprocess.safetensors")

    /// A uint8 tensor's shape and bytes.
    static func u8(_ file: SafetensorsFile?, _ name: String) throws -> (shape: [Int], data: [UInt8]) {
        guard let file else { throw FixtureError.missing("safetensors file for \(name)") }
        guard let info = file.tensor(named: name) else { throw FixtureError.missing(name) }
        guard info.dtype == .U8 else { throw FixtureError.malformed("\(name) is \(info.dtype), not U8") }
        return (info.shape, Array(file.data(for: info)))
    }

    /// An HWC uint8 reference as an RGBImage.
    static func image(_ file: SafetensorsFile?, _ name: String) throws -> RGBImage {
        let t = try u8(file, name)
        guard t.shape.count == 3, t.shape[2] == 3 else { throw FixtureError.malformed("\(name) shape \(t.shape)") }
        return RGBImage(width: t.shape[1], height: t.shape[0], pixels: t.data)
    }

    /// Image `index` of an [N, 3, H, W] uint8 tensor, as an HWC RGBImage.
    static func chwImage(_ file: SafetensorsFile?, _ name: String, index: Int) throws -> RGBImage {
        let t = try u8(file, name)
        guard t.shape.count == 4, t.shape[1] == 3, index < t.shape[0] else {
            throw FixtureError.malformed("\(name) shape \(t.shape)")
        }
        let h = t.shape[2], w = t.shape[3], plane = h * w
        var hwc = [UInt8](repeating: 0, count: 3 * plane)
        let base = index * 3 * plane
        for c in 0..<3 { for i in 0..<plane { hwc[3 * i + c] = t.data[base + c * plane + i] } }
        return RGBImage(width: w, height: h, pixels: hwc)
    }

    enum FixtureError: Error { case missing(String), malformed(String) }
}

/// Largest and mean absolute difference of two equally sized byte arrays.
struct Difference: CustomStringConvertible {
    var max = 0
    var mean = 0.0
    var differing = 0

    init(_ a: [UInt8], _ b: [UInt8]) {
        precondition(a.count == b.count, "Difference: sizes \(a.count) and \(b.count)")
        var sum = 0
        for i in 0..<a.count {
            let d = abs(Int(a[i]) - Int(b[i]))
            sum += d
            if d > max { max = d }
            if d != 0 { differing += 1 }
        }
        mean = a.isEmpty ? 0 : Double(sum) / Double(a.count)
    }

    var description: String { "max \(max), mean \(String(format: "%.4f", mean)), \(differing) values differ" }
}

/// FNV-1a 64 of bytes, as hex (the reference script's checksum).
func fnv1a64(_ bytes: [UInt8]) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    let s = String(h, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}
