// The one error type of GemmaConvert: what stops a conversion, naming the file, the tensor or the option involved.
import GemmaFormats
import GemmaModel
import GemmaTokenizer

public enum ConvertError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A `--type` that is not one of `ConvertType`.
    case unknownType(String)
    /// A type the output format cannot hold (a quantized type for a Hugging Face folder).
    case typeNotForFormat(type: ConvertType, format: ConvertFormat)
    /// The output exists and replacing it was not asked for.
    case outputExists(String)
    /// The output exists but is not something a conversion may replace, even when asked to.
    case cannotReplace(path: String, reason: String)
    /// The input is neither a GGUF file nor a Hugging Face folder, or cannot be read as one.
    case input(path: String, reason: String)
    /// The model in the input does not fit what the output can express.
    case unsupported(String)
    /// A weight whose stored type cannot be converted.
    case unsupportedWeight(name: String, type: String)
    /// Writing the output failed.
    case output(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownType(name):
            "unknown weight type \"\(name)\": the types are \(ConvertType.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .typeNotForFormat(type, format):
            "a \(format) holds \(ConvertType.allCases.filter { format.accepts($0) }.map(\.rawValue).joined(separator: ", ")) weights, not \(type.rawValue)"
        case let .outputExists(path): "\(path) exists: pass --force to replace it"
        case let .cannotReplace(path, reason): "will not replace \(path): \(reason)"
        case let .input(path, reason): "\(path): \(reason)"
        case let .unsupported(reason): reason
        case let .unsupportedWeight(name, type): "weight \(name) is stored as \(type), which cannot be converted"
        case let .output(path, reason): "\(path): \(reason)"
        }
    }
}

/// The two kinds of output.
public enum ConvertFormat: String, Sendable, CustomStringConvertible {
    case gguf
    case huggingFace

    /// The output format a path asks for: a name ending in ".gguf" is a GGUF file, anything else a folder.
    public init(outputPath: String) {
        self = outputPath.lowercased().hasSuffix(".gguf") ? .gguf : .huggingFace
    }

    /// True when this format can hold weights of `type`.
    public func accepts(_ type: ConvertType) -> Bool { self == .gguf || type.isFloat }

    public var description: String { self == .gguf ? "GGUF file" : "Hugging Face folder" }
}
