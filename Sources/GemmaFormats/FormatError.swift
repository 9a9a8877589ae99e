// The one error type of GemmaFormats: every way a file or a conversion can fail, with the field and numbers involved.

/// An error reading, validating, writing or converting a model file. Messages name the field and the numbers.
public enum FormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be opened, stat'ed or mapped.
    case io(path: String, reason: String)
    /// The file does not start with the GGUF magic.
    case badMagic(found: UInt32)
    /// A GGUF version we do not read (v2 and v3 are read).
    case unsupportedVersion(UInt32)
    /// A field runs past the end of the file.
    case truncated(field: String, offset: Int, needed: Int, remaining: Int)
    /// A count, length or dimension is impossible for a file of this size, or overflows.
    case implausible(field: String, value: UInt64, reason: String)
    /// A metadata value type id that GGUF does not define.
    case unknownValueType(field: String, id: UInt32)
    /// A tensor type id that ggml does not define.
    case unknownTensorType(tensor: String, id: UInt32)
    /// A metadata key or tensor name that appears twice.
    case duplicate(what: String, name: String)
    /// A tensor whose data lies outside the data section or is misaligned.
    case badTensorData(tensor: String, reason: String)
    /// A metadata key that was required, absent or of the wrong type.
    case metadata(key: String, reason: String)
    /// A tensor that was required and is absent.
    case missingTensor(String)
    /// A conversion the type does not support (for example quantizing to an IQ type).
    case unsupportedConversion(type: TensorType, operation: String)
    /// An element count that is not a whole number of blocks of the type.
    case notWholeBlocks(type: TensorType, count: Int)
    /// A safetensors header that is not the JSON object the format requires.
    case badHeader(reason: String)
    /// A safetensors dtype string that the format does not define.
    case unknownDType(tensor: String, dtype: String)
    /// A sharded checkpoint's index (model.safetensors.index.json) that is malformed or disagrees with its shards.
    case badIndex(path: String, reason: String)
    /// A gemma.cpp .sbs file whose header, directory or blob ranges are not the BlobStore layout.
    case badBlobStore(reason: String)
    /// A blob of an .sbs file (config, toc, tokenizer, scales, a tensor) that does not deserialize or is inconsistent.
    case badBlob(blob: String, reason: String)
    /// An error in the file at `path` (one shard of a checkpoint, a file opened by path).
    indirect case inFile(path: String, error: FormatError)

    public var description: String {
        switch self {
        case let .io(path, reason): "\(path): \(reason)"
        case let .badMagic(found):
            "not a GGUF file: magic is 0x\(String(found, radix: 16)) but GGUF files start with 0x46554747 (\"GGUF\")"
        case let .unsupportedVersion(v): "GGUF version \(v) is not supported (versions 2 and 3 are)"
        case let .truncated(field, offset, needed, remaining):
            "\(field): needs \(needed) bytes at offset \(offset) but the file has only \(remaining) bytes left"
        case let .implausible(field, value, reason): "\(field) = \(value): \(reason)"
        case let .unknownValueType(field, id): "\(field): unknown metadata value type \(id)"
        case let .unknownTensorType(tensor, id): "tensor \(tensor): unknown tensor type id \(id)"
        case let .duplicate(what, name): "duplicate \(what) \"\(name)\""
        case let .badTensorData(tensor, reason): "tensor \(tensor): \(reason)"
        case let .metadata(key, reason): "metadata \(key): \(reason)"
        case let .missingTensor(name): "tensor \(name) is missing"
        case let .unsupportedConversion(type, operation): "\(operation) is not supported for \(type)"
        case let .notWholeBlocks(type, count):
            "\(count) elements is not a whole number of \(type) blocks of \(type.blockSize)"
        case let .badHeader(reason): "safetensors header: \(reason)"
        case let .unknownDType(tensor, dtype): "tensor \(tensor): unknown safetensors dtype \"\(dtype)\""
        case let .badIndex(path, reason): "\(path): \(reason)"
        case let .badBlobStore(reason): "not a valid .sbs (gemma.cpp BlobStore) file: \(reason)"
        case let .badBlob(blob, reason): ".sbs blob \(blob): \(reason)"
        case let .inFile(path, error): "\(path): \(error)"
        }
    }
}
