// The one error type of image input: every way decoding a file or reading a preprocessor config can fail, with the
// format, the numbers and the library's own message. Bad input throws one of these; nothing reaches a crash.

/// The image formats decoded (through libjpeg-turbo, libpng and libwebp).
public enum ImageFormat: String, Sendable, Equatable, CustomStringConvertible {
    case jpeg = "JPEG"
    case png = "PNG"
    case webp = "WebP"

    public var description: String { rawValue }
}

/// An error decoding an image or reading an image processor's configuration.
public enum ImageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No bytes at all.
    case empty
    /// The bytes are not a JPEG, PNG or WebP file; `leadingBytes` are the first few, for the message.
    case unknownFormat(leadingBytes: [UInt8])
    /// A known image format that is not decoded here (GIF, BMP, TIFF, HEIF/AVIF, ...).
    case unsupportedFormat(name: String)
    /// The data ends before the image does.
    case truncated(ImageFormat, detail: String)
    /// The library refused the data.
    case corrupt(ImageFormat, detail: String)
    /// A valid file of a kind not handled (12-bit JPEG, a JPEG of 2 components, ...).
    case unsupported(ImageFormat, detail: String)
    /// Width or height zero (or negative in the header).
    case badDimensions(ImageFormat, width: Int, height: Int)
    /// More pixels than the decode limit (a decompression bomb, or just too large); checked before allocating.
    case tooManyPixels(ImageFormat, width: Int, height: Int, limit: Int)
    /// A decoder resource limit (progressive scans, decoder memory).
    case resourceLimit(ImageFormat, detail: String)
    /// A file that could not be read.
    case file(path: String, reason: String)
    /// A preprocessor_config.json / processor_config.json value this processor cannot use.
    case config(file: String, reason: String)
    /// A prompt whose `<start_of_image>` count differs from the number of images given for it.
    case imageCountMismatch(placeholders: Int, images: Int)

    public var description: String {
        switch self {
        case .empty: "the image is empty (0 bytes)"
        case let .unknownFormat(bytes):
            "not a JPEG, PNG or WebP image (it starts with \(bytes.map { hex($0) }.joined(separator: " ")))"
        case let .unsupportedFormat(name): "\(name) images are not supported (JPEG, PNG and WebP are)"
        case let .truncated(format, detail): "truncated \(format) image: \(detail)"
        case let .corrupt(format, detail): "corrupt \(format) image: \(detail)"
        case let .unsupported(format, detail): "unsupported \(format) image: \(detail)"
        case let .badDimensions(format, width, height): "\(format) image has invalid dimensions \(width)x\(height)"
        case let .tooManyPixels(format, width, height, limit):
            "\(format) image is \(width)x\(height) = \(width.multipliedReportingOverflow(by: height).partialValue) pixels, "
                + "more than the limit of \(limit) (a possible decompression bomb)"
        case let .resourceLimit(format, detail): "\(format) image exceeds a decoder limit: \(detail)"
        case let .file(path, reason): "\(path): \(reason)"
        case let .config(file, reason): "\(file): \(reason)"
        case let .imageCountMismatch(placeholders, images):
            "the prompt has \(placeholders) <start_of_image> but \(images) images were given"
        }
    }
}

private func hex(_ b: UInt8) -> String {
    let s = String(b, radix: 16)
    return s.count == 1 ? "0" + s : s
}
