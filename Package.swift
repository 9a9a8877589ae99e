// swift-tools-version: 6.1
// swift-gemma: a Gemma 3 inference engine for Linux CPUs.
// CPU-specific code generation (-target-cpu native) is passed by the Makefile and scripts, never by unsafe build
// settings here, so that this package stays usable as a dependency.
import PackageDescription

let package = Package(
    name: "swift-gemma",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Gemma", targets: ["GemmaFormats", "GemmaKernels", "GemmaTokenizer", "GemmaModel", "GemmaVision", "GemmaGenerate", "GemmaConvert", "GemmaGrammar"]),
        .library(name: "GemmaServer", targets: ["GemmaServer"]),
        .executable(name: "gemma", targets: ["gemma"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // Memory-mapped files, GGUF and safetensors readers/writers, tensor types and block layouts, JSON. Knows nothing
        // of Gemma.
        .target(name: "GemmaFormats"),
        // CPU hints Swift cannot spell (software prefetch), as static inline C.
        .target(name: "CPUHints"),
        // Numeric kernels over buffers: products per weight format, RMSNorm, GELU, softmax, a worker pool.
        .target(name: "GemmaKernels", dependencies: ["GemmaFormats", "CPUHints"]),
        // SentencePiece vocabulary, encoder with byte fallback, streaming detokenizer.
        .target(name: "GemmaTokenizer", dependencies: ["GemmaFormats"]),
        // Gemma3Config, weight binding by name, the text transformer and its KV cache.
        .target(name: "GemmaModel", dependencies: ["GemmaFormats", "GemmaKernels", "CPUHints"]),
        // Image input: JPEG, PNG and WebP decoded by the system's libjpeg-turbo, libpng and libwebp (found with
        // pkg-config; scripts/setup.sh installs the Debian packages), their setjmp error paths in a small C target.
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CWebP", pkgConfig: "libwebpdemux", providers: [.apt(["libwebp-dev"])]),
        .target(name: "CImageCodecs", dependencies: ["CJPEG", "CPNG"]),
        // Images to soft tokens: decoding, preprocessing and Pan & Scan as transformers' Gemma3ImageProcessor (Image/),
        // the SigLIP vision encoder and Gemma 3's multimodal projector (Encoder/).
        .target(name: "GemmaVision", dependencies: ["CImageCodecs", "CWebP", "GemmaFormats", "GemmaKernels"]),
        // Grammars (GBNF, JSON Schema) as token masks over a vocabulary trie: constrained decoding.
        .target(name: "GemmaGrammar", dependencies: ["GemmaFormats"]),
        // Sampling, the generation loop with its stop conditions, perplexity.
        .target(name: "GemmaGenerate", dependencies: ["GemmaModel", "GemmaTokenizer", "GemmaVision", "GemmaGrammar"]),
        // Checkpoint conversion: Hugging Face folders to GGUF files (quantized) and GGUF files to Hugging Face folders.
        .target(name: "GemmaConvert", dependencies: ["GemmaFormats", "GemmaKernels", "GemmaModel", "GemmaTokenizer"]),
        // Training: the text model's loss and gradient in f32.
        // The Hugging Face hub: `gemma pull`, the shared cache.
        .target(name: "GemmaHub", dependencies: ["GemmaFormats"]),
        .target(name: "GemmaTrain", dependencies: ["GemmaFormats", "GemmaKernels", "GemmaModel", "GemmaTokenizer", "GemmaGenerate"]),
        // OpenAI-compatible HTTP server: routes, request/response types, server-sent events, batching scheduler, and
        // the chat page (ChatPage/chat.html, embedded as ChatPage.swift by scripts/embed-chat-page.py).
        .target(
            name: "GemmaServer",
            dependencies: [
                "GemmaFormats",
                "GemmaGenerate",
                "GemmaGrammar",
                "GemmaModel",
                "GemmaTokenizer",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            exclude: ["ChatPage"]
        ),
        // The command-line tool: thin subcommands over the library.
        .executableTarget(
            name: "gemma",
            dependencies: [
                "GemmaFormats",
                "GemmaTokenizer",
                "GemmaModel",
                "GemmaGenerate",
                "GemmaVision",
                "GemmaConvert",
                "GemmaGrammar",
                "GemmaServer",
                "GemmaTrain",
                "GemmaHub",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        // Encode time of the vision encoder on a checkpoint (random full-size weights: scripts/reference/make_random_mmproj.py).
        .executableTarget(name: "vision-encoder-bench", dependencies: ["GemmaVision", "GemmaKernels", "GemmaFormats", "BenchSupport"],
                          path: "Benchmarks/VisionEncoderBench"),
        // One decode row's attention deep in a context, alone (random cache; issue 18).
        .executableTarget(name: "attention-bench", dependencies: ["GemmaModel", "GemmaKernels", "BenchSupport"], path: "Benchmarks/AttentionBench"),
        .executableTarget(name: "row-kernel-bench", dependencies: ["GemmaKernels", "GemmaFormats", "BenchSupport"], path: "Benchmarks/RowKernelBench"),
        // The benchmarks' command-line options.
        .target(name: "BenchSupport", path: "Benchmarks/Support"),
        // What every test target shares: fixture and model paths, a seeded generator, top-k.
        .target(name: "GemmaTestSupport", path: "Tests/GemmaTestSupport"),
        .testTarget(name: "GemmaFormatsTests", dependencies: ["GemmaFormats", "GemmaKernels", "GemmaTestSupport"]),
        .testTarget(name: "GemmaGrammarTests", dependencies: ["GemmaGrammar", "GemmaTokenizer", "GemmaFormats", "GemmaTestSupport"]),
        .testTarget(name: "GemmaTokenizerTests", dependencies: ["GemmaTokenizer", "GemmaFormats", "GemmaTestSupport"]),
        .testTarget(name: "GemmaKernelsTests", dependencies: ["GemmaKernels", "GemmaFormats", "GemmaTestSupport"]),
        .testTarget(name: "GemmaVisionTests", dependencies: ["GemmaVision", "GemmaKernels", "GemmaFormats", "GemmaTestSupport"]),
        .testTarget(name: "GemmaModelTests", dependencies: ["GemmaModel", "GemmaKernels", "GemmaFormats", "GemmaTestSupport"]),
        .testTarget(name: "GemmaGenerateTests", dependencies: ["GemmaGenerate", "GemmaGrammar", "GemmaModel", "GemmaTokenizer", "GemmaVision", "GemmaFormats", "GemmaConvert", "GemmaTestSupport"]),
        .testTarget(name: "GemmaHubTests", dependencies: ["GemmaHub"]),
        .testTarget(name: "GemmaTrainTests", dependencies: ["GemmaTrain", "GemmaModel", "GemmaFormats", "GemmaTokenizer", "GemmaGenerate", "GemmaConvert", "GemmaTestSupport"]),
        .testTarget(
            name: "GemmaConvertTests",
            dependencies: ["GemmaConvert", "GemmaModel", "GemmaFormats", "GemmaTokenizer", "GemmaTestSupport"]
        ),
        .testTarget(
            name: "GemmaServerTests",
            dependencies: ["GemmaServer", "GemmaGenerate", "GemmaTestSupport", .product(name: "Hummingbird", package: "hummingbird")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
