// WebP through libwebp's animation decoder, exactly as Pillow 13's _webp.c reads every WebP file (still or animated):
// WebPAnimDecoderNew with default options (RGBA, no threads), the first frame composed on the canvas; mode "RGBA" when
// WebPGetFeatures reports alpha, else "RGBX" (alpha ignored). An animation decodes to its first frame, as
// `Image.open(...).convert("RGB")` gives. EXIF and XMP come from the container's chunks. libwebp reports errors by
// return value, so no C shim is needed; the canvas size is checked before the decoder allocates it.
import CWebP

enum WebPDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer, options: DecodeOptions) throws(ImageError) -> DecodedImage {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { throw .empty }
        // The RIFF header's size field (bytes 4..<8, little-endian) says how long the file should be.
        if bytes.count >= 8 {
            let riff = Int(bytes[4]) | Int(bytes[5]) << 8 | Int(bytes[6]) << 16 | Int(bytes[7]) << 24
            if riff + 8 > bytes.count {
                throw .truncated(.webp, detail: "the RIFF header declares \(riff + 8) bytes but there are \(bytes.count)")
            }
        }
        var features = WebPBitstreamFeatures()
        let status = WebPGetFeatures(base, bytes.count, &features)
        switch status {
        case VP8_STATUS_OK: break
        case VP8_STATUS_NOT_ENOUGH_DATA: throw .truncated(.webp, detail: "not enough data for the headers")
        case VP8_STATUS_UNSUPPORTED_FEATURE: throw .unsupported(.webp, detail: "a feature libwebp does not decode")
        default: throw .corrupt(.webp, detail: "libwebp could not read the headers (status \(status.rawValue))")
        }
        let width = Int(features.width), height = Int(features.height)
        let count = try checkedPixelCount(.webp, width: width, height: height, options: options)

        var data = WebPData(bytes: base, size: bytes.count)
        guard let decoder = WebPAnimDecoderNew(&data, nil) else {
            throw .corrupt(.webp, detail: "libwebp could not parse the container")
        }
        defer { WebPAnimDecoderDelete(decoder) }
        var info = WebPAnimInfo()
        guard WebPAnimDecoderGetInfo(decoder, &info) != 0 else {
            throw .corrupt(.webp, detail: "libwebp could not read the animation header")
        }
        guard Int(info.canvas_width) == width, Int(info.canvas_height) == height else {
            throw .corrupt(.webp, detail: "canvas \(info.canvas_width)x\(info.canvas_height) differs from the "
                + "header's \(width)x\(height)")
        }
        var frame: UnsafeMutablePointer<UInt8>? = nil
        var timestamp: Int32 = 0
        guard WebPAnimDecoderGetNext(decoder, &frame, &timestamp) != 0, let frame else {
            throw .corrupt(.webp, detail: "libwebp could not decode the first frame")
        }
        let rgb = PixelConversion.rgb(from: UnsafeBufferPointer(start: frame, count: count * 4), count: count,
                                      layout: .rgba, hasAlpha: features.has_alpha != 0, key: nil,
                                      alpha: options.alpha)
        var orientation: Int? = nil
        if options.applyOrientation, let demuxer = WebPAnimDecoderGetDemuxer(decoder) {
            orientation = ExifOrientation.resolve(exif: chunk(demuxer, "EXIF"), xmp: chunk(demuxer, "XMP "))
        }
        return DecodedImage(image: RGBImage(width: width, height: height, pixels: rgb), orientation: orientation)
    }

    /// The first chunk with `fourcc`, copied, or nil.
    private static func chunk(_ demuxer: OpaquePointer, _ fourcc: String) -> [UInt8]? {
        var iterator = WebPChunkIterator()
        guard WebPDemuxGetChunk(demuxer, fourcc, 1, &iterator) != 0 else { return nil }
        defer { WebPDemuxReleaseChunkIterator(&iterator) }
        guard let bytes = iterator.chunk.bytes, iterator.chunk.size > 0 else { return nil }
        return Array(UnsafeBufferPointer(start: bytes, count: iterator.chunk.size))
    }
}
