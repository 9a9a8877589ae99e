// Tensor element types of GGUF files (ggml's `ggml_type` ids) with their block geometry, plus this engine's own
// extended types (ids from `extendedBase` = 1024 up, far outside ggml's range).
// Ids and sizes follow ggml.h / gguf-py's GGML_QUANT_SIZES; a file may name any id, and ids we do not know are errors.
//
// Extended types are cases of this enum rather than a separate field of GGUFTensorInfo, so that the code that sizes,
// dequantizes and binds tensors by type (GGUF reader and writers, weight encodings, kernels) handles them as it
// handles any type; what keeps them from masquerading as ggml is the container: a GGUF reader accepts an extended id
// only when the file's `swift_gemma.extended_types` metadata lists it by id and name (GGUFFile.swift), and our
// writers add that key whenever they write one. llama.cpp refuses such a file ("invalid ggml type") instead of
// misreading its bytes, because the id is past GGML_TYPE_COUNT.

/// The storage type of a tensor: a plain scalar type, a quantized ggml block format, or an extended type (`isGGML`
/// false) that only this engine reads.
public enum TensorType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41
    /// Extended: int4 with one f32 scale per row (output channel), dm/gemma's per-channel int4 (see
    /// BlockLayouts.swift: a row is the scale, then Q4_0's nibble layout without the per-block scales).
    case int4Channel = 1024

    /// The first id of this engine's extended types (ggml's ids stay far below).
    public static let extendedBase: UInt32 = 1024

    /// True for ggml's own types; false for the extended ones, which only a file marked for them may hold.
    public var isGGML: Bool { rawValue < Self.extendedBase }

    /// Bytes every row of this type carries besides its blocks (int4Channel: the f32 scale).
    public var rowOverheadBytes: Int { self == .int4Channel ? 4 : 0 }

    /// Elements per block (1 for scalar types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .i8, .i16, .i32, .i64, .f64: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl, .mxfp4, .int4Channel: 32
        case .nvfp4: 64
        case .q1_0: 128
        default: 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .i8: 1
        case .i16: 2
        case .i32: 4
        case .i64, .f64: 8
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: 34
        case .q8_1: 36  // ggml's block_q8_1 (half2 ds + 32 bytes); gguf-py 0.19 says 40 (an old float layout)
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        case .q8_K: 292
        case .iq2_xxs: 66
        case .iq2_xs: 74
        case .iq3_xxs: 98
        case .iq1_s: 50
        case .iq4_nl: 18
        case .iq3_s: 110
        case .iq2_s: 82
        case .iq4_xs: 136
        case .iq1_m: 56
        case .tq1_0: 54
        case .tq2_0: 66
        case .mxfp4: 17
        case .nvfp4: 36
        case .q1_0: 18
        case .int4Channel: 16  // the nibbles of 32 weights; the row's scale is `rowOverheadBytes`
        }
    }

    /// ggml's name for the type ("Q4_K", "F32", ...).
    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .f64: "F64"
        case .i8: "I8"
        case .i16: "I16"
        case .i32: "I32"
        case .i64: "I64"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q8_1: "Q8_1"
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        case .iq2_xxs: "IQ2_XXS"
        case .iq2_xs: "IQ2_XS"
        case .iq3_xxs: "IQ3_XXS"
        case .iq1_s: "IQ1_S"
        case .iq4_nl: "IQ4_NL"
        case .iq3_s: "IQ3_S"
        case .iq2_s: "IQ2_S"
        case .iq4_xs: "IQ4_XS"
        case .iq1_m: "IQ1_M"
        case .tq1_0: "TQ1_0"
        case .tq2_0: "TQ2_0"
        case .mxfp4: "MXFP4"
        case .nvfp4: "NVFP4"
        case .q1_0: "Q1_0"
        case .int4Channel: "INT4_CHANNEL"
        }
    }

    /// Bytes taken by a row of `count` elements (with the row's `rowOverheadBytes`), or nil when `count` is not a
    /// whole number of blocks or overflows.
    public func rowBytes(_ count: Int) -> Int? {
        guard count >= 0, count % blockSize == 0 else { return nil }
        let (bytes, overflow) = (count / blockSize).multipliedReportingOverflow(by: blockBytes)
        let (total, o2) = bytes.addingReportingOverflow(rowOverheadBytes)
        return overflow || o2 ? nil : total
    }

    /// Bytes taken by `rows` rows of `cols` elements, or nil when `cols` is not a whole number of blocks or the size
    /// overflows. (For ggml types the same as `rowBytes(rows * cols)`.)
    public func byteCount(rows: Int, cols: Int) -> Int? {
        guard rows >= 0, let r = rowBytes(cols) else { return nil }
        let (bytes, overflow) = r.multipliedReportingOverflow(by: rows)
        return overflow ? nil : bytes
    }
}
