// Writes a safetensors file whose tensors are produced one after another, never holding more than the piece being
// written: the header first (dtypes and shapes are known before the data, so every offset is), then each tensor's
// bytes in the order the header lists them. The file is written under a temporary name and renamed at `finish()`.
// For the same metadata and tensors in the same order the bytes are those of SafetensorsWriter.serialized().

/// Streams a safetensors file to disk: declare every tensor up front, then write their bytes in order.
public final class SafetensorsStreamWriter: TensorByteStream {
    /// A tensor as the header declares it: name, dtype, and shape in PyTorch order.
    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let dtype: SafetensorsDType
        public let shape: [Int]

        public init(name: String, dtype: SafetensorsDType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
    }

    public let tensors: [Tensor]
    private let byteCounts: [Int]
    private let file: PendingFile
    private var current = 0, currentWritten = 0
    private var finished = false

    /// Creates the temporary file and writes the header.
    ///
    /// - Parameters:
    ///   - path: The final path; the file appears there only when `finish()` succeeds.
    ///   - metadata: The "__metadata__" entries (none: no "__metadata__" object).
    ///   - tensors: Every tensor, in the order their data will be written (`SafetensorsWriter.precedesLikeReference`
    ///     gives the reference library's order).
    /// - Throws: `FormatError` for a duplicate or reserved name, an impossible shape, or I/O.
    public init(path: String, metadata: [(key: String, value: String)] = [], tensors: [Tensor]) throws(FormatError) {
        var names = Set<String>()
        var counts: [Int] = []
        for t in tensors {
            guard names.insert(t.name).inserted else { throw .duplicate(what: "tensor", name: t.name) }
            counts.append(try SafetensorsWriter.checkedByteCount(name: t.name, dtype: t.dtype, shape: t.shape))
        }
        self.tensors = tensors
        byteCounts = counts
        let header = try SafetensorsWriter.header(
            metadata: metadata, tensors: zip(tensors, counts).map { ($0.name, $0.dtype, $0.shape, $1) })
        file = try PendingFile(path: path)
        try file.write(header)
        skipEmptyTensors()
    }

    /// The name of the tensor whose bytes come next, nil when all are written.
    public var nextTensor: String? { current < tensors.count ? tensors[current].name : nil }

    /// Appends bytes of the current tensor; a tensor may come in any number of pieces, but a piece never runs past
    /// the end of its tensor.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(FormatError) {
        guard !finished else { throw .io(path: file.path, reason: "written after finish()") }
        guard current < tensors.count else {
            throw .badTensorData(tensor: "(none)", reason: "\(bytes.count) bytes written after the last tensor")
        }
        let remaining = byteCounts[current] - currentWritten
        guard bytes.count <= remaining else {
            throw .badTensorData(tensor: tensors[current].name,
                                 reason: "\(bytes.count) bytes written where \(remaining) of its \(byteCounts[current]) remain")
        }
        try file.write(bytes)
        currentWritten += bytes.count
        if currentWritten == byteCounts[current] {
            current += 1
            currentWritten = 0
            skipEmptyTensors()
        }
    }

    /// Checks that every tensor is complete, then flushes the file and renames it to its final path.
    public func finish() throws(FormatError) {
        guard current == tensors.count else {
            throw .badTensorData(tensor: tensors[current].name,
                                 reason: "has \(currentWritten) of its \(byteCounts[current]) bytes at finish()")
        }
        finished = true
        try file.commit()
    }

    /// Deletes the temporary file (also done when the writer is dropped unfinished).
    public func cancel() {
        finished = true
        file.discard()
    }

    private func skipEmptyTensors() {
        while current < tensors.count && byteCounts[current] == 0 { current += 1 }
    }
}
