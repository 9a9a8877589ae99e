// How a weight matrix's rows are stored, as data: bytes per row for a column count, how to dequantize a row, and
// (optionally) which integer-kernel layout computes on it directly. A GGUF tensor type maps to one at load; an
// encoding with no ggml id (switched fp8) is just another descriptor, and one with an extended id of ours (int4 with
// one scale per row, TensorType.int4Channel) is stored in GGUF files marked for it. Adding an encoding is one
// descriptor (correct through `dequantizeRow` at once) plus, for speed, its kernels.

/// A block layout that the integer kernels (GemmaKernels: row kernels and the int16 GEMM) unpack directly to int16.
/// Each is the ggml block of the same name, or (int4Channel) our per-row-scale int4, whose blocks are Q4_0's nibbles;
/// `activationLimit` bounds the int16-quantized activations so that the kernels' int32 pair sums cannot overflow
/// (Q6_K's 6-bit values times 2 need one bit more headroom).
///
/// `q5_0Lanes`, `q8_0Lanes` and `q4_KLanes` are Q5_0, Q8_0 and Q4_K regrouped at load, in memory only: each four
/// blocks (88 / 136 bytes) or super-block (144) rewritten in the decode kernels' lane order (GemmaKernels'
/// LaneOrder.swift, CPUHints.h `cpu_q5_0_lanes`, `cpu_q8_0_lanes`, `cpu_q4_K_lanes`); no file holds them.
public enum IntegerLayout: Sendable, Equatable, CaseIterable {
    case q8_0, q4_0, q5_0, q4_K, q6_K, int4Channel, q5_0Lanes, q8_0Lanes, q4_KLanes

    /// The tensor type whose values this layout holds (the lane orders: their file type's, in another byte order).
    public var blockType: TensorType {
        switch self {
        case .q8_0, .q8_0Lanes: .q8_0
        case .q4_0: .q4_0
        case .q5_0, .q5_0Lanes: .q5_0
        case .q4_K, .q4_KLanes: .q4_K
        case .q6_K: .q6_K
        case .int4Channel: .int4Channel
        }
    }

    /// Whether this is a lane order made at load (`q5_0Lanes`, `q8_0Lanes`, `q4_KLanes`), which no file holds.
    public var isLaneOrder: Bool { self == .q5_0Lanes || self == .q8_0Lanes || self == .q4_KLanes }

    /// The layout the integer kernels read a file's rows of `type` in (never a lane order).
    public static func of(fileType type: TensorType) -> IntegerLayout? {
        allCases.first { !$0.isLaneOrder && $0.blockType == type }
    }

    /// The largest magnitude of an int16-quantized activation the kernels accept with this layout.
    public var activationLimit: Int32 { self == .q6_K ? 16383 : 32767 }
}

/// A weight encoding: how the elements of a row are stored.
public final class WeightEncoding: Sendable, Hashable, CustomStringConvertible {
    /// Short lowercase name ("q4_k", "bf16", "int4", "sfp8").
    public let name: String
    /// Elements per block: a row must be a whole number of blocks.
    public let blockSize: Int
    /// Bytes per block.
    public let bytesPerBlock: Int
    /// Bytes per row besides its blocks (int4 per channel: a 4-byte scale).
    public let bytesPerRow: Int
    /// The tensor type with this layout, when there is one (what a GGUF file stores: a ggml type, or our extended
    /// int4Channel).
    public let tensorType: TensorType?
    /// The integer-kernel layout, when the integer kernels compute on these rows directly.
    public let integerLayout: IntegerLayout?
    /// Bytes per value of small vectors (norm weights) in a model stored this way (memory planning).
    public let vectorBytesPerValue: Int
    /// A multiplier of every decoded value: SFP8's per-tensor scale (1 for the other encodings). Included in
    /// `dequantizeRow`; kernels that decode rows themselves apply it to their outputs.
    public let scale: Float
    /// Dequantizes one row of `cols` elements (a whole number of blocks) to f32; nil when the engine cannot compute
    /// with this encoding yet (memory planning only).
    public let dequantizeRow: (@Sendable (_ row: UnsafeRawPointer, _ cols: Int, _ out: UnsafeMutablePointer<Float>) -> Void)?

