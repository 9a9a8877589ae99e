// The Swift-concurrency face of the engine: a model and its tokenizer loaded once, shared freely, and generation as
// an AsyncThrowingStream of events. Each generation runs on its own thread (model steps are long, blocking CPU work
// that must not occupy the cooperative pool) with its own KV cache; cancelling the consuming task, or dropping the
// stream, ends generation within one model step.
import Foundation
import GemmaFormats
import GemmaGrammar
import GemmaModel
import GemmaTokenizer
import GemmaVision
import Synchronization

/// A Gemma 3 model with its tokenizer, loaded once. Immutable and `Sendable`: share one instance between tasks;
/// every generation gets its own KV cache.
///
/// ```swift
/// let model = try LanguageModel.load(path: "gemma-3-270m-q4_k_m.gguf")
/// var parameters = GenerationParameters(maxTokens: 64, stopStrings: ["\n\n"])
/// parameters.sampling.seed = 42
/// for try await event in model.generate("The capital of France is", parameters) {
///     switch event {
///     case let .text(piece): print(piece, terminator: "")
///     case let .finished(stats): print("\n\(stats.generatedTokens) tokens, \(stats.stopReason)")
///     case .token: break
///     }
/// }
/// ```
public final class LanguageModel: Sendable {
    public let model: Gemma3Model
    public let tokenizer: Tokenizer
    /// The loop's settings (stop tokens); copied by each generation.
    public let generator: Generator
    /// Sampling defaults for this model: its generation_config.json's values when it ships them, else llama.cpp's
    /// (see `SamplingParameters(defaults:)`). The CLI's flags and a request's fields override them.
    public let samplingDefaults: SamplingParameters
    /// The vision encoder and projector (Gemma 3 4B, 12B, 27B): nil for a text-only model.
    public let vision: VisionEncoder?
    /// How images become pixel values: the folder's preprocessor_config.json, else transformers' Gemma3ImageProcessor
    /// at the encoder's image size (896 x 896 for the released models); nil for a text-only model.
    public let imageProcessor: ImageProcessor?
    /// The vocabulary as a trie of characters, built on the first constrained generation (about a second).
    private let trie = Mutex<TokenTrie?>(nil)
    /// Recent constraints, so that a grammar asked for again reuses its stacks and masks (GrammarIndex).
    private let constraints = Mutex<[TokenConstraint]>([])
    static let keptConstraints = 16

    /// Loads a model: weights, config and tokenizer. The one entry every command and the server load through.
    ///
    /// - Parameters:
    ///   - path: A GGUF file, a gemma.cpp .sbs file, or a Hugging Face folder (config.json, safetensors, tokenizer.model or tokenizer.json,
    ///     generation_config.json).
    ///   - options: Threads, precision, where the weights live, KV-cache storage, embedding scale.
    /// - Throws: `ModelError` for a bad file or config, `TokenizerError` for a bad vocabulary.
    ///   - mmproj: A llama.cpp mmproj GGUF file with the vision encoder of a GGUF model (a Hugging Face folder holds
    ///     its own: `vision_tower.*` tensors and `vision_config`, loaded when present).
    public static func load(path: String, options: ModelOptions = ModelOptions(), mmproj: String? = nil) throws -> LanguageModel {
        let model = try Gemma3Model(path: path, options: options)
        var vocabulary: Vocabulary
        if let gguf = model.checkpoint.gguf {
            vocabulary = try Vocabulary(gguf: gguf.metadata)
        } else if let spm = model.checkpoint.sentencePieceModel {
            vocabulary = try Vocabulary(sentencePieceModel: spm)
        } else if let dir = model.checkpoint.directory {
            vocabulary = try Vocabulary(directory: dir)
        } else if model.checkpoint.sbs != nil {
            throw ModelError.config("\(path) holds no tokenizer (no tokenizer blob, and no \(SbsFile.legacyTokenizerName) beside it)")
        } else {
            throw ModelError.config("\(path) holds no tokenizer")
        }
        let rows = model.config.vocabSize
        guard vocabulary.count <= rows else {
            // Its ids past the embedding would have no row.
            throw ModelError.config("\(path): the tokenizer has \(vocabulary.count) tokens but the model's embedding only \(rows) rows")
        }
        // Gemma 3 4B and larger embed 262,208 rows for 262,144 tokenizer pieces: the rest become unused pieces.
        vocabulary = try vocabulary.padded(to: rows)
        var vision: VisionEncoder? = nil
        if let mmproj {
            vision = try VisionEncoder.load(mmproj: mmproj, threads: options.threads, precision: options.precision)
        } else if let dir = model.checkpoint.directory, hasVisionConfig(dir + "/config.json") {
            vision = try VisionEncoder.load(huggingFace: dir, threads: options.threads, precision: options.precision)
        }
        if let v = vision, v.config.textHiddenSize != model.config.hiddenSize {
            throw ModelError.config("the vision encoder projects to width \(v.config.textHiddenSize) but \(path) is \(model.config.hiddenSize) wide: "
                + "the mmproj file belongs to another model size")
        }
        // The folder's preprocessor_config.json when it has one; else `init` makes the default for the encoder.
        var processor: ImageProcessor? = nil
        if vision != nil, let dir = model.checkpoint.directory, FileManager.default.fileExists(atPath: dir + "/preprocessor_config.json") {
            processor = try ImageProcessor(folder: dir)
        }
        return LanguageModel(model: model, tokenizer: try Tokenizer(vocabulary: vocabulary), vision: vision, imageProcessor: processor)
    }

