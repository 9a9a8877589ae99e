// The weight types a conversion writes (`gemma convert --type`): float types for either output, the quantized GGUF
// types our quantizers produce (Quantize.swift, Quantize+KQuants.swift), and llama.cpp's `general.file_type` for each.

import GemmaFormats

/// A target weight type of a conversion.
public enum ConvertType: String, CaseIterable, Sendable {
    case f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k
    /// The report's per-channel int4 (dm/gemma's convention), in a GGUF under our extended type id (llama.cpp refuses it).
    case int4_channel

    /// The ggml type of a weight matrix converted to this type (before any per-tensor fallback).
    public var tensorType: TensorType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .q4_k: .q4_K
        case .q6_k: .q6_K
        case .int4_channel: .int4Channel
        }
    }

    /// True for the unquantized types (the ones a Hugging Face folder can hold).
    public var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }

    /// The safetensors dtype of a float type.
    public var safetensorsDType: SafetensorsDType? {
        switch self {
        case .f32: .F32
        case .f16: .F16
        case .bf16: .BF16
        default: nil
        }
    }

    /// llama.cpp's `llama_ftype` for a file of this type (`general.file_type`). A whole-file q4_k has no exact
    /// llama.cpp name; it is closest to Q4_K_S (14), which is Q4_K apart from a few tensors at Q5_K.
    public var fileType: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .q4_k: 14
        case .q6_k: 18
        case .bf16: 32
        case .int4_channel: 1024  // no llama_ftype: the extended type's id
        }
    }

    /// Parses a type name, in any case ("q4_K", "Q8_0", "bf16").
    public static func named(_ name: String) throws(ConvertError) -> ConvertType {
        guard let t = ConvertType(rawValue: name.lowercased()) else { throw .unknownType(name) }
        return t
    }

    /// The type whose ggml type is `t`, if any.
    public init?(_ t: TensorType) {
        guard let match = Self.allCases.first(where: { $0.tensorType == t }) else { return nil }
        self = match
    }
}
