// Image resizing as Pillow 13 does it for 8-bit images (src/libImaging/Resample.c, ImagingResample), which is what
// transformers' PIL backend runs (image_transforms.resize -> PIL.Image.resize(size, resample)) and what its
// torchvision backend approximates (uint8 antialiased interpolation, within 1 of Pillow on the fixtures):
// a separable convolution in two passes through an 8-bit intermediate; the filter's support is scaled by the downscale
// factor (antialiasing); weights normalized to sum 1 in double, then rounded to 22-bit fixed point; sums start at 1/2
// and are shifted back and clipped to 0...255. The arithmetic below is Pillow's line for line. The pass order matters
// (the intermediate is rounded to 8 bits): horizontal first, except that Pillow 13 runs the vertical pass first when
// the height shrinks by more than twice as many pixels as the width (python-pillow/Pillow#9549, "If height is scaled
// down significantly more than width, resize vertically first"; the condition is the one that reproduces Pillow
// 13.0.0 on 329 random sizes and all five filters, scripts/reference: the merged diff was not read).
import Foundation

/// PIL's resampling filters, with their `PILImageResampling` numbers (preprocessor_config.json's "resample").
public enum ResampleFilter: Int, Sendable, Equatable, CaseIterable {
    case lanczos = 1
    case bilinear = 2
    case bicubic = 3
    case box = 4
    case hamming = 5

    /// Support of the filter at scale 1 (Pillow's `struct filter`).
    var support: Double {
        switch self {
        case .box: 0.5
        case .bilinear, .hamming: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    /// The filter kernel (Pillow's box_filter, bilinear_filter, hamming_filter, bicubic_filter with a = -0.5,
    /// lanczos_filter).
    func weight(_ x: Double) -> Double {
        switch self {
        case .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let x = abs(x)
            return x < 1 ? 1 - x : 0
        case .hamming:
            var x = abs(x)
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            x *= Double.pi
            // Pillow writes 0.54f and 0.46f: float constants, widened to double.
            return sin(x) / x * (Double(Float(0.54)) + Double(Float(0.46)) * cos(x))
        case .bicubic:
            let a = -0.5, x = abs(x)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0
        }
    }

    private func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let y = x * Double.pi
        return sin(y) / y
    }
}

/// The taps of one pass: for output index i, input indices bounds[2i] ..< bounds[2i] + bounds[2i+1] with
/// fixed-point weights k[i * ksize ..< i * ksize + bounds[2i+1]].
struct ResampleTaps {
    static let precisionBits = 32 - 8 - 2

    let ksize: Int
    var bounds: [Int]
    let k: [Int32]

    /// Pillow's precompute_coeffs over the box [0, inSize) followed by normalize_coeffs_8bpc.
    init(inSize: Int, outSize: Int, filter: ResampleFilter) {
        precondition(inSize > 0 && outSize > 0, "ResampleTaps: sizes must be positive")
        // Pillow passes the box as C floats: (double)(in1 - in0) with in0 = 0, in1 = (float)inSize.
        let scale = Double(Float(inSize)) / Double(outSize)
        let filterscale = max(scale, 1)
        let support = filter.support * filterscale
        let ksize = Int(ceil(support)) * 2 + 1
        var bounds = [Int](repeating: 0, count: outSize * 2)
        var kk = [Double](repeating: 0, count: outSize * ksize)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            var ww = 0.0
            let ss = 1 / filterscale
            let xmin = max(Int(center - support + 0.5), 0)  // C's (int) truncates toward zero
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            for x in 0..<max(xmax, 0) {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * ss)
                kk[xx * ksize + x] = w
                ww += w
            }
            if ww != 0 { for x in 0..<max(xmax, 0) { kk[xx * ksize + x] /= ww } }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = max(xmax, 0)
        }
        let one = Double(1 << ResampleTaps.precisionBits)
        self.ksize = ksize
        self.bounds = bounds
        self.k = kk.map { $0 < 0 ? Int32(-0.5 + $0 * one) : Int32(0.5 + $0 * one) }
    }
}

