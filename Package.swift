// swift-tools-version: 6.1
// swift-gemma: a Gemma 3 inference engine for Linux CPUs.
// CPU-specific code generation (-target-cpu native) is passed by the Makefile, never by unsafeFlags here,
// so that this package stays usable as a dependency.
import PackageDescription

let package = Package(
    name: "swift-gemma",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Gemma", targets: ["GemmaFormats", "GemmaKernels", "GemmaTokenizer", "GemmaModel", "GemmaGenerate"]),
        .executable(name: "gemma", targets: ["gemma"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Memory-mapped files, GGUF reader/writer, tensor types and block layouts. Knows nothing of Gemma.
        .target(name: "GemmaFormats"),
        // Numeric kernels over buffers: products per weight format, RMSNorm, GELU, softmax, a worker pool.
        .target(name: "GemmaKernels", dependencies: ["GemmaFormats"]),
        // SentencePiece vocabulary, encoder with byte fallback, streaming detokenizer.
        .target(name: "GemmaTokenizer", dependencies: ["GemmaFormats"]),
        // Gemma3Config, weight binding by name, the text transformer and its KV cache.
        .target(name: "GemmaModel", dependencies: ["GemmaFormats", "GemmaKernels"]),
        // Sampling, the generation loop with its stop conditions, perplexity.
        .target(name: "GemmaGenerate", dependencies: ["GemmaModel", "GemmaTokenizer"]),
        // The command-line tool: thin subcommands over the library.
        .executableTarget(
            name: "gemma",
            dependencies: [
                "GemmaFormats",
                "GemmaTokenizer",
                "GemmaModel",
                "GemmaGenerate",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "GemmaFormatsTests", dependencies: ["GemmaFormats"]),
        .testTarget(name: "GemmaTokenizerTests", dependencies: ["GemmaTokenizer", "GemmaFormats"]),
        .testTarget(name: "GemmaKernelsTests", dependencies: ["GemmaKernels", "GemmaFormats"]),
        .testTarget(name: "GemmaModelTests", dependencies: ["GemmaModel", "GemmaKernels", "GemmaFormats"]),
        .testTarget(name: "GemmaGenerateTests", dependencies: ["GemmaGenerate", "GemmaModel", "GemmaTokenizer"]),
    ],
    swiftLanguageModes: [.v6]
)