    /// Wraps an already loaded model, tokenizer and (for images) vision encoder and image processor.
    public init(model: Gemma3Model, tokenizer: Tokenizer, vision: VisionEncoder? = nil, imageProcessor: ImageProcessor? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        self.vision = vision
        self.imageProcessor = imageProcessor ?? vision.map { v in
            var c = ImageProcessorConfig()
            c.size = ImageSize(height: v.config.siglip.imageSize, width: v.config.siglip.imageSize)
            c.imageSeqLength = v.config.mmTokensPerImage
            return ImageProcessor(config: c)
        }
        generator = Generator(model: model)
        samplingDefaults = SamplingParameters(defaults: model.checkpoint.generation)
    }

    /// The vocabulary's trie for grammar masks: every token's decoded text (control, unused and partial-UTF-8 byte
    /// tokens never match a grammar). Built once, then shared.
    public var tokenTrie: TokenTrie {
        trie.withLock { t in
            if let t { return t }
            let n = max(tokenizer.vocabulary.count, model.config.vocabSize)
            let built = TokenTrie(tokens: (0..<n).map { id in
                id < tokenizer.vocabulary.count ? try? tokenizer.decodeBytes([TokenID(id)]) : nil
            })
            t = built
            return built
        }
    }

    /// A grammar bound to this model's vocabulary, for `GenerationParameters.constraint`. The same grammar asked for
    /// again (one of the last 16) gets the same constraint, whose masks are already computed.
    public func constraint(_ grammar: Grammar) -> TokenConstraint {
        if let c = constraints.withLock({ $0.first { $0.grammar == grammar } }) { return c }
        let c = TokenConstraint(grammar: grammar, trie: tokenTrie)
        return constraints.withLock { list in
            if let same = list.first(where: { $0.grammar == grammar }) { return same }
            list.insert(c, at: 0)
            if list.count > Self.keptConstraints { list.removeLast() }
            return c
        }
    }

    /// The control tokens around images (from the vision config); nil for a text-only model.
    public var imageTokens: ImageTokens? {
        vision.map { ImageTokens(startOfImage: $0.config.boiTokenIndex, endOfImage: $0.config.eoiTokenIndex, softToken: $0.config.imageTokenIndex) }
    }

    /// The vision encoder, or a clear error for a text-only model.
    public func requireVision() throws -> VisionEncoder {
        guard let vision else {
            throw ModelError.input("this model reads no images: it has no vision encoder (Gemma 3 270M and 1B are text-only; "
                + "for a 4B, 12B or 27B GGUF pass its mmproj file)")
        }
        return vision
    }

    /// Soft tokens of one image's views (the whole image, then its Pan & Scan crops): `pixelValues` holds
    /// `views` preprocessed images ([views, 3, size, size], normalized, as transformers' `pixel_values`); `digest`
    /// identifies the image's content (view i is keyed `digest#i`).
    public func embedImage(pixelValues: [Float], views: Int, digest: String,
                           progress: ((VisionEncodeProgress) -> Void)? = nil) throws -> PromptImage {
        let v = try requireVision()
        let out = try v.encode(pixelValues: pixelValues, images: views, progress: progress)
        let n = v.outputPerImage
        return PromptImage(views: (0..<views).map { i in
            ImageEmbedding(rows: Array(out[i * n ..< (i + 1) * n]), count: v.config.mmTokensPerImage, digest: "\(digest)#\(i)")
        })
    }

    /// Soft tokens of an image file's bytes (JPEG, PNG or WebP): decoded (EXIF orientation applied, alpha dropped,
    /// as transformers' load_image), preprocessed by `imageProcessor` (with Pan & Scan crops when asked and the image
    /// is elongated enough), encoded. The views are keyed by the SHA-256 of the bytes, so the same image asked about
    /// again reuses its cached positions.
    /// - Throws: `ImageError` for a file that is no image, is corrupt or too large (`maxPixels`); `ModelError` for a
    ///   text-only model.
    /// - Parameter digest: the content key when the caller already hashed the bytes (`"sha256:" + SHA256.hex(bytes)`).
    public func embedImage(bytes: [UInt8], panAndScan: Bool = false, maxPixels: Int = DecodeOptions.pilMaxImagePixels,
                           digest: String? = nil, progress: ((VisionEncodeProgress) -> Void)? = nil) throws -> PromptImage {
        _ = try requireVision()
        let image = try RGBImage.decode(bytes, options: DecodeOptions(maxPixels: maxPixels))
        let processed = imageProcessor!.process(image, panAndScan: panAndScan)
        var pixels: [Float] = []
        pixels.reserveCapacity(processed.pixelValues.reduce(0) { $0 + $1.values.count })
        for t in processed.pixelValues { pixels += t.values }
        return try embedImage(pixelValues: pixels, views: processed.pixelValues.count, digest: digest ?? "sha256:" + SHA256.hex(bytes),
                              progress: progress)
    }

