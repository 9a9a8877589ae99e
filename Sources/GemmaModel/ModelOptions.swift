// How a model is loaded and run: the one set of choices every entry point (library, CLI commands, server) takes.
import Foundation
import GemmaFormats
import GemmaKernels

/// Load-time and run-time choices for a model.
public struct ModelOptions: Sendable, Equatable {
    /// Worker threads for matrix products and attention.
    public var threads: Int
    /// `.fast`: int16-quantized activations in the integer kernels; `.exact`: f32 activations and dequantized weights.
    public var precision: Precision
    /// Where the weights live while the model runs (see `WeightPlacement`).
    public var placement: WeightPlacement
    /// How KV caches made by `Gemma3Model.makeState` store keys and values (f16 by default, as llama.cpp).
    public var kvStorage: KVStorage
    /// How token embeddings are scaled by sqrt(hidden) (see `EmbeddingScale`).
    public var embeddingScale: EmbeddingScale
    /// Whether Q5_0 matrices are rewritten as Q8_0 at load: lossless (the same scales and integers, every result
    /// bit-identical), 55% more bytes for those matrices, and decoding ~10-15% faster where Q5_0's bit unpacking
    /// rather than memory is the bottleneck. Default (nil): on CPUs without AVX-512 (measured on AMD EPYC Zen 3).
    public var widenQ5_0: Bool

    /// Whether Q5_0 and Q8_0 matrices (rows a multiple of 128 wide) are regrouped at load into the decode kernels'
    /// lane order (GemmaKernels' LaneOrder.swift): the same bytes and values, every result bit-identical, and no byte
    /// permutes left in the decode step. Made in place in the weights' private copy (`WeightPlacement.hugePages`),
    /// so not for weights read from the file mapping; not in `.exact` precision (which dequantizes rows). Default
    /// (nil): where the CPU has the VBMI byte kernels (`CPUFeatures.avx512vbmi`).
    public var laneOrder: Bool

    /// `widenQ5_0`'s default on this CPU: on where there is no AVX-512.
    public static var widensQ5_0ByDefault: Bool { !CPUFeatures.avx512 }

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, precision: Precision = .fast,
                placement: WeightPlacement = .auto, kvStorage: KVStorage = .f16, embeddingScale: EmbeddingScale = .exact,
                widenQ5_0: Bool? = nil, laneOrder: Bool? = nil) {
        self.widenQ5_0 = widenQ5_0 ?? Self.widensQ5_0ByDefault
        self.laneOrder = laneOrder ?? CPUFeatures.avx512vbmi
        self.threads = max(1, threads)
        self.precision = precision
        self.placement = placement
        self.kvStorage = kvStorage
        self.embeddingScale = embeddingScale
    }
}
