// `gemma quantize --to FORMAT`: the report's release formats and the GGUF types, each with the per-tensor policy of
// the release it stands for. A GGUF format is a conversion (Converter) with that policy: norms f32 as llama.cpp reads
// them; the tied embedding as the release keeps it (f16 in Google's Q4_0 QAT GGUFs, llama-quantize's rule for the
// K-quants and q8_0, the file's own type for floats). Formats without a ggml type go to a container whose readers know
// them (see `container`).
import GemmaFormats

/// A target of `gemma quantize`.
public enum QuantizeFormat: String, CaseIterable, Sendable {
    case sfp8
    case int4Channel = "int4-channel"
    case int4Block = "int4-block"
    case q4_0, q8_0, q4_k, q6_k, bf16, f16, f32

    /// Parses a name in any case; "int4-b32" and "q4_K" style spellings too.
    public static func named(_ name: String) throws(ConvertError) -> QuantizeFormat {
        let n = name.lowercased()
        if n == "int4-b32" || n == "int4-blocks32" { return .int4Block }
        if n == "int4" { return .int4Channel }
        guard let f = QuantizeFormat(rawValue: n) else {
            throw .unsupported("unknown format \"\(name)\": the formats are \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return f
    }

    /// The GGUF conversion type of a format that GGUF holds as a ggml type.
    public var ggufType: ConvertType? {
        switch self {
        case .int4Block, .q4_0: .q4_0
        case .q8_0: .q8_0
        case .q4_k: .q4_k
        case .q6_k: .q6_k
        case .bf16: .bf16
        case .f16: .f16
        case .f32: .f32
        case .int4Channel: .int4_channel
        case .sfp8: nil
        }
    }

    /// The embedding's type when the release keeps it otherwise than llama-quantize's rule (nil: the rule).
    public var embeddingType: TensorType? {
        switch self {
        case .int4Block: .f16  // Google's gemma-3-*-qat-q4_0-gguf files keep token_embd F16
        case .int4Channel: .bf16  // dm/gemma quantizes the einsums only
        default: nil
        }
    }

    /// The file name extension of the container that holds this format.
    public var container: String {
        switch self {
        case .sfp8: ".sbs"  // gemma.cpp's BlobStore: the one engine besides us that runs SFP8 reads it
        default: ".gguf"  // int4-channel under the extended type id 1024 and the swift_gemma.extended_types marker
        }
    }

    /// One line on the policy, for the user.
    public var policy: String {
        switch self {
        case .int4Block: "every matrix q4_0 (int4, one f16 scale per 32 weights), the embedding f16 as in Google's QAT Q4_0 GGUFs, norms f32"
        case .q8_0: "every matrix q8_0, norms f32"
        case .q4_0, .q4_k, .q6_k: "every matrix \(rawValue), the tied embedding by llama-quantize's rule for the output head, norms f32"
        case .bf16, .f16, .f32: "every matrix \(rawValue), norms f32"
        case .sfp8: "every matrix SFP8 with one scale per tensor, the embedding and norms bf16, as gemma.cpp stores them"
        case .int4Channel: "every matrix int4 with one scale per row (dm/gemma's convention), the embedding bf16, norms f32"
        }
    }
}

extension Converter {
    /// Writes `input` (any model we read) as a gemma.cpp .sbs file at `output` with SFP8 matrices (SbsExport: the
    /// per-tensor scale, the embedding and norms bf16), refusing an existing output unless `force`.
    @discardableResult
    public static func writeSFP8(input: String, output: String, force: Bool,
                                 progress: (ConvertEvent) -> Void = { _ in }) throws(ConvertError) -> [SbsExport.Written] {
        _ = try checkOutput(output, format: .gguf, input: input, force: force)  // a file, like a GGUF
        let source = try ConversionInput(path: input)
        let c = source.checkpoint.config
        var vocabulary = source.vocabulary
        if let note = try ConversionPlan.padVocabulary(&vocabulary, to: c.vocabSize) { progress(.note(note)) }
        return try SbsExport.write(source: source.checkpoint.source, naming: source.checkpoint.naming,
                                   normOffset: source.checkpoint.normOffset, config: c,
                                   tokenizer: vocabulary.sentencePieceModel(), matrices: .sfp8, to: output) { i, n, name in
            let matrix = ["att_ein", "qkv_ein", "gating_ein", "linear_w"].contains { name.hasPrefix($0) }
            progress(.tensor(index: i, count: n, name: name, type: matrix ? "SFP8" : "BF16"))
        }
    }
}