    public init(name: String, blockSize: Int, bytesPerBlock: Int, bytesPerRow: Int = 0, tensorType: TensorType? = nil,
                integerLayout: IntegerLayout? = nil, vectorBytesPerValue: Int = 4, scale: Float = 1,
                dequantizeRow: (@Sendable (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void)?) {
        precondition(blockSize > 0 && bytesPerBlock > 0 && bytesPerRow >= 0)
        self.scale = scale
        self.name = name
        self.blockSize = blockSize
        self.bytesPerBlock = bytesPerBlock
        self.bytesPerRow = bytesPerRow
        self.tensorType = tensorType
        self.integerLayout = integerLayout
        self.vectorBytesPerValue = vectorBytesPerValue
        self.dequantizeRow = dequantizeRow
    }

    /// True when rows can be dequantized (so the model can run on this encoding).
    public var canDequantize: Bool { dequantizeRow != nil }

    /// Bytes of a row of `cols` elements, or nil when `cols` is not a whole number of blocks or overflows.
    public func rowBytes(_ cols: Int) -> Int? {
        guard cols >= 0, cols % blockSize == 0 else { return nil }
        let (blocks, o1) = (cols / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        let (bytes, o2) = blocks.addingReportingOverflow(bytesPerRow)
        return o1 || o2 ? nil : bytes
    }

    /// Bytes of a row at this encoding's rate, rounded up per row when the block does not divide it (planning).
    public func plannedRowBytes(_ cols: Int) -> Int {
        (cols * bytesPerBlock + blockSize - 1) / blockSize + bytesPerRow
    }

    /// Bytes of a `rows` x `columns` matrix at this encoding's rate (see `plannedRowBytes`).
    public func matrixBytes(rows: Int, columns: Int) -> Int { rows * plannedRowBytes(columns) }

    public var description: String { name }
    public static func == (a: WeightEncoding, b: WeightEncoding) -> Bool { a.name == b.name }
    public func hash(into h: inout Hasher) { h.combine(name) }
}

extension WeightEncoding {
    /// The encoding of a GGUF tensor type (dequantized bit-identically to gguf-py), or nil when the type cannot be
    /// computed with.
    public static func of(_ type: TensorType) -> WeightEncoding? {
        type == .int4Channel ? .int4 : type.isGGML ? ggmlEncodings[Int(type.rawValue)] : nil
    }

    /// Planning-only descriptor of a GGUF type (any type with a known block geometry).
    public static func gguf(_ type: TensorType) -> WeightEncoding {
        of(type) ?? WeightEncoding(name: type.description.lowercased(), blockSize: type.blockSize,
                                   bytesPerBlock: type.blockBytes, tensorType: type, dequantizeRow: nil)
    }

    public static var f32: WeightEncoding { gguf(.f32) }
    public static var f16: WeightEncoding { gguf(.f16) }
    public static var bf16: WeightEncoding { gguf(.bf16) }

    /// The report's "Int4" (dm/gemma's per-channel int4): 4-bit integers with one f32 scale per output channel (row),
    /// w = q / scale; stored as TensorType.int4Channel (Int4Channel.swift), computed by the integer kernels.
    public static let int4 = WeightEncoding(name: "int4", blockSize: 32, bytesPerBlock: 16,
                                            bytesPerRow: TensorType.int4Channel.rowOverheadBytes, tensorType: .int4Channel,
                                            integerLayout: .int4Channel, vectorBytesPerValue: 2,
                                            dequantizeRow: { src, cols, out in TensorType.dequantizeInt4Channel(src, count: cols, into: out) })
    /// The report's "Int4 blocks=32": one 16-bit scale per 32 weights, llama.cpp's Q4_0 layout (4.5 bits per weight).
    public static let int4Blocks32 = WeightEncoding(name: "int4-b32", blockSize: 32, bytesPerBlock: 18,
                                                    tensorType: .q4_0, integerLayout: .q4_0, vectorBytesPerValue: 2,
                                                    dequantizeRow: ggmlDequantize(.q4_0))
    /// Switched floating point, 8 bits per weight (gemma.cpp's SFP, the report's "SFP8"; SFP8.swift), with a scale of 1.
    public static let sfp8 = sfp8(scale: 1)

    /// SFP8 whose decoded values are multiplied by `scale` (one per tensor, as gemma.cpp stores it).
    public static func sfp8(scale: Float) -> WeightEncoding {
        WeightEncoding(name: "sfp8", blockSize: 1, bytesPerBlock: 1, vectorBytesPerValue: 2, scale: scale) { src, cols, out in
            SFP8.decode(src.assumingMemoryBound(to: UInt8.self), count: cols, scale: scale, into: out)
        }
    }

    /// Parses "f32", "f16", "bf16", "int4", "int4-b32", "sfp8", or a GGUF type name ("q4_0", "Q4_K", "q6_k", ...).
    public static func named(_ name: String) -> WeightEncoding? {
        switch name.lowercased() {
        case "int4", "int4-channel", "int4_channel": return .int4
        case "int4-b32", "int4-blocks32", "int4b32": return .int4Blocks32
        case "sfp8", "sfp": return .sfp8
        case let other:
            guard let t = TensorType.allCases.first(where: { $0.description.lowercased() == other }),
                  t.blockSize > 1 || t == .f32 || t == .f16 || t == .bf16 else { return nil }
            return .gguf(t)
        }
    }

    /// The names `named(_:)` accepts besides GGUF type names.
    public static let namedFormats = ["bf16", "f16", "f32", "int4", "int4-b32", "sfp8"]

    private static func ggmlDequantize(_ t: TensorType) -> @Sendable (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void {
        // Cannot throw: the type can be dequantized and a row's whole-block count is checked where rows are bound.
        { src, cols, out in try? t.dequantize(src, count: cols, into: out) }
    }

    /// One descriptor per ggml type that can be dequantized, indexed by type id.
    private static let ggmlEncodings: [WeightEncoding?] = {
        let ggml = TensorType.allCases.filter(\.isGGML)
        let maxID = Int(ggml.map(\.rawValue).max()!)
        var table = [WeightEncoding?](repeating: nil, count: maxID + 1)
        for t in ggml where t.canDequantize {
            let layout = IntegerLayout.of(fileType: t)
            table[Int(t.rawValue)] = WeightEncoding(
                name: t.description.lowercased(), blockSize: t.blockSize, bytesPerBlock: t.blockBytes, tensorType: t,
                integerLayout: layout, vectorBytesPerValue: (t == .f16 || t == .bf16) ? 2 : 4,
                dequantizeRow: ggmlDequantize(t))
        }
        return table
    }()
}
