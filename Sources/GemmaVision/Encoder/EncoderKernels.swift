// Row-wise pieces of the SigLIP forward pass, as worker jobs over token rows (structs: a dispatch allocates nothing):
// LayerNorm with weight and bias (torch.nn.LayerNorm: biased variance, (x - mean) * rsqrt(var + eps) * w + b, f32),
// bias + residual, bias + tanh GELU, and the patch embedding's im2col (Conv2d with kernel = stride = patch, "valid",
// as a product over (channel, row, column)-flattened patches in row-major patch order).
import GemmaKernels

/// Sum of `n` floats with independent SIMD partial sums.
@inline(__always)
func sumOf(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    let r = UnsafeRawPointer(x)
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
    var i = 0
    while i + 16 <= n {
        a0 += r.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        a1 += r.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
        i += 16
    }
    var s = (a0 + a1).sum()
    while i < n {
        s += x[i]
        i += 1
    }
    return s
}

/// LayerNorm of one row: `out = (x - mean) / sqrt(var + eps) * w + b`, variance biased (over n), in f32.
/// `out` may alias `x`.
@inline(__always)
func layerNorm(_ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>, eps: Float, count n: Int,
               into out: UnsafeMutablePointer<Float>) {
    let mean = sumOf(x, n) / Float(n)
    var v0: Float = 0, v1: Float = 0, v2: Float = 0, v3: Float = 0
    var i = 0
    while i + 4 <= n {
        let d0 = x[i] - mean, d1 = x[i + 1] - mean, d2 = x[i + 2] - mean, d3 = x[i + 3] - mean
        v0 += d0 * d0; v1 += d1 * d1; v2 += d2 * d2; v3 += d3 * d3
        i += 4
    }
    while i < n {
        let d = x[i] - mean
        v0 += d * d
        i += 1
    }
    let rstd = 1 / ((v0 + v1 + v2 + v3) / Float(n) + eps).squareRoot()
    for j in 0..<n { out[j] = (x[j] - mean) * rstd * w[j] + b[j] }
}

/// Rows `range` of `x` (rows x width) LayerNormed into `out`.
struct LayerNormJob: RangeJob {
    let x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float, width: Int
    let out: UnsafeMutablePointer<Float>
    func run(worker: Int, range: Range<Int>) {
        for t in range { layerNorm(x + t * width, weight: weight, bias: bias, eps: eps, count: width, into: out + t * width) }
    }
}

/// The residual update of rows `range`: `x += branch + bias`.
struct ResidualJob: RangeJob {
    let x: UnsafeMutablePointer<Float>, branch: UnsafePointer<Float>, bias: UnsafePointer<Float>, width: Int
    func run(worker: Int, range: Range<Int>) {
        for t in range {
            let xr = x + t * width, br = branch + t * width
            for j in 0..<width { xr[j] += br[j] + bias[j] }
        }
    }
}

/// The MLP's middle for rows `range`: `y = gelu_tanh(y + bias)` in place.
struct BiasGeluJob: RangeJob {
    let y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, width: Int
    func run(worker: Int, range: Range<Int>) {
        for t in range {
            let r = y + t * width
            for j in 0..<width { r[j] = geluTanh(r[j] + bias[j]) }
        }
    }
}

/// The embeddings of rows `range`: `x = x + bias + position[row]` (x holds the patch product).
struct EmbeddingJob: RangeJob {
    let x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, position: UnsafePointer<Float>, width: Int
    func run(worker: Int, range: Range<Int>) {
        for t in range {
            let r = x + t * width, p = position + t * width
            for j in 0..<width { r[j] = r[j] + bias[j] + p[j] }
        }
    }
}

/// im2col for the patch convolution: patch p = row * side + column of one image's pixel values (channels x size x
/// size, row-major) becomes row p of `patches`, its elements in (channel, patch row, patch column) order, the
/// order of the conv weight [hidden, channels, patch, patch] flattened.
struct PatchJob: RangeJob {
    let pixels: UnsafePointer<Float>, patches: UnsafeMutablePointer<Float>
    let channels: Int, imageSize: Int, patchSize: Int, side: Int
    func run(worker: Int, range: Range<Int>) {
        let ps = patchSize, length = channels * ps * ps
        for p in range {
            let py = p / side, px = p % side
            var dst = patches + p * length
            for c in 0..<channels {
                for ky in 0..<ps {
                    let src = pixels + (c * imageSize + py * ps + ky) * imageSize + px * ps
                    dst.update(from: src, count: ps)
                    dst += ps
                }
            }
        }
    }
}
