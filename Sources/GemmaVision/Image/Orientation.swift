// EXIF orientation as Pillow 13's ImageOps.exif_transpose reads and applies it: the Orientation tag (0x0112) of IFD0
// of the image's Exif block (Image.getexif -> Exif.load -> TiffImagePlugin.ImageFileDirectory_v2), else the first
// `tiff:Orientation="N"` or `<tiff:Orientation>N` in its XMP packet; values 2...8 transpose, anything else does not.
// A small bounds-checked TIFF reader: every offset is checked against the block, and a block that is not TIFF, or
// whose directory runs past its end, yields the entries read so far (Pillow warns and keeps them too). Where Pillow
// raises (an Exif block with a bad TIFF header makes exif_transpose throw), the image decodes upright instead.

/// What an image's metadata says about its orientation.
enum OrientationTag: Equatable {
    /// No Orientation entry in the EXIF block (then PIL looks at XMP).
    case absent
    /// An Orientation entry; its value when it is a number equal to an integer (PIL compares with ==), else nil.
    case present(Int?)
}

enum ExifOrientation {
    static let orientationTag: UInt16 = 0x0112

    /// The orientation to apply (2...8), or nil for none, from an Exif block and an XMP packet as PIL combines them.
    static func resolve(exif: [UInt8]?, xmp: [UInt8]?) -> Int? {
        var value: Int? = nil
        switch exif.map(tag(inExif:)) ?? .absent {
        case let .present(v): value = v
        case .absent: value = xmp.flatMap(xmpOrientation)
        }
        guard let v = value, (2...8).contains(v) else { return nil }
        return v
    }

    /// The Orientation entry of IFD0 of an Exif block (leading "Exif\0\0" headers stripped, as Exif.load does).
    static func tag(inExif block: [UInt8]) -> OrientationTag {
        var start = 0
        let header: [UInt8] = Array("Exif".utf8) + [0, 0]
        while block.count - start >= 6 && Array(block[start..<(start + 6)]) == header { start += 6 }
        let tiff = block[start...]
        guard tiff.count >= 8 else { return .absent }
        let b = Array(tiff.prefix(4))
        let little: Bool
        switch (b[0], b[1], b[2], b[3]) {
        // Pillow's PREFIXES for classic TIFF; the byte order is the first two bytes.
        case (0x49, 0x49, 0x2A, 0x00), (0x49, 0x49, 0x00, 0x2A): little = true
        case (0x4D, 0x4D, 0x00, 0x2A), (0x4D, 0x4D, 0x2A, 0x00): little = false
        default: return .absent  // not TIFF, or BigTIFF (never an Exif block)
        }
        let r = TIFFReader(bytes: Array(tiff), little: little)
        guard let ifd = r.u32(at: 4), let count = r.u16(at: Int(ifd)) else { return .absent }
        var found: OrientationTag = .absent
        for i in 0..<Int(count) {
            let entry = Int(ifd) + 2 + 12 * i
            guard let tag = r.u16(at: entry), let type = r.u16(at: entry + 2), let n = r.u32(at: entry + 4),
                  r.has(entry, 12) else { break }  // a short directory keeps the entries before the cut
            guard tag == orientationTag, let unit = TIFFReader.unitSize[type] else { continue }
            let (size, overflow) = Int(n).multipliedReportingOverflow(by: unit)
            guard !overflow else { continue }
            var at = entry + 8
            if size > 4 {
                guard let offset = r.u32(at: entry + 8), r.has(Int(offset), size) else { continue }  // "corrupt EXIF"
                at = Int(offset)
            }
            // The last entry for a tag wins (Pillow keeps a dict); a count of zero has no value.
            found = .present(n == 0 ? nil : r.firstNumber(type: type, at: at))
        }
        return found
    }

    /// PIL's XMP fallback: the first `tiff:Orientation="D` or `tiff:Orientation>D` (one digit).
    static func xmpOrientation(_ xmp: [UInt8]) -> Int? {
        let key = Array("tiff:Orientation".utf8)
        guard xmp.count > key.count + 1 else { return nil }
        var i = 0
        while i + key.count < xmp.count {
            if xmp[i] == key[0] && Array(xmp[i..<(i + key.count)]) == key {
                let j = i + key.count
                if xmp[j] == UInt8(ascii: "="), j + 2 < xmp.count, xmp[j + 1] == UInt8(ascii: "\""),
                   let d = digit(xmp[j + 2]) {
                    return d
                }
                if xmp[j] == UInt8(ascii: ">"), j + 1 < xmp.count, let d = digit(xmp[j + 1]) { return d }
            }
            i += 1
        }
        return nil
    }

