// A decoded image as the Gemma 3 processor sees it: 8-bit RGB, row-major, channels last. Decoding follows what
// transformers 5.23 does with an image given as a path, URL or base64 string, i.e. with the bytes this engine receives
// (image_utils.load_image: PIL.Image.open, ImageOps.exif_transpose, convert("RGB"); the torchvision backend's
// load_image_as_tensor also decodes with the EXIF orientation applied and mode RGB). See DecodeOptions for the choices.
import Foundation

/// An 8-bit RGB image: `pixels[(y * width + x) * 3 + c]`, c = 0 red, 1 green, 2 blue.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let pixels: [UInt8]

    /// An image over `pixels` (count must be width * height * 3).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3, "RGBImage: pixel count mismatch")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The pixel at (x, y).
    public subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// The sub-image `width` x `height` at (x, y), clamped to the image as a NumPy slice is (Pan & Scan's last crop).
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage {
        let x0 = min(max(x, 0), width), y0 = min(max(y, 0), height)
        let x1 = min(max(x0, x0 + max(w, 0)), width), y1 = min(max(y0, y0 + max(h, 0)), height)
        let cw = x1 - x0, ch = y1 - y0
        var out = [UInt8](repeating: 0, count: cw * ch * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for row in 0..<ch {
                    let from = ((y0 + row) * width + x0) * 3
                    for i in 0..<(cw * 3) { dst[row * cw * 3 + i] = src[from + i] }
                }
            }
        }
        return RGBImage(width: cw, height: ch, pixels: out)
    }
}

/// How transparency becomes RGB.
public enum AlphaHandling: Sendable, Equatable {
    /// Discard alpha and tRNS transparency (PIL's `convert("RGB")`, what transformers' `load_image` does to images
    /// given as paths, URLs or base64; torchvision's decode in RGB mode also drops it). The default.
    case drop
    /// Composite over opaque white (transformers' `convert_to_rgb` for a PIL image handed to the processor directly:
    /// `alpha_composite` onto white when the image has an alpha band or a "transparency" entry).
    case compositeOnWhite
}

/// Limits and choices for decoding.
public struct DecodeOptions: Sendable, Equatable {
    /// PIL's `Image.MAX_IMAGE_PIXELS` (1024 * 1024 * 1024 // 4 // 3): PIL warns above it and refuses above twice it;
    /// here it is refused, before any pixel buffer is allocated.
    public static let pilMaxImagePixels = 178_956_970

    /// Largest width * height decoded.
    public var maxPixels: Int = DecodeOptions.pilMaxImagePixels
    /// Apply the EXIF orientation tag (and PIL's XMP `tiff:Orientation` fallback) as `ImageOps.exif_transpose`.
    public var applyOrientation: Bool = true
    /// What to do with alpha.
    public var alpha: AlphaHandling = .drop
    /// libjpeg's working-memory bound (progressive JPEGs hold every coefficient; 0 = unbounded).
    public var maxDecoderMemory: Int = 1 << 30
    /// Most progressive JPEG scans read (libjpeg-turbo's TurboJPEG API uses the same bound against scan floods).
    public var maxJPEGScans: Int = 500

    public init(maxPixels: Int = DecodeOptions.pilMaxImagePixels, applyOrientation: Bool = true,
                alpha: AlphaHandling = .drop) {
        self.maxPixels = maxPixels
        self.applyOrientation = applyOrientation
        self.alpha = alpha
    }
}

extension RGBImage {
    /// Decodes JPEG, PNG or WebP bytes (recognised by their signature, not a file name) to RGB.
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - options: pixel limit, orientation and alpha handling.
    /// - Returns: the upright RGB image.
    /// - Throws: `ImageError` for anything but a decodable image of at most `options.maxPixels` pixels.
    public static func decode(_ bytes: [UInt8], options: DecodeOptions = DecodeOptions()) throws(ImageError) -> RGBImage {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(ImageError) in try decode(buffer, options: options) }
        }.get()
    }

    /// Decodes JPEG, PNG or WebP bytes (see `decode(_:options:)` for `[UInt8]`).
    public static func decode(_ data: Data, options: DecodeOptions = DecodeOptions()) throws(ImageError) -> RGBImage {
        try data.withUnsafeBytes { buffer in
            Result { () throws(ImageError) in try decode(buffer, options: options) }
        }.get()
    }

    /// Decodes JPEG, PNG or WebP bytes in memory.
    public static func decode(_ bytes: UnsafeRawBufferPointer, options: DecodeOptions = DecodeOptions())
        throws(ImageError) -> RGBImage
    {
        let format = try sniffFormat(bytes)
        var decoded: DecodedImage
        switch format {
        case .jpeg: decoded = try JPEGDecoder.decode(bytes, options: options)
        case .png: decoded = try PNGDecoder.decode(bytes, options: options)
        case .webp: decoded = try WebPDecoder.decode(bytes, options: options)
        }
        if options.applyOrientation, let orientation = decoded.orientation {
            decoded.image = decoded.image.oriented(orientation)
        }
        return decoded.image
    }

    /// Reads and decodes an image file.
    public init(contentsOfFile path: String, options: DecodeOptions = DecodeOptions()) throws(ImageError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw .file(path: path, reason: exists ? "cannot be read" : "no such file")
        }
        do { self = try RGBImage.decode(data, options: options) } catch { throw error }
    }

    /// The format of `bytes` from its signature; a clear error for formats not decoded here.
    public static func sniffFormat(_ bytes: UnsafeRawBufferPointer) throws(ImageError) -> ImageFormat {
        guard !bytes.isEmpty else { throw .empty }
        func starts(_ sig: [UInt8], at offset: Int = 0) -> Bool {
            guard bytes.count >= offset + sig.count else { return false }
            for (i, b) in sig.enumerated() where bytes[offset + i] != b { return false }
            return true
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }  // PIL's JpegImagePlugin._accept
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { throw .unsupportedFormat(name: "GIF") }
        if starts(Array("BM".utf8)) { throw .unsupportedFormat(name: "BMP") }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { throw .unsupportedFormat(name: "TIFF") }
        if starts(Array("ftyp".utf8), at: 4) { throw .unsupportedFormat(name: "HEIF/AVIF") }
        if starts([0xFF, 0x0A]) || starts([0, 0, 0, 0x0C, 0x4A, 0x58, 0x4C, 0x20]) {
            throw .unsupportedFormat(name: "JPEG XL")
        }
        throw .unknownFormat(leadingBytes: Array(bytes.prefix(8)))
    }
}

/// What a format decoder hands back: the RGB pixels and the orientation its metadata asks for.
struct DecodedImage {
    var image: RGBImage
    var orientation: Int?
}

/// width * height checked against the limit, before anything is allocated. The limit is capped at 2^40 pixels, so
/// that buffer sizes (up to 8 bytes a pixel) cannot overflow whatever `maxPixels` says.
func checkedPixelCount(_ format: ImageFormat, width: Int, height: Int, options: DecodeOptions) throws(ImageError) -> Int {
    guard width > 0, height > 0 else { throw .badDimensions(format, width: width, height: height) }
    let limit = min(options.maxPixels, 1 << 40)
    let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
    guard !overflow, pixels <= limit else {
        throw .tooManyPixels(format, width: width, height: height, limit: limit)
    }
    return pixels
}
