// The errors of the vision encoder and projector: configuration, weight binding and input failures, each naming the
// key, tensor or numbers involved. Nothing read from a file reaches a crash: bad input throws one of these.
import GemmaFormats

public enum VisionEncoderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The configuration (config.json's vision_config, or an mmproj file's clip.* metadata) is missing, inconsistent
    /// or asks for something this encoder does not implement.
    case config(String)
    /// The checkpoint has no vision tower (a text-only Gemma 3: 270M, 1B).
    case noVisionTower(String)
    /// A required weight is absent.
    case missingWeight(String)
    /// A weight has the wrong shape: expected and found in PyTorch order (outermost first).
    case weightShape(name: String, expected: [Int], found: [Int])
    /// A weight is stored in a format the encoder cannot compute with.
    case unsupportedWeightType(name: String, type: String)
    /// The file itself could not be read.
    case format(FormatError)
    /// Pixel values of the wrong size or count.
    case input(String)

    public var description: String {
        switch self {
        case let .config(s): "vision config: \(s)"
        case let .noVisionTower(s): "no vision tower: \(s)"
        case let .missingWeight(n): "vision weight \(n) is missing from the checkpoint"
        case let .weightShape(n, e, f): "vision weight \(n) has shape \(f) but the config needs \(e)"
        case let .unsupportedWeightType(n, t): "vision weight \(n) is stored as \(t), which is not supported"
        case let .format(e): e.description
        case let .input(s): "vision input: \(s)"
        }
    }
}
