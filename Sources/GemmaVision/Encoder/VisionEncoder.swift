// Pixels to soft tokens: the SigLIP vision tower (transformers' SiglipVisionTransformer: patch embedding, position
// embedding, pre-LN encoder layers, post_layernorm) and Gemma 3's multimodal projector (MultimodalProjector.swift),
// for a batch of images (an image and its Pan & Scan crops) in one call. Images go through the tower one at a time:
// one image's 4096 patch rows already give the products far more rows than they need to reuse each weight panel well
// (they run in blocks of 512), and the buffers (allocated once per call) stay one image's size. Products are the
// batched f32 panel GEMM of GemmaKernels on the worker pool; attention is EncoderAttention.swift. Loading:
// VisionEncoder+Load.swift. Measurements: docs/kernels.md.
import GemmaFormats
import GemmaKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `encode` reports after each encoder layer of each image (for progress on long encodes).
public struct VisionEncodeProgress: Sendable, Equatable {
    /// The image being encoded (0-based) and how many there are in the call.
    public var image: Int
    public var images: Int
    /// Encoder layers finished for this image, of `layers`.
    public var layer: Int
    public var layers: Int

    /// Layers finished over the whole call, as a fraction.
    public var fraction: Double { Double(image * layers + layer) / Double(max(1, images * layers)) }
}

/// An intermediate result of `encode`, for tests that compare stage by stage.
package enum VisionStage: Sendable, Equatable {
    /// Patch embedding + position embedding (patches x hidden).
    case embeddings
    /// The residual stream after encoder layer i (patches x hidden).
    case layer(Int)
    /// After post_layernorm (patches x hidden): the tower's last_hidden_state.
    case lastHiddenState
    /// Average-pooled (tokens x hidden), RMSNormed (tokens x hidden), projected (tokens x text hidden).
    case pooled, normed, softTokens
}

/// The SigLIP encoder and multimodal projector of a Gemma 3 checkpoint, loaded once; `Sendable`, share freely.
public final class VisionEncoder: Sendable {
    public let config: Gemma3VisionConfig
    /// How the checkpoint named its weights (an mmproj file: the first layer's FFN naming).
    public let naming: VisionTensorNaming
    public let threads: Int
    public let precision: Precision
    package let weights: VisionWeights

    /// Binds `weights` (bound by `VisionWeights`) for `config`; `threads` workers (default: every core).
    package init(config: Gemma3VisionConfig, weights: VisionWeights, naming: VisionTensorNaming, threads: Int? = nil,
                 precision: Precision = .fast) {
        self.config = config
        self.weights = weights
        self.naming = naming
        self.threads = max(1, threads ?? Self.defaultThreads)
        self.precision = precision
    }

    /// All online cores.
    static var defaultThreads: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Floats of one image's output (soft tokens x text hidden).
    public var outputPerImage: Int { config.mmTokensPerImage * config.textHiddenSize }

    /// Soft-token rows for `images` images: `pixelValues` is [images, channels, imageSize, imageSize] (transformers'
    /// `pixel_values`, CHW, normalized); the result is [images, mmTokensPerImage, textHiddenSize], not scaled by
    /// √textHidden. `progress` is called after every encoder layer of every image.
    public func encode(pixelValues: [Float], images: Int,
                       progress: ((VisionEncodeProgress) -> Void)? = nil) throws(VisionEncoderError) -> [Float] {
        try pixelValues.withUnsafeBufferPointer { p throws(VisionEncoderError) in
            try encode(pixelValues: p, images: images, progress: progress, observe: nil)
        }
    }

    /// `encode` over pixel values in caller-owned memory.
    public func encode(pixelValues: UnsafeBufferPointer<Float>, images: Int,
                       progress: ((VisionEncodeProgress) -> Void)? = nil) throws(VisionEncoderError) -> [Float] {
        try encode(pixelValues: pixelValues, images: images, progress: progress, observe: nil)
    }

