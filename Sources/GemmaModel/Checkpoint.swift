// A checkpoint opened from a path: its tensors (a `TensorSource`), its config, how it names its weights, and its
// norm convention. Every way of loading a model goes through here, so that a new container format is one more case
// of `open`.
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

    public init(path: String, source: any TensorSource, config: Gemma3Config, naming: TensorNaming, normOffset: Float,
                gguf: GGUFFile? = nil) {
        self.path = path
        self.source = source
        self.config = config
        self.naming = naming
        self.normOffset = normOffset
        self.gguf = gguf
    }

    /// A GGUF file already parsed: its config from the metadata, llama.cpp's names, norms with 1 + w baked in.
    public convenience init(gguf file: GGUFFile, path: String = "") throws(ModelError) {
        self.init(path: path, source: file, config: try Gemma3Config(gguf: file), naming: .gguf, normOffset: 0, gguf: file)
    }

    /// Opens the checkpoint at `path` (a GGUF file).
    public static func open(path: String) throws(ModelError) -> Checkpoint {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw .format(error) }
        return try Checkpoint(gguf: file, path: path)
    }
}
