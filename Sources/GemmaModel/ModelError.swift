// The one error type of GemmaModel: configuration and weight-binding failures, naming what is wrong.
import GemmaFormats

public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The model's configuration is missing, inconsistent or unsupported.
    case config(String)
    /// A required weight is absent.
    case missingWeight(String)
    /// A weight has the wrong shape: expected and found in PyTorch order (outermost first: [rows, cols]).
    case weightShape(name: String, expected: [Int], found: [Int])
    /// A weight is stored in a format the engine cannot compute with.
    case unsupportedWeightType(name: String, type: String)
    /// The file itself could not be read.
    case format(FormatError)
    /// A token id outside the vocabulary, or a sequence longer than the context.
    case input(String)

    public var description: String {
        switch self {
        case let .config(s): "model config: \(s)"
        case let .missingWeight(n): "weight \(n) is missing from the model file"
        case let .weightShape(n, e, f): "weight \(n) has shape \(f) but the config needs \(e)"
        case let .unsupportedWeightType(n, t): "weight \(n) is stored as \(t), which is not supported"
        case let .format(e): e.description
        case let .input(s): s
        }
    }
}