    /// `encode` with an observer of every stage of every image (tests); `layers` limits the encoder layers run
    /// (benchmarks: the rest of the pass is skipped only in depth, all other stages run).
    package func encode(pixelValues: UnsafeBufferPointer<Float>, images: Int, layers: Int? = nil,
                        progress: ((VisionEncodeProgress) -> Void)? = nil,
                        observe: ((_ image: Int, _ stage: VisionStage, _ values: UnsafeBufferPointer<Float>) -> Void)?) throws(VisionEncoderError) -> [Float] {
        let s = config.siglip
        guard images >= 1 else { throw .input("\(images) images: at least one is needed") }
        guard pixelValues.count == images * s.pixelsPerImage else {
            throw .input("\(pixelValues.count) pixel values for \(images) image(s) of \(s.numChannels) x \(s.imageSize) x \(s.imageSize) "
                + "(\(images * s.pixelsPerImage) needed)")
        }
        let pool = WorkerPool.shared(threads: threads)
        let ws = EncoderWorkspace(config, workers: pool.threads)
        var result = [Float](repeating: 0, count: images * outputPerImage)
        let depth = min(layers ?? s.numHiddenLayers, s.numHiddenLayers)
        result.withUnsafeMutableBufferPointer { out in
            for image in 0..<images {
                encodeImage(pixelValues.baseAddress! + image * s.pixelsPerImage, image: image, images: images, depth: depth,
                            into: out.baseAddress! + image * outputPerImage, ws, pool, progress, observe)
            }
        }
        return result
    }

    /// One image through the tower and the projector. Follows SiglipVisionTransformer.forward and
    /// Gemma3MultiModalProjector.forward.
    private func encodeImage(_ pixels: UnsafePointer<Float>, image: Int, images: Int, depth: Int, into out: UnsafeMutablePointer<Float>,
                             _ ws: EncoderWorkspace, _ pool: WorkerPool, _ progress: ((VisionEncodeProgress) -> Void)?,
                             _ observe: ((Int, VisionStage, UnsafeBufferPointer<Float>) -> Void)?) {
        let s = config.siglip, w = weights, n = s.numPatches, h = s.hiddenSize, f = s.intermediateSize
        let eps = s.layerNormEps, mm = ws.matmul, precision = precision
        /// y = x·Wᵀ for `rows` rows, in blocks of `EncoderWorkspace.tokenBlock` rows (each output's arithmetic is the
        /// same whatever the block: the GEMM tile sums over k in one order).
        func product(_ m: WeightMatrix, _ x: UnsafePointer<Float>, _ xStride: Int, rows: Int, into y: UnsafeMutablePointer<Float>, _ yStride: Int) {
            var t = 0
            while t < rows {
                // A last block too small for the GEMM joins the one before.
                let left = rows - t, b = left < EncoderWorkspace.tokenBlock + WeightMatrix.gemmMinimumBatch ? left : EncoderWorkspace.tokenBlock
                m.multiply(x + t * xStride, xStride: xStride, batch: b, into: y + t * yStride, yStride: yStride, precision: precision,
                           pool: pool, scratch: mm)
                t += b
            }
        }
        func show(_ stage: VisionStage, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
            observe?(image, stage, UnsafeBufferPointer(start: p, count: count))
        }
        // Embeddings: the patch conv as a product over im2col rows, + bias, + position embedding.
        pool.parallelFor(n, minimumPerWorker: 16, PatchJob(pixels: pixels, patches: ws.patches, channels: s.numChannels,
                                                            imageSize: s.imageSize, patchSize: s.patchSize, side: s.patchesPerSide))
        product(w.patchEmbedding, ws.patches, s.patchLength, rows: n, into: ws.x, h)
        pool.parallelFor(n, minimumPerWorker: 16, EmbeddingJob(x: ws.x, bias: w.patchBias, position: w.positionEmbedding, width: h))
        show(.embeddings, ws.x, n * h)

        let attention = EncoderAttention(tokens: n, heads: s.numAttentionHeads, headDim: s.headDim,
                                         scale: 1 / Float(s.headDim).squareRoot())
        for l in 0..<depth {
            // x: [n, h]. SiglipEncoderLayer.forward: pre-LN attention, then pre-LN MLP, each added to the residual.
            let layer = w.layers[l]
            pool.parallelFor(n, minimumPerWorker: 16, LayerNormJob(x: ws.x, weight: layer.norm1Weight, bias: layer.norm1Bias,
                                                                   eps: eps, width: h, out: ws.normed))
            product(layer.q, ws.normed, h, rows: n, into: ws.q, h)
            product(layer.k, ws.normed, h, rows: n, into: ws.k, h)
            product(layer.v, ws.normed, h, rows: n, into: ws.v, h)
            attention(q: ws.q, k: ws.k, v: ws.v, qBias: layer.qBias, kBias: layer.kBias, vBias: layer.vBias, out: ws.attn,
                      buffers: ws.attention, pool: pool)
            product(layer.o, ws.attn, h, rows: n, into: ws.branch, h)
            pool.parallelFor(n, minimumPerWorker: 16, ResidualJob(x: ws.x, branch: ws.branch, bias: layer.oBias, width: h))

            pool.parallelFor(n, minimumPerWorker: 16, LayerNormJob(x: ws.x, weight: layer.norm2Weight, bias: layer.norm2Bias,
                                                                   eps: eps, width: h, out: ws.normed))
            product(layer.fc1, ws.normed, h, rows: n, into: ws.mlp, f)
            pool.parallelFor(n, minimumPerWorker: 8, BiasGeluJob(y: ws.mlp, bias: layer.fc1Bias, width: f))
            product(layer.fc2, ws.mlp, f, rows: n, into: ws.branch, h)
            pool.parallelFor(n, minimumPerWorker: 16, ResidualJob(x: ws.x, branch: ws.branch, bias: layer.fc2Bias, width: h))
            show(.layer(l), ws.x, n * h)
            progress?(VisionEncodeProgress(image: image, images: images, layer: l + 1, layers: depth))
        }
        pool.parallelFor(n, minimumPerWorker: 16, LayerNormJob(x: ws.x, weight: w.postNormWeight, bias: w.postNormBias,
                                                               eps: eps, width: h, out: ws.normed))
        show(.lastHiddenState, ws.normed, n * h)

        // The projector: pool, norm, project.
        let tokens = config.mmTokensPerImage
        pool.parallelFor(tokens, minimumPerWorker: 4, AveragePoolJob(x: ws.normed, out: ws.pooled, width: h, patchesPerSide: s.patchesPerSide,
                                                                    tokensPerSide: config.tokensPerSide, kernel: config.poolKernel))
        show(.pooled, ws.pooled, tokens * h)
        pool.parallelFor(tokens, minimumPerWorker: 4, SoftEmbNormJob(x: ws.pooled, weight: w.softEmbNorm, eps: eps, width: h, out: ws.pooledNormed))
        show(.normed, ws.pooledNormed, tokens * h)
        product(w.inputProjection, ws.pooledNormed, h, rows: tokens, into: out, config.textHiddenSize)
        show(.softTokens, out, tokens * config.textHiddenSize)
    }
}