extension RGBImage {
    /// The image resized to `width` x `height` (aspect ratio not kept) as `PIL.Image.resize((width, height), filter)`
    /// does it for an RGB image.
    public func resized(width outWidth: Int, height outHeight: Int, filter: ResampleFilter) -> RGBImage {
        precondition(outWidth > 0 && outHeight > 0, "resized: output size must be positive")
        precondition(width > 0 && height > 0, "resized: empty image")
        let needHorizontal = outWidth != width
        let needVertical = outHeight != height
        if !needHorizontal && !needVertical { return self }

        if needHorizontal && needVertical && outHeight < height && height - outHeight > 2 * (width - outWidth) {
            let vertical = ResampleTaps(inSize: height, outSize: outHeight, filter: filter)
            let horizontal = ResampleTaps(inSize: width, outSize: outWidth, filter: filter)
            let columns = RGBImage.verticalPass(pixels, width: width, outHeight: outHeight, taps: vertical)
            let out = RGBImage.horizontalPass(columns, width: width, rows: 0..<outHeight, outWidth: outWidth,
                                              taps: horizontal)
            return RGBImage(width: outWidth, height: outHeight, pixels: out)
        }

        var vertical = ResampleTaps(inSize: height, outSize: outHeight, filter: filter)
        // Rows of the source the vertical pass reads: the horizontal pass computes only those.
        let firstRow = vertical.bounds[0]
        let lastRow = vertical.bounds[2 * outHeight - 2] + vertical.bounds[2 * outHeight - 1]

        var source = pixels, sourceWidth = width
        if needHorizontal {
            let horizontal = ResampleTaps(inSize: width, outSize: outWidth, filter: filter)
            for i in 0..<outHeight { vertical.bounds[2 * i] -= firstRow }
            source = RGBImage.horizontalPass(pixels, width: width, rows: firstRow..<lastRow, outWidth: outWidth,
                                             taps: horizontal)
            sourceWidth = outWidth
        }
        if needVertical {
            source = RGBImage.verticalPass(source, width: sourceWidth, outHeight: outHeight, taps: vertical)
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: source)
    }

    @inline(__always)
    private static func clip8(_ ss: Int) -> UInt8 {
        UInt8(clamping: ss >> ResampleTaps.precisionBits)
    }

    /// ImagingResampleHorizontal_8bpc over the rows `rows` of an RGB image.
    private static func horizontalPass(_ src: [UInt8], width: Int, rows: Range<Int>, outWidth: Int,
                                       taps: ResampleTaps) -> [UInt8]
    {
        var out = [UInt8](repeating: 0, count: rows.count * outWidth * 3)
        let half = 1 << (ResampleTaps.precisionBits - 1)
        src.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                taps.k.withUnsafeBufferPointer { k in
                    taps.bounds.withUnsafeBufferPointer { b in
                        for (r, y) in rows.enumerated() {
                            let rowIn = y * width * 3, rowOut = r * outWidth * 3
                            for xx in 0..<outWidth {
                                let xmin = b[2 * xx], xmax = b[2 * xx + 1], kb = xx * taps.ksize
                                var s0 = half, s1 = half, s2 = half
                                for x in 0..<xmax {
                                    let w = Int(k[kb + x]), p = rowIn + (x + xmin) * 3
                                    s0 += Int(s[p]) * w
                                    s1 += Int(s[p + 1]) * w
                                    s2 += Int(s[p + 2]) * w
                                }
                                o[rowOut + xx * 3] = clip8(s0)
                                o[rowOut + xx * 3 + 1] = clip8(s1)
                                o[rowOut + xx * 3 + 2] = clip8(s2)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// ImagingResampleVertical_8bpc of an RGB image `width` wide.
    private static func verticalPass(_ src: [UInt8], width: Int, outHeight: Int, taps: ResampleTaps) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outHeight * width * 3)
        let half = 1 << (ResampleTaps.precisionBits - 1)
        let stride = width * 3
        src.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                taps.k.withUnsafeBufferPointer { k in
                    taps.bounds.withUnsafeBufferPointer { b in
                        // Row by row: the same sums in the same order as Pillow's per-pixel loop over y.
                        var acc = [Int](repeating: 0, count: stride)
                        acc.withUnsafeMutableBufferPointer { a in
                            for yy in 0..<outHeight {
                                let ymin = b[2 * yy], ymax = b[2 * yy + 1], kb = yy * taps.ksize
                                for i in 0..<stride { a[i] = half }
                                for y in 0..<ymax {
                                    let w = Int(k[kb + y]), row = (y + ymin) * stride
                                    for i in 0..<stride { a[i] += Int(s[row + i]) * w }
                                }
                                for i in 0..<stride { o[yy * stride + i] = clip8(a[i]) }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
