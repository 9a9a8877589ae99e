// A checkpoint opened from a path: its tensors (a `TensorSource`), its config, how it names its weights, and its
// norm convention. Every way of loading a model goes through here, so that a new container format is one more case
// of `open`: a GGUF file, a Hugging Face folder (Checkpoint+HuggingFace.swift), or a gemma.cpp .sbs file
// (Checkpoint+Sbs.swift).
import Foundation
import GemmaFormats

/// A model checkpoint on disk, opened (memory-mapped) but not yet bound.
public final class Checkpoint: Sendable {
    /// Where it was opened from.
    public let path: String
    public let source: any TensorSource
    public let config: Gemma3Config
    public let naming: TensorNaming
    /// Added to every norm weight when binding (0 for GGUF, 1 for Hugging Face checkpoints).
    public let normOffset: Float
    /// The GGUF file, when the checkpoint is one (its metadata also holds the tokenizer).
    public let gguf: GGUFFile?
    /// What generation_config.json says (empty for GGUF files).
    public let generation: GenerationDefaults
    /// The .sbs file, when the checkpoint is one (it may hold the tokenizer).
    public let sbs: SbsFile?

    public init(path: String, source: any TensorSource, config: Gemma3Config, naming: TensorNaming, normOffset: Float,
                gguf: GGUFFile? = nil, generation: GenerationDefaults = GenerationDefaults(), sbs: SbsFile? = nil) {
        self.path = path
        self.source = source
        self.config = config
        self.naming = naming
        self.normOffset = normOffset
        self.gguf = gguf
        self.generation = generation
        self.sbs = sbs
    }

    /// The folder holding the checkpoint's other files (tokenizer), when it is a Hugging Face folder.
    public var directory: String? { gguf == nil && sbs == nil ? path : nil }

    /// A GGUF file already parsed: its config from the metadata, llama.cpp's names, norms with 1 + w baked in.
    public convenience init(gguf file: GGUFFile, path: String = "") throws(ModelError) {
        self.init(path: path, source: file, config: try Gemma3Config(gguf: file), naming: .gguf, normOffset: 0, gguf: file)
    }

    /// Opens the checkpoint at `path`: a GGUF file, a gemma.cpp .sbs file, or a Hugging Face folder (or a
    /// .safetensors file or config.json inside one).
    public static func open(path: String) throws(ModelError) -> Checkpoint {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .format(.io(path: path, reason: "no such file or folder"))
        }
        if isDirectory.boolValue { return try openHuggingFace(directory: path) }
        if path.hasSuffix(".safetensors") || path.hasSuffix("/config.json") || path.hasSuffix(".safetensors.index.json") {
            return try openHuggingFace(directory: (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent)
        }
        if path.hasSuffix(".sbs") || SbsFile.hasMagic(path: path) { return try openSbs(path: path) }
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw .format(error) }
        return try Checkpoint(gguf: file, path: path)
    }
}
