// The image processor's settings as a checkpoint states them: preprocessor_config.json (Gemma3ImageProcessor's keys,
// HF names in camelCase) and processor_config.json (image_seq_length), with transformers 5.23's defaults where a key is
// absent or null: Gemma3ImageProcessor's class attributes (224x224, BILINEAR, rescale 1/255, IMAGENET_STANDARD mean and
// std 0.5, every step on) and Gemma3Processor's `images_kwargs` for Pan & Scan (off, min crop 256, at most 4 crops,
// ratio 1.2; the released configs leave these null). Gemma3Processor passes those four as call arguments, so through
// the processor they win even over non-null config values; here a non-null config value is used (what the image
// processor itself does), which is the same for every released checkpoint.
import Foundation
import GemmaFormats

/// An image size in pixels.
public struct ImageSize: Sendable, Equatable {
    public var height: Int
    public var width: Int
    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }
}

/// Gemma3ImageProcessor's configuration.
public struct ImageProcessorConfig: Sendable, Equatable {
    public var doResize = true
    public var size = ImageSize(height: 224, width: 224)
    public var resample = ResampleFilter.bilinear
    public var doRescale = true
    public var rescaleFactor = 1.0 / 255
    public var doNormalize = true
    public var imageMean: [Double] = [0.5, 0.5, 0.5]
    public var imageStd: [Double] = [0.5, 0.5, 0.5]
    public var doPanAndScan = false
    public var panAndScanMinCropSize = 256
    public var panAndScanMaxNumCrops = 4
    public var panAndScanMinRatioToActivate = 1.2
    /// Soft tokens per image (Gemma3Processor's image_seq_length; the model's mm_tokens_per_image).
    public var imageSeqLength = 256

    /// transformers' defaults (not the released checkpoints' 896x896: read their preprocessor_config.json).
    public init() {}

    /// Reads preprocessor_config.json and, when given, processor_config.json. `file` names the first in errors.
    public init(preprocessor root: JSONValue, processor: JSONValue? = nil,
                file: String = "preprocessor_config.json") throws(ImageError)
    {
        guard case .object = root else { throw .config(file: file, reason: "not a JSON object") }
        let r = Reader(object: root, file: file)
        if let type = try r.string("image_processor_type"), !type.hasPrefix("Gemma3ImageProcessor") {
            throw .config(file: file, reason: "image_processor_type \"\(type)\" is not Gemma3ImageProcessor")
        }
        doResize = try r.bool("do_resize") ?? doResize
        if let sizeValue = root["size"], sizeValue != .null {
            let s = Reader(object: sizeValue, file: file, path: "size.")
            guard case .object = sizeValue, let h = try s.int("height"), let w = try s.int("width") else {
                throw .config(file: file, reason: "size must give height and width (got \(sizeValue.serialized));"
                    + " shortest_edge / longest_edge sizes are not Gemma 3's")
            }
            guard h > 0, w > 0, h <= 1 << 15, w <= 1 << 15 else {
                throw .config(file: file, reason: "size \(h)x\(w) is out of range (1...32768)")
            }
            size = ImageSize(height: h, width: w)
        }
        if let code = try r.int("resample") {
            guard let filter = ResampleFilter(rawValue: code) else {
                let name = code == 0 ? " (NEAREST)" : ""
                throw .config(file: file, reason: "resample \(code)\(name) is not supported (1 LANCZOS, 2 BILINEAR, "
                    + "3 BICUBIC, 4 BOX, 5 HAMMING are)")
            }
            resample = filter
        }
        doRescale = try r.bool("do_rescale") ?? doRescale
        rescaleFactor = try r.double("rescale_factor") ?? rescaleFactor
        doNormalize = try r.bool("do_normalize") ?? doNormalize
        imageMean = try r.channels("image_mean") ?? imageMean
        imageStd = try r.channels("image_std") ?? imageStd
        guard imageStd.allSatisfy({ $0 != 0 && $0.isFinite }), imageMean.allSatisfy(\.isFinite),
              rescaleFactor.isFinite else {
            throw .config(file: file, reason: "image_std must be finite and non-zero, image_mean and rescale_factor finite")
        }
        doPanAndScan = try r.bool("do_pan_and_scan") ?? doPanAndScan
        panAndScanMinCropSize = try r.int("pan_and_scan_min_crop_size") ?? panAndScanMinCropSize
        panAndScanMaxNumCrops = try r.int("pan_and_scan_max_num_crops") ?? panAndScanMaxNumCrops
        panAndScanMinRatioToActivate = try r.double("pan_and_scan_min_ratio_to_activate") ?? panAndScanMinRatioToActivate
        guard panAndScanMinCropSize >= 1, panAndScanMaxNumCrops >= 1, panAndScanMinRatioToActivate.isFinite else {
            throw .config(file: file, reason: "Pan & Scan needs min crop size >= 1, max crops >= 1, a finite ratio")
        }
        imageSeqLength = try r.int("image_seq_length") ?? imageSeqLength
        if let processor {
            imageSeqLength = try Reader(object: processor, file: "processor_config.json").int("image_seq_length")
                ?? imageSeqLength
        }
        guard imageSeqLength >= 1, imageSeqLength <= 1 << 16 else {
            throw .config(file: file, reason: "image_seq_length \(imageSeqLength) is out of range")
        }
    }

