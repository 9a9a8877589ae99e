// Gemma3MultiModalProjector (transformers modeling_gemma3.py): the tower's last hidden state (patches x hidden,
// patch = row * side + column) average-pooled k x k (k = patches per side / tokens per side; nn.AvgPool2d(k, stride
// k): the window's sum in row-major order, divided by k²), Gemma's RMSNorm x·rsqrt(mean(x²) + eps)·(1 + w) in f32
// with the vision config's layer_norm_eps, then x·W with W [vision hidden, text hidden] (a plain matmul, not an
// nn.Linear). The rows are not scaled by √d_text: transformers scatters them after the text embedding's scaling.
import GemmaKernels

/// Pooled tokens `range` (token = r * tokensPerSide + c) of one image's hidden states.
struct AveragePoolJob: RangeJob {
    let x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    let width: Int, patchesPerSide: Int, tokensPerSide: Int, kernel: Int
    func run(worker: Int, range: Range<Int>) {
        let k = kernel, inv = 1 / Float(k * k)
        for t in range {
            let r = t / tokensPerSide, c = t % tokensPerSide, dst = out + t * width
            dst.update(repeating: 0, count: width)
            for ky in 0..<k {
                for kx in 0..<k {
                    let src = x + ((r * k + ky) * patchesPerSide + c * k + kx) * width
                    for j in 0..<width { dst[j] += src[j] }
                }
            }
            for j in 0..<width { dst[j] *= inv }
        }
    }
}

/// Rows `range` RMSNormed with the soft-embedding norm: `out = x * rsqrt(mean(x²) + eps) * weight` (weight = 1 + w).
struct SoftEmbNormJob: RangeJob {
    let x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float, width: Int, out: UnsafeMutablePointer<Float>
    func run(worker: Int, range: Range<Int>) {
        for t in range { rmsNorm(x + t * width, weight: weight, offset: 0, eps: eps, count: width, into: out + t * width) }
    }
}