/// The activations of one image's pass, allocated once per `encode` call (the pass itself allocates nothing).
/// Shapes are (rows, width) row-major.
final class EncoderWorkspace {
    let patches: UnsafeMutablePointer<Float>       // (patches, channels * patch²)  im2col of the pixels
    let x: UnsafeMutablePointer<Float>             // (patches, hidden)   the residual stream
    let normed: UnsafeMutablePointer<Float>        // (patches, hidden)   LayerNorm(x); at the end last_hidden_state
    let q, k, v: UnsafeMutablePointer<Float>       // (patches, hidden)   projections before their biases
    let attn: UnsafeMutablePointer<Float>          // (patches, hidden)   attention output, heads side by side
    let branch: UnsafeMutablePointer<Float>        // (patches, hidden)   out_proj / fc2 output before bias and residual
    let mlp: UnsafeMutablePointer<Float>           // (patches, intermediate)   gelu_tanh(fc1(x))
    let pooled, pooledNormed: UnsafeMutablePointer<Float>  // (soft tokens, hidden)
    let attention: EncoderAttentionBuffers
    let matmul: MatmulScratch
    /// Rows per product call: each weight panel then meets a block of activations that stays in L3 (512 x 4304
    /// floats = 8.8 MB) instead of all 4096 rows (70 MB), and the packed activations need only a block's room.
    /// Measured one core, f16 weights, 4096 rows: q 82 -> 88 GFLOP/s, fc2 unchanged (76-78).
    static let tokenBlock = 512
    private let owned: [UnsafeMutableRawPointer]

    init(_ c: Gemma3VisionConfig, workers: Int) {
        let s = c.siglip, n = s.numPatches, h = s.hiddenSize
        var owned: [UnsafeMutableRawPointer] = []
        func alloc(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
            owned.append(p)
            return p.bindMemory(to: Float.self, capacity: max(count, 1))
        }
        patches = alloc(n * s.patchLength)
        x = alloc(n * h); normed = alloc(n * h); q = alloc(n * h); k = alloc(n * h); v = alloc(n * h)
        attn = alloc(n * h); branch = alloc(n * h); mlp = alloc(n * s.intermediateSize)
        pooled = alloc(c.mmTokensPerImage * h); pooledNormed = alloc(c.mmTokensPerImage * h)
        attention = EncoderAttentionBuffers(tokens: n, heads: s.numAttentionHeads, headDim: s.headDim, workers: workers)
        matmul = MatmulScratch(workers: workers, maxCols: max(s.patchLength, h, s.intermediateSize), maxBatch: min(n, Self.tokenBlock + WeightMatrix.gemmMinimumBatch))
        self.owned = owned
    }

    deinit { for p in owned { p.deallocate() } }
}
