// The options shared by the subcommands: --model (every command that reads a model file, defaulting to the model
// that scripts/fetch-model.sh caches), and the one group of load and run choices every command that runs the model
// takes (ModelRunOptions: --model, --mmap, --threads, --kv, --exact), loaded through LanguageModel.load.
import ArgumentParser
import Foundation
import GemmaHub
import GemmaFormats
import GemmaGenerate
import GemmaModel
import GemmaVision

struct ModelOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "A GGUF file, a gemma.cpp .sbs file, a Hugging Face model folder, or ORG/REPO[@REVISION][:FILE|:QUANT] from the Hugging Face cache (`gemma pull`) (default: the fetched Gemma 3 270M Q4_K_M).")
    var model: String?

    @Flag(help: "With --model ORG/REPO[:FILE|:QUANT]: download it first if the Hugging Face cache does not hold it.")
    var pull = false

    /// The model path: --model, else $GEMMA_MODEL, else the default model in the cache. Throws if it does not exist.
    func resolve() throws -> String { try resolved().path }

    /// The model path, and for a pulled GGUF repository with a vision encoder its mmproj file.
    func resolved() throws -> (path: String, mmproj: String?) { try Self.resolve(model, pull: pull) }

    /// `resolved()` for a model given some other way (`gemma info`'s argument).
    static func resolve(_ model: String?, pull: Bool = false) throws -> (path: String, mmproj: String?) {
        let path = model ?? ProcessInfo.processInfo.environment["GEMMA_MODEL"] ?? Self.defaultModelPath
        guard FileManager.default.fileExists(atPath: path) else {
            if let ref = HubReference(path) {
                let m = try HubAccess.resolve(ref, pull: pull)
                return (m.model, m.mmproj)
            }
            if model == nil {
                throw ValidationError("no model at \(path): run `make model` (or scripts/fetch-model.sh) to fetch the default model, or pass --model")
            }
            throw ValidationError("no model file at \(path)")
        }
        return (path, nil)
    }

    /// Where scripts/fetch-model.sh puts the default model: $GEMMA_CACHE, else $XDG_CACHE_HOME/swift-gemma, else ~/.cache/swift-gemma.
    static var defaultModelPath: String {
        let env = ProcessInfo.processInfo.environment
        let cache = env["GEMMA_CACHE"]
            ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/swift-gemma")
        return cache + "/gemma-3-270m-q4_k_m.gguf"
    }
}

extension KVStorage: ExpressibleByArgument {}

/// The model and how to run it: the same options on generate, run, chat, perplexity, bench, serve and dump-logits.
struct ModelRunOptions: ParsableArguments {
    @OptionGroup var path: ModelOption

    @Flag(help: "Read the weights in place from the file mapping (default: a private copy on transparent huge pages when the kernel offers them and they fit in half the memory; decoding streams it faster, same resident memory).")
    var mmap = false

    @Option(name: [.customShort("t"), .customLong("threads")], help: "Worker threads (default: all cores).")
    var threadCount: Int?

    @Option(help: "KV-cache storage.")
    var kv: KVStorage = .f16

    @Flag(help: "Exact f32 activations everywhere (no int16-quantized activations in the products).")
    var exact = false

    @Option(help: "A llama.cpp mmproj GGUF file: the vision encoder for a GGUF model (a Hugging Face folder of a 4B, 12B or 27B model has its own).")
    var mmproj: String?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be >= 1") }
    }

    /// --threads, else every core.
    var threads: Int { threadCount ?? ProcessInfo.processInfo.activeProcessorCount }

    /// The load and run choices these options make.
    var options: ModelOptions {
        ModelOptions(threads: threads, precision: exact ? .exact : .fast, placement: mmap ? .mapped : .auto, kvStorage: kv)
    }

    /// Resolves the path and loads the model (with a progress line when stderr is a terminal and `progress`);
    /// errors become one clear line naming the file.
    func load(progress: Bool = true) throws -> LanguageModel {
        let (file, pulledMMProj) = try path.resolved()
        let mmproj = self.mmproj ?? pulledMMProj
        if progress { Progress.loading(file) }
        let t0 = Date()
        do {
            if let mmproj, !FileManager.default.fileExists(atPath: mmproj) { throw ValidationError("no mmproj file at \(mmproj)") }
            let model = try LanguageModel.load(path: file, options: options, mmproj: mmproj)
            if progress { Progress.loaded(seconds: Date().timeIntervalSince(t0)) }
            // Why the weights stayed in the file mapping (too large for the memory limit), always said.
            if let note = model.model.placementNote { writeErr("note: \(note)\n") }
            return model
        } catch {
            throw ExitCodeError(message: "\(file): \(error)")
        }
    }
}

/// Images for the prompt (run, generate, chat): files or URLs, decoded, preprocessed and encoded by the model's vision
/// encoder, with a progress line on a terminal.
struct ImageOptions: ParsableArguments {
    @Option(name: .customLong("image"), help: "An image for a model with a vision encoder: a JPEG, PNG or WebP file, an http(s) URL or a data: URL. Repeatable.")
    var images: [String] = []

    @Flag(name: .customLong("pan-and-scan"), help: "Also encode Pan & Scan crops of wide or tall images (2-4 crops of at least 256 px; 256 more tokens each).")
    var panAndScan = false

    /// Each image read and encoded (in order); errors name the image.
    func embed(_ lm: LanguageModel) throws -> [PromptImage] {
        guard !images.isEmpty else { return [] }
        try Self.requireVision(lm)
        return try images.enumerated().map { i, reference in try embed(lm, reference, index: i + 1, of: images.count) }
    }

    /// One image (a file, an http(s) URL or a data: URL) read and encoded, with progress as image `index` of `count`.
    func embed(_ lm: LanguageModel, _ reference: String, index: Int = 1, of count: Int = 1) throws -> PromptImage {
        do {
            let bytes = try ImageSource.bytes(of: reference)
            let t0 = Date()
            let image = try lm.embedImage(bytes: bytes, panAndScan: panAndScan) { p in Progress.image(index, count, p) }
            Progress.imageDone(index, views: image.views.count, seconds: Date().timeIntervalSince(t0))
            return image
        } catch {
            throw ExitCodeError(message: "image \(reference.hasPrefix("data:") ? "data: URL" : reference): \(error)")
        }
    }

    /// A clear error for a model without a vision encoder.
    static func requireVision(_ lm: LanguageModel) throws {
        if lm.vision == nil {
            throw ExitCodeError(message: "this model reads no images: it has no vision encoder (Gemma 3 270M and 1B are text-only; for a 4B, 12B or 27B GGUF pass --mmproj)")
        }
    }
}