    private static func digit(_ b: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) ? Int(b - UInt8(ascii: "0")) : nil
    }
}

/// Bounds-checked reads of a TIFF block in either byte order.
private struct TIFFReader {
    let bytes: [UInt8]
    let little: Bool

    /// Bytes per value of each TIFF field type Pillow loads (BYTE ASCII SHORT LONG RATIONAL SBYTE UNDEFINED SSHORT
    /// SLONG SRATIONAL FLOAT DOUBLE IFD LONG8); entries of other types are skipped.
    static let unitSize: [UInt16: Int] = [1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
                                          13: 4, 16: 8]

    func has(_ offset: Int, _ count: Int) -> Bool {
        offset >= 0 && count >= 0 && offset <= bytes.count && count <= bytes.count - offset
    }

    func u16(at o: Int) -> UInt16? {
        guard has(o, 2) else { return nil }
        let a = UInt16(bytes[o]), b = UInt16(bytes[o + 1])
        return little ? a | b << 8 : a << 8 | b
    }

    func u32(at o: Int) -> UInt32? {
        guard has(o, 4) else { return nil }
        var v: UInt32 = 0
        for k in 0..<4 { v |= UInt32(bytes[o + k]) << (little ? 8 * k : 8 * (3 - k)) }
        return v
    }

    func u64(at o: Int) -> UInt64? {
        guard let a = u32(at: o), let b = u32(at: o + 4) else { return nil }
        return little ? UInt64(a) | UInt64(b) << 32 : UInt64(a) << 32 | UInt64(b)
    }

    /// The first value of a numeric entry if it equals an integer; nil for text, bytes and non-integral numbers.
    func firstNumber(type: UInt16, at o: Int) -> Int? {
        func integral(_ x: Double) -> Int? { x.isFinite && x == x.rounded() && abs(x) < 1e9 ? Int(x) : nil }
        switch type {
        case 1: return has(o, 1) ? Int(bytes[o]) : nil
        case 6: return has(o, 1) ? Int(Int8(bitPattern: bytes[o])) : nil
        case 3: return u16(at: o).map { Int($0) }
        case 8: return u16(at: o).map { Int(Int16(bitPattern: $0)) }
        case 4, 13: return u32(at: o).map { Int($0) }
        case 9: return u32(at: o).map { Int(Int32(bitPattern: $0)) }
        case 16: return u64(at: o).flatMap { $0 <= UInt64(Int.max) ? Int($0) : nil }
        case 5:
            guard let n = u32(at: o), let d = u32(at: o + 4), d != 0 else { return nil }
            return integral(Double(n) / Double(d))
        case 10:
            guard let n = u32(at: o), let d = u32(at: o + 4), d != 0 else { return nil }
            return integral(Double(Int32(bitPattern: n)) / Double(Int32(bitPattern: d)))
        case 11: return u32(at: o).flatMap { integral(Double(Float(bitPattern: $0))) }
        case 12: return u64(at: o).flatMap { integral(Double(bitPattern: $0)) }
        default: return nil  // ASCII, UNDEFINED
        }
    }
}

extension RGBImage {
    /// The image transposed as PIL's exif_transpose does for an orientation value (Image.Transpose names):
    /// 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90;
    /// other values return the image unchanged.
    public func oriented(_ orientation: Int) -> RGBImage {
        guard (2...8).contains(orientation) else { return self }
        let w = width, h = height
        let swaps = orientation >= 5
        let ow = swaps ? h : w, oh = swaps ? w : h
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        // (sx, sy): the source pixel that lands at (x, y).
                        let sx: Int, sy: Int
                        switch orientation {
                        case 2: (sx, sy) = (w - 1 - x, y)
                        case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                        case 4: (sx, sy) = (x, h - 1 - y)
                        case 5: (sx, sy) = (y, x)
                        case 6: (sx, sy) = (y, h - 1 - x)
                        case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                        default: (sx, sy) = (w - 1 - y, x)  // 8
                        }
                        let s = (sy * w + sx) * 3, d = (y * ow + x) * 3
                        dst[d] = src[s]
                        dst[d + 1] = src[s + 1]
                        dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}
