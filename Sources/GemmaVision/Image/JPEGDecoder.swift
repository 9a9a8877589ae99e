// JPEG through libjpeg-turbo (Sources/CImageCodecs/jpeg.c holds its longjmp error path), as Pillow 13's
// JpegImagePlugin opens a file: 1 component = "L", 3 = "RGB" (libjpeg's YCbCr -> RGB, ISLOW IDCT and fancy
// upsampling, the library defaults Pillow keeps), 4 = "CMYK" read with Adobe polarity ("CMYK;I"; YCCK converted to
// CMYK by libjpeg). Corrupt entropy data that libjpeg decodes through with a warning decodes (Pillow ignores libjpeg's
// warnings); data that ends before the image does is an error (Pillow raises "image file is truncated").
import CImageCodecs

enum JPEGDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer, options: DecodeOptions) throws(ImageError) -> DecodedImage {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { throw .empty }
        var info = gemma_jpeg_info()
        try check(gemma_jpeg_read_header(base, bytes.count, &info), &info)
        let width = Int(info.width), height = Int(info.height)
        guard info.precision == 8 else {
            throw .unsupported(.jpeg, detail: "\(info.precision)-bit samples (8-bit JPEG is decoded)")
        }
        let components = Int(info.num_components)
        guard [1, 3, 4].contains(components) else {
            throw .unsupported(.jpeg, detail: "\(components) components (1 grey, 3 colour or 4 CMYK are decoded)")
        }
        let count = try checkedPixelCount(.jpeg, width: width, height: height, options: options)
        let capacity = count * components  // <= 4 * maxPixels: no overflow for any sane limit
        var status: Int32 = 0
        let samples = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            status = gemma_jpeg_decode(base, bytes.count, buffer.baseAddress, capacity, max(options.maxDecoderMemory, 0),
                                       Int32(clamping: options.maxJPEGScans), &info)
            initialized = Int(status) == GEMMA_IMAGE_OK ? capacity : 0  // on failure the array is dropped unread
        }
        try check(status, &info)
        guard Int(info.output_components) == components else {
            throw .corrupt(.jpeg, detail: "libjpeg produced \(info.output_components) components for \(components)")
        }
        let layout: SampleLayout = components == 1 ? .grey : .cmykInverted
        let rgb = components == 3 ? samples : samples.withUnsafeBufferPointer {  // RGB already: no second buffer
            PixelConversion.rgb(from: $0, count: count, layout: layout, hasAlpha: false, key: nil, alpha: options.alpha)
        }
        let metadata = options.applyOrientation ? JPEGMetadata(bytes) : JPEGMetadata()
        return DecodedImage(image: RGBImage(width: width, height: height, pixels: rgb),
                            orientation: ExifOrientation.resolve(exif: metadata.exif, xmp: metadata.xmp))
    }

    private static func check(_ status: Int32, _ info: inout gemma_jpeg_info) throws(ImageError) {
        guard Int(status) != GEMMA_IMAGE_OK else { return }
        let message = withUnsafeBytes(of: &info.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch Int(status) {
        case GEMMA_IMAGE_TRUNCATED: throw .truncated(.jpeg, detail: message)
        case GEMMA_IMAGE_LIMIT: throw .resourceLimit(.jpeg, detail: message)
        default:
            if info.unsupported != 0 { throw .unsupported(.jpeg, detail: message) }
            throw .corrupt(.jpeg, detail: message)
        }
    }
}

/// The Exif and XMP APP1 segments, found as Pillow's JPEG parser finds them: markers from SOI up to the first SOS;
/// Exif segments ("Exif\0\0") after the first are appended without their header; the last XMP segment
/// ("http://ns.adobe.com/xap/1.0/\0") wins. A marker stream that stops making sense ends the walk.
struct JPEGMetadata {
    var exif: [UInt8]? = nil
    var xmp: [UInt8]? = nil

    init() {}

    init(_ bytes: UnsafeRawBufferPointer) {
        let exifHeader = Array("Exif".utf8) + [0, 0]
        let xmpHeader = Array("http://ns.adobe.com/xap/1.0/".utf8) + [0]
        var i = 2  // after SOI
        while i + 1 < bytes.count {
            guard bytes[i] == 0xFF else { return }
            var m = bytes[i + 1]
            i += 2
            while m == 0xFF, i < bytes.count { m = bytes[i]; i += 1 }  // fill bytes
            if m == 0xDA || m == 0xD9 { return }  // SOS, EOI
            if (0xD0...0xD8).contains(m) || m == 0x01 { continue }  // RSTn, SOI, TEM: no length
            guard i + 1 < bytes.count else { return }
            let length = Int(bytes[i]) << 8 | Int(bytes[i + 1])
            guard length >= 2, length - 2 <= bytes.count - (i + 2) else { return }
            let payload = bytes[(i + 2)..<(i + length)]
            if m == 0xE1 {
                if payload.starts(with: exifHeader) {
                    if exif == nil { exif = Array(payload) } else { exif?.append(contentsOf: payload.dropFirst(6)) }
                } else if payload.starts(with: xmpHeader) {
                    xmp = Array(payload.dropFirst(xmpHeader.count))
                }
            }
            i += length
        }
    }
}