    /// Completion of a prompt of token ids and images (`Prompt.raw`, `ChatTemplate.prompt`).
    public func generate(prompt: Prompt, _ parameters: GenerationParameters = GenerationParameters())
        -> AsyncThrowingStream<GenerationEvent, any Error> {
        let capacity = min(contextLength, prompt.count + max(parameters.maxTokens, 0) + 1)
        return Self.stream { isCancelled, emit in
            let state = self.makeState(capacity: capacity, for: prompt)
            _ = try self.generator.run(prompt: prompt, state: state, parameters: parameters, tokenizer: self.tokenizer,
                                       isCancelled: isCancelled, emit: emit)
        }
    }

    /// A state whose forward steps hold the prompt's longest bidirectional span (an image stays in one step).
    public func makeState(capacity: Int, for prompt: Prompt) -> Gemma3State {
        let longest = prompt.bidirectionalSpans.map(\.count).max() ?? 0
        return model.makeState(capacity: capacity, maxBatch: max(64, longest))
    }

    /// The model's context length in tokens.
    public var contextLength: Int { model.config.maxPositionEmbeddings }

    /// Token ids of a raw prompt: BOS, then the text with control tokens such as `<start_of_turn>` recognised.
    public func encode(_ prompt: String) -> [Int] {
        tokenizer.encode(prompt, addSpecial: true, parseSpecial: true).map(Int.init)
    }

    /// Raw completion of `prompt` (BOS added, no chat template).
    ///
    /// - Parameters:
    ///   - prompt: The text to continue; control tokens written as text (`<start_of_turn>`) are recognised.
    ///   - parameters: Sampling, limits, stop strings, log-probabilities.
    /// - Returns: A stream of `.token`, `.text` and finally `.finished` events. Cancelling the consuming task (or
    ///   abandoning the stream) stops generation within one model step.
    public func generate(_ prompt: String, _ parameters: GenerationParameters = GenerationParameters())
        -> AsyncThrowingStream<GenerationEvent, any Error> {
        generate(tokens: encode(prompt), parameters)
    }

    /// Completion of token ids (BOS first).
    public func generate(tokens: [Int], _ parameters: GenerationParameters = GenerationParameters())
        -> AsyncThrowingStream<GenerationEvent, any Error> {
        let capacity = min(contextLength, tokens.count + max(parameters.maxTokens, 0) + 1)
        return Self.stream { isCancelled, emit in
            let state = self.model.makeState(capacity: capacity)
            _ = try self.generator.run(prompt: Prompt(tokens: tokens), state: state, parameters: parameters, tokenizer: self.tokenizer,
                                       isCancelled: isCancelled, emit: emit)
        }
    }

    /// One reply to a conversation in the Gemma 3 chat format (see `ChatTemplate`). For several turns over one KV
    /// cache, use `ChatSession`.
    public func generate(messages: [ChatMessage], _ parameters: GenerationParameters = GenerationParameters())
        -> AsyncThrowingStream<GenerationEvent, any Error> {
        generate(tokens: ChatTemplate.tokens(messages, tokenizer: tokenizer), parameters)
    }

    /// A conversation over this model that keeps its KV cache between turns.
    public func makeChatSession(system: String? = nil, contextLength: Int? = nil,
                                overflow: ChatSession.OverflowPolicy = .dropOldestTurns) -> ChatSession {
        ChatSession(model: self, system: system, contextLength: contextLength ?? min(self.contextLength, 8192),
                    overflow: overflow)
    }

    /// Runs `work` on a new thread, feeding its events into a stream; the stream's termination raises the flag
    /// that `work` polls.
    static func stream(_ work: @escaping @Sendable (_ isCancelled: () -> Bool, _ emit: (GenerationEvent) -> Void) throws -> Void)
        -> AsyncThrowingStream<GenerationEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, any Error>.makeStream()
        let flag = CancelFlag()
        continuation.onTermination = { _ in flag.raise() }
        let thread = Thread {
            do {
                try work({ flag.isRaised }, { continuation.yield($0) })
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        thread.stackSize = 8 << 20
        thread.start()
        return stream
    }
}

/// A one-way flag shared between a stream's consumer and its producer thread.
final class CancelFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func raise() { value.store(true, ordering: .relaxed) }
    var isRaised: Bool { value.load(ordering: .relaxed) }
}

/// True when the Hugging Face config at `path` has a non-null `vision_config` (Gemma3ForConditionalGeneration).
private func hasVisionConfig(_ path: String) -> Bool {
    guard let data = FileManager.default.contents(atPath: path), data.count < 64 << 20,
          let json = try? JSONValue.parse(Array(data)), let v = json["vision_config"] else { return false }
    if case .null = v { return false }
    return true
}
