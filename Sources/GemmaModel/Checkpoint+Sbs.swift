// A gemma.cpp .sbs file as a checkpoint: the config from its `config` blob (Gemma3Config+Sbs.swift; for a pre-2025
// file the config gemma.cpp deduces, or one the caller gives), its tensors under transformers' names
// (SbsGemmaSource), norms applied as 1 + w, and the tokenizer from its `tokenizer` blob or the `tokenizer.spm` beside
// a pre-2025 file.
import GemmaFormats

extension Checkpoint {
    /// Opens an .sbs file. `config` is used when the file has none (a pre-2025 file of a size gemma.cpp does not
    /// know); a stored or deduced config wins.
    public static func openSbs(path: String, config fallback: Gemma3Config? = nil) throws(ModelError) -> Checkpoint {
        let file: SbsFile
        do { file = try SbsFile(path: path) } catch { throw .format(error) }
        let config: Gemma3Config
        if let stored = file.config {
            do { config = try Gemma3Config(sbs: stored) } catch {
                throw .config("\(path): \(error.description.replacingOccurrences(of: "model config: ", with: ""))")
            }
        } else if let fallback {
            config = fallback
        } else {
            throw .config("\(path) is a pre-2025 .sbs file without a config blob, and its \(file.tensors.count) tensors are no Gemma 3 size gemma.cpp knows: its attention windows cannot be established (open it with a config: Checkpoint.openSbs(path:config:))")
        }
        let source = try SbsGemmaSource(file: file, config: config)
        return Checkpoint(path: path, source: source, config: config, naming: .huggingFace(prefix: SbsGemmaSource.prefix),
                          normOffset: 1, sbs: file)
    }

    /// The SentencePiece model proto an .sbs checkpoint carries (its `tokenizer` blob, or `tokenizer.spm` beside a
    /// pre-2025 file), if any.
    public var sentencePieceModel: [UInt8]? { sbs?.tokenizerModel }
}
