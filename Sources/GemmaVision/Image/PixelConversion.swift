// Decoded samples to RGB as Pillow 13 converts its image modes (libImaging/Convert.c, Unpack.c, AlphaComposite.c):
// what `convert("RGB")` does to the mode each plugin opens a file in, and, for AlphaHandling.compositeOnWhite,
// transformers' convert_to_rgb (convert("RGBA"), alpha_composite over opaque white, convert("RGB")).

/// The sample layout a decoder produced, named after the Pillow mode the same file opens in.
enum SampleLayout {
    /// "L": one byte per pixel.
    case grey
    /// "LA" (8-bit grey+alpha) and 16-bit grey+alpha (Pillow: "RGBA" from "LA;16B", the high bytes).
    case greyAlpha
    /// "RGB" (16-bit: the high bytes, Pillow's "RGB;16B").
    case rgb
    /// "RGBA"; WebP without alpha is decoded as RGBA too and opens as "RGBX" (alpha ignored: `hasAlpha` false).
    case rgba
    /// "I;16" from a 16-bit grey PNG: big-endian 16-bit samples, clipped to 255 by convert("RGB") (I16_RGB).
    case grey16
    /// "CMYK" from a 4-component JPEG: libjpeg's samples, which Pillow reads as Adobe-inverted ("CMYK;I").
    case cmykInverted
    /// "P": one index per pixel into `colors` (RGB triples) with per-entry alpha (tRNS; missing entries opaque).
    /// An index past the file's palette reads as black (Pillow 13, checked by the palette-short.png fixture).
    case palette(colors: [UInt8], alpha: [UInt8])
}

/// A colour key (a PNG tRNS chunk on a grey or RGB image), as Pillow stores it in `info["transparency"]`.
enum ColorKey {
    case grey(Int)
    case rgb(Int, Int, Int)
}

enum PixelConversion {
    /// RGB8 for `count` pixels of `layout`. `hasAlpha`: whether the Pillow mode has an alpha band (RGBA, LA, P with
    /// transparency) or a "transparency" key (`key`), which is what transformers' convert_to_rgb tests.
    static func rgb(from src: UnsafeBufferPointer<UInt8>, count: Int, layout: SampleLayout, hasAlpha: Bool,
                    key: ColorKey?, alpha handling: AlphaHandling) -> [UInt8]
    {
        let composite = handling == .compositeOnWhite && (hasAlpha || key != nil)
        var out = [UInt8](repeating: 0, count: count * 3)
        out.withUnsafeMutableBufferPointer { dst in
            switch layout {
            case .grey:
                for i in 0..<count {
                    let v = src[i]
                    var a: UInt8 = 255
                    if composite, case let .grey(k)? = key, Int(v) == k { a = 0 }
                    put(dst, i, v, v, v, a, composite)
                }
            case .greyAlpha:
                for i in 0..<count {
                    let v = src[2 * i]
                    put(dst, i, v, v, v, src[2 * i + 1], composite)
                }
            case .rgb:
                for i in 0..<count {
                    let r = src[3 * i], g = src[3 * i + 1], b = src[3 * i + 2]
                    var a: UInt8 = 255
                    if composite, case let .rgb(kr, kg, kb)? = key, Int(r) == kr, Int(g) == kg, Int(b) == kb { a = 0 }
                    put(dst, i, r, g, b, a, composite)
                }
            case .rgba:
                for i in 0..<count {
                    put(dst, i, src[4 * i], src[4 * i + 1], src[4 * i + 2], src[4 * i + 3], composite)
                }
            case .grey16:
                for i in 0..<count {
                    let hi = src[2 * i], lo = src[2 * i + 1]
                    let v: UInt8 = hi == 0 ? lo : 255
                    var a: UInt8 = 255
                    if composite, case let .grey(k)? = key, Int(hi) << 8 | Int(lo) == k { a = 0 }
                    put(dst, i, v, v, v, a, composite)
                }
            case .cmykInverted:
                for i in 0..<count {
                    // "CMYK;I" inverts every sample, then cmyk2rgb: nk - nk * c / 255 per channel.
                    let c = 255 - Int(src[4 * i]), m = 255 - Int(src[4 * i + 1])
                    let y = 255 - Int(src[4 * i + 2]), k = 255 - Int(src[4 * i + 3])
                    let nk = 255 - k
                    dst[3 * i] = clip8(nk - mulDiv255(c, nk))
                    dst[3 * i + 1] = clip8(nk - mulDiv255(m, nk))
                    dst[3 * i + 2] = clip8(nk - mulDiv255(y, nk))
                }
            case let .palette(colors, alphas):
                for i in 0..<count {
                    let p = Int(src[i])
                    let r, g, b: UInt8
                    if 3 * p + 2 < colors.count {
                        (r, g, b) = (colors[3 * p], colors[3 * p + 1], colors[3 * p + 2])
                    } else {
                        (r, g, b) = (0, 0, 0)
                    }
                    put(dst, i, r, g, b, p < alphas.count ? alphas[p] : 255, composite)
                }
            }
        }
        return out
    }

    @inline(__always)
    private static func put(_ dst: UnsafeMutableBufferPointer<UInt8>, _ i: Int, _ r: UInt8, _ g: UInt8, _ b: UInt8,
                            _ a: UInt8, _ composite: Bool)
    {
        if composite && a != 255 {
            dst[3 * i] = onWhite(r, a)
            dst[3 * i + 1] = onWhite(g, a)
            dst[3 * i + 2] = onWhite(b, a)
        } else {
            dst[3 * i] = r
            dst[3 * i + 1] = g
            dst[3 * i + 2] = b
        }
    }

    /// Pillow's ImagingAlphaComposite with an opaque white destination: blend = 255 * (255 - a), so
    /// coef1 = a * 128 and coef2 = (255 - a) * 128 exactly (7 bits of precision); a fully transparent source keeps
    /// the destination.
    @inline(__always)
    static func onWhite(_ c: UInt8, _ a: UInt8) -> UInt8 {
        if a == 0 { return 255 }
        let coef1 = UInt32(a) * 128, coef2 = 255 * 128 - coef1
        let t = UInt32(c) * coef1 + 255 * coef2 + (0x80 << 7)
        return UInt8(truncatingIfNeeded: (((t >> 8) + t) >> 8) >> 7)
    }

    /// Pillow's MULDIV255: a * b / 255 rounded, for a, b in 0...255.
    @inline(__always)
    static func mulDiv255(_ a: Int, _ b: Int) -> Int {
        let t = a * b + 128
        return ((t >> 8) + t) >> 8
    }

    @inline(__always)
    static func clip8(_ v: Int) -> UInt8 { UInt8(clamping: v) }
}