    /// Reads `folder`/preprocessor_config.json (required) and `folder`/processor_config.json (if present).
    public static func load(folder: String) throws(ImageError) -> ImageProcessorConfig {
        let pre = folder + "/preprocessor_config.json", proc = folder + "/processor_config.json"
        guard let root = try readJSON(pre) else { throw .file(path: pre, reason: "no such file") }
        return try ImageProcessorConfig(preprocessor: root, processor: try readJSON(proc), file: pre)
    }

    private static func readJSON(_ path: String) throws(ImageError) -> JSONValue? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .file(path: path, reason: "cannot be read")
        }
        guard data.count <= 1 << 20 else { throw .config(file: path, reason: "\(data.count) bytes: not a config") }
        do { return try JSONValue.parse([UInt8](data)) } catch { throw .config(file: path, reason: "not valid JSON: \(error)") }
    }
}

/// Typed reads of optional config keys: absent or null is nil, a value of the wrong type an error naming the key.
private struct Reader {
    let object: JSONValue
    let file: String
    var path = ""

    private func value(_ key: String) -> JSONValue? {
        guard let v = object[key], v != .null else { return nil }
        return v
    }

    private func wrong(_ key: String, _ v: JSONValue, _ expected: String) -> ImageError {
        .config(file: file, reason: "\(path)\(key) must be \(expected), not \(v.typeName) \(v.serialized)")
    }

    func bool(_ key: String) throws(ImageError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case let .bool(b) = v else { throw wrong(key, v, "a boolean") }
        return b
    }

    func double(_ key: String) throws(ImageError) -> Double? {
        guard let v = value(key) else { return nil }
        guard case let .number(x) = v else { throw wrong(key, v, "a number") }
        return x
    }

    func int(_ key: String) throws(ImageError) -> Int? {
        guard let v = value(key) else { return nil }
        guard case let .number(x) = v, x == x.rounded(), abs(x) < 1e15 else { throw wrong(key, v, "an integer") }
        return Int(x)
    }

    func string(_ key: String) throws(ImageError) -> String? {
        guard let v = value(key) else { return nil }
        guard case let .string(s) = v else { throw wrong(key, v, "a string") }
        return s
    }

    /// Three per-channel numbers, or one number for all three (as transformers broadcasts it).
    func channels(_ key: String) throws(ImageError) -> [Double]? {
        guard let v = value(key) else { return nil }
        switch v {
        case let .number(x): return [x, x, x]
        case let .array(items):
            var out: [Double] = []
            for item in items {
                guard case let .number(x) = item else { throw wrong(key, v, "three numbers") }
                out.append(x)
            }
            guard out.count == 3 else { throw wrong(key, v, "three numbers (one per RGB channel)") }
            return out
        default: throw wrong(key, v, "a number or three numbers")
        }
    }
}
