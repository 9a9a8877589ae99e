// Named tensors, whatever file they come from: one protocol that GGUF implements (safetensors next), so that weight
// binding, placement and memory planning never depend on the container format.
//
// Shape convention: PyTorch order, outermost dimension first. A weight matrix is [rows, cols] with rows = output
// features, each row `cols` elements stored contiguously (GGUF lists dimensions the other way round, ggml order).

/// One tensor of a source: its encoding, shape and bytes.
public struct SourceTensor: @unchecked Sendable {  // the bytes point into memory the source keeps alive
    public let name: String
    /// The element encoding; nil when the engine has no descriptor for the stored type (see `storedType`).
    public let encoding: WeightEncoding?
    /// The stored type as the file names it ("Q4_K", "BF16", ...), for messages.
    public let storedType: String
    /// PyTorch order: outermost first; a matrix is [rows, cols].
    public let shape: [Int]
    /// The tensor's bytes, valid while the source lives.
    public let bytes: UnsafeRawBufferPointer

    public init(name: String, encoding: WeightEncoding?, storedType: String, shape: [Int], bytes: UnsafeRawBufferPointer) {
        self.name = name
        self.encoding = encoding
        self.storedType = storedType
        self.shape = shape
        self.bytes = bytes
    }
}

/// A contiguous range of memory holding tensor data.
public struct TensorDataRegion: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    /// True when the bytes are a read-only file mapping whose pages this process may drop once copied (the file
    /// keeps them); false for memory the process owns (dropping those pages would zero them).
    public let releasable: Bool

    public init(bytes: UnsafeRawBufferPointer, releasable: Bool) {
        self.bytes = bytes
        self.releasable = releasable
    }
}

/// A collection of named tensors (a GGUF file; a safetensors checkpoint).
public protocol TensorSource: AnyObject, Sendable {
    /// Every tensor's name, in the source's order.
    var tensorNames: [String] { get }
    /// The tensor named `name`, if present.
    func sourceTensor(named name: String) -> SourceTensor?
    /// The memory regions that hold every tensor's bytes (a weight copy copies these and rebases into the copy).
    var dataRegions: [TensorDataRegion] { get }
}

extension GGUFFile: TensorSource {
    public var tensorNames: [String] { tensors.map(\.name) }

    public func sourceTensor(named name: String) -> SourceTensor? {
        guard let t = tensor(named: name) else { return nil }
        return SourceTensor(name: t.name, encoding: WeightEncoding.of(t.type), storedType: t.type.description,
                            shape: t.dimensions.reversed(), bytes: data(for: t))
    }

    public var dataRegions: [TensorDataRegion] {
        [TensorDataRegion(bytes: UnsafeRawBufferPointer(rebasing: storage.buffer[dataOffset...]),
                          releasable: storage.isFileMapping)]
    }
}
