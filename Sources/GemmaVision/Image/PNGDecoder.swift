// PNG through libpng (Sources/CImageCodecs/png.c holds its longjmp error path), as Pillow 13's PngImagePlugin opens
// a file (its _MODES table): grey 1/2/4/8 bits -> "1"/"L", 16-bit grey -> "I;16", RGB -> "RGB" (16-bit: high bytes),
// palette -> "P", grey+alpha -> "LA" (16-bit: "RGBA" from the high bytes), RGBA -> "RGBA"; tRNS becomes Pillow's
// "transparency". Orientation comes from eXIf, else a "Raw profile type exif" text chunk, else XMP (Image.getexif).
import CImageCodecs

enum PNGDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer, options: DecodeOptions) throws(ImageError) -> DecodedImage {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { throw .empty }
        var info = gemma_png_info()
        try check(gemma_png_read_header(base, bytes.count, &info), &info)
        let width = Int(info.width), height = Int(info.height)
        let count = try checkedPixelCount(.png, width: width, height: height, options: options)
        let channels = Int(info.channels), sampleBytes = Int(info.bytes_per_sample)
        guard (1...4).contains(channels), (1...2).contains(sampleBytes) else {
            throw .unsupported(.png, detail: "colour type \(info.color_type) at \(info.bit_depth) bits")
        }
        let capacity = count * channels * sampleBytes  // <= 8 * maxPixels
        var status: Int32 = 0
        let samples = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            status = gemma_png_decode(base, bytes.count, buffer.baseAddress, capacity, &info)
            initialized = Int(status) == GEMMA_IMAGE_OK ? capacity : 0  // on failure the array is dropped unread
        }
        defer { gemma_png_free_metadata(&info) }
        try check(status, &info)

        let depth = Int(info.bit_depth)
        var layout: SampleLayout
        var hasAlpha = false
        var key: ColorKey? = nil
        switch (Int(info.color_type), channels) {
        case (3, 1):  // palette
            let colors = withUnsafeBytes(of: &info.palette) { Array($0.prefix(3 * Int(info.num_palette))) }
            let alphas = withUnsafeBytes(of: &info.trans_alpha) { Array($0.prefix(Int(info.num_trans))) }
            layout = .palette(colors: colors, alpha: alphas)
            hasAlpha = info.num_trans > 0
        case (0, 1):  // grey
            layout = sampleBytes == 2 ? .grey16 : .grey
            if info.has_trans_color != 0 {
                // Pillow: mode "1" keys on 255 if the tRNS value is non-zero, else 0; "L" and "I;16" on the raw value.
                key = .grey(depth == 1 ? (info.trans_gray != 0 ? 255 : 0) : Int(info.trans_gray))
            }
        case (4, 2): layout = .greyAlpha; hasAlpha = true
        case (2, 3):
            layout = .rgb
            if info.has_trans_color != 0 {
                key = .rgb(Int(info.trans_red), Int(info.trans_green), Int(info.trans_blue))
            }
        case (6, 4): layout = .rgba; hasAlpha = true
        default: throw .unsupported(.png, detail: "colour type \(info.color_type) at \(depth) bits")
        }
        let rgb: [UInt8]
        if case .rgb = layout, key == nil || options.alpha == .drop {
            rgb = samples  // RGB already: no second buffer
        } else {
            rgb = samples.withUnsafeBufferPointer {
                PixelConversion.rgb(from: $0, count: count, layout: layout, hasAlpha: hasAlpha, key: key,
                                    alpha: options.alpha)
            }
        }
        var orientation: Int? = nil
        if options.applyOrientation {
            var exif = copy(info.exif, info.exif_size)
            if exif == nil, let text = copy(info.raw_profile_exif, info.raw_profile_exif_size) {
                exif = rawProfileBytes(text)
            }
            orientation = ExifOrientation.resolve(exif: exif, xmp: copy(info.xmp, info.xmp_size))
        }
        return DecodedImage(image: RGBImage(width: width, height: height, pixels: rgb), orientation: orientation)
    }

    private static func copy<T>(_ pointer: UnsafeMutablePointer<T>?, _ size: Int) -> [UInt8]? {
        guard let pointer, size > 0 else { return nil }
        return Array(UnsafeRawBufferPointer(start: pointer, count: size))
    }

    /// ImageMagick's "Raw profile type exif" text: "\nexif\n   LEN\nHEX...". Pillow decodes it as
    /// bytes.fromhex("".join(text.split("\n")[3:])); text that is not hex gives no Exif block (Pillow raises).
    static func rawProfileBytes(_ text: [UInt8]) -> [UInt8]? {
        var lines = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard lines.count > 3 else { return [] }
        lines.removeFirst(3)
        let hexText = lines.joined()
        var out: [UInt8] = []
        out.reserveCapacity(hexText.count / 2)
        var high: UInt8? = nil
        for c in hexText {
            let isSpace = c == 0x20 || (0x09...0x0D).contains(c)
            if isSpace {
                guard high == nil else { return nil }  // whitespace only between pairs, as bytes.fromhex
                continue
            }
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return high == nil ? out : nil
    }

    private static func check(_ status: Int32, _ info: inout gemma_png_info) throws(ImageError) {
        guard Int(status) != GEMMA_IMAGE_OK else { return }
        let message = withUnsafeBytes(of: &info.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch Int(status) {
        case GEMMA_IMAGE_TRUNCATED: throw .truncated(.png, detail: message)
        case GEMMA_IMAGE_LIMIT: throw .resourceLimit(.png, detail: message)
        default: throw .corrupt(.png, detail: message)
        }
    }
}
