// The one error type of GemmaTokenizer: every way a vocabulary or a tokenizer file can be malformed or unsupported, or an
// id out of range.
import GemmaFormats

/// An error building a tokenizer from a vocabulary, or using it with an id it does not have.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The vocabulary has no pieces.
    case emptyVocabulary
    /// More pieces than a 32-bit token id can address.
    case tooManyPieces(Int)
    /// A per-token array whose length differs from the number of pieces.
    case lengthMismatch(field: String, count: Int, pieces: Int)
    /// A token type value outside SentencePiece's 1...6 (normal, unknown, control, user-defined, unused, byte).
    case invalidTokenType(id: Int, value: Int)
    /// A special-token id (BOS, EOS, UNK, PAD) outside the vocabulary.
    case specialIDOutOfRange(name: String, id: Int, vocabularySize: Int)
    /// Some of the 256 byte pieces `<0x00>`…`<0xFF>` are missing and there is no unknown token to fall back to.
    case noByteFallback(missing: Int)
    /// The tokenizer model named in the file is not one this encoder implements (SentencePiece "llama").
    case unsupportedModel(String)
    /// A metadata key that is required, absent or of the wrong type.
    case metadata(key: String, reason: String)
    /// The model file could not be read.
    case format(FormatError)
    /// A token id outside the vocabulary was given to the decoder.
    case invalidTokenID(Int, vocabularySize: Int)
    /// A tokenizer file (`tokenizer.model`, `tokenizer.json`, `tokenizer_config.json`) that is not what its format
    /// says: truncated, mis-typed, inconsistent.
    case malformed(file: String, reason: String)
    /// A well-formed tokenizer file asking for something this SentencePiece-style encoder does not do (a Unigram
    /// model, a normalizer other than spaces to U+2581, ...), which would silently give different ids.
    case unsupported(file: String, reason: String)
    /// A model folder with neither `tokenizer.model` nor `tokenizer.json`.
    case noTokenizerFile(directory: String)
    /// A file that exists but could not be read.
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .emptyVocabulary: "the vocabulary has no pieces"
        case let .tooManyPieces(n): "the vocabulary has \(n) pieces, more than a 32-bit token id can address"
        case let .lengthMismatch(field, count, pieces): "\(field) has \(count) entries but the vocabulary has \(pieces) pieces"
        case let .invalidTokenType(id, value): "token \(id) has type \(value); SentencePiece types are 1...6"
        case let .specialIDOutOfRange(name, id, size): "\(name) token id \(id) is outside the vocabulary of \(size) pieces"
        case let .noByteFallback(missing):
            "\(missing) of the 256 byte pieces <0x00>...<0xFF> are missing and there is no unknown token to fall back to"
        case let .unsupportedModel(name):
            "tokenizer model \"\(name)\" is not supported (only SentencePiece \"llama\" vocabularies are)"
        case let .metadata(key, reason): "metadata \(key): \(reason)"
        case let .format(error): error.description
        case let .invalidTokenID(id, size): "token id \(id) is outside the vocabulary of \(size) pieces"
        case let .malformed(file, reason): "\(file): \(reason)"
        case let .unsupported(file, reason): "\(file): not supported: \(reason)"
        case let .noTokenizerFile(directory): "\(directory) has neither tokenizer.model nor tokenizer.json"
        case let .unreadable(path, reason): "\(path): \(reason)"
        }
    }
}
