// Writes a GGUF file whose tensors are produced one after another, never holding more than the piece being written:
// the header and every tensor info first (types and dimensions are known before the data), then each tensor's bytes
// in the order the infos list them, padded to the alignment. The file is written under a temporary name and renamed
// at `finish()`. For the same metadata and tensors the bytes are those of GGUFWriter.serialized().

/// Streams a GGUF file to disk: declare every tensor up front, then write their bytes in order.
public final class GGUFStreamWriter: TensorByteStream {
    /// A tensor as the header declares it: name, type, and dimensions in ggml order (row length first).
    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let type: TensorType
        public let dimensions: [Int]

        public init(name: String, type: TensorType, dimensions: [Int]) {
            self.name = name
            self.type = type
            self.dimensions = dimensions
        }
    }

    public let tensors: [Tensor]
    private let byteCounts: [Int]
    private let alignment: Int
    private let file: PendingFile
    /// The tensor being written, and how many of its bytes are written.
    private var current = 0, currentWritten = 0
    private var finished = false

    /// Creates the temporary file and writes the header, the metadata and the tensor infos.
    ///
    /// - Parameters:
    ///   - path: The final path; the file appears there only when `finish()` succeeds.
    ///   - metadata: The metadata, written in its order (general.alignment, when set, sets the alignment).
    ///   - tensors: Every tensor, in the order their data will be written.
    /// - Throws: `FormatError` for a duplicate name, impossible dimensions, a row that is not whole blocks, or I/O.
    public init(path: String, metadata: GGUFMetadata, tensors: [Tensor]) throws(FormatError) {
        var names = Set<String>()
        var counts: [Int] = []
        for t in tensors {
            guard names.insert(t.name).inserted else { throw .duplicate(what: "tensor", name: t.name) }
            counts.append(try GGUFWriter.checkedByteCount(name: t.name, type: t.type, dimensions: t.dimensions))
        }
        self.tensors = tensors
        byteCounts = counts
        alignment = GGUFWriter(metadata: metadata).alignment
        file = try PendingFile(path: path)
        let infos = zip(tensors, counts).map { (name: $0.name, type: $0.type, dimensions: $0.dimensions, byteCount: $1) }
        try file.write(GGUFWriter.header(metadata: metadata, tensors: infos, alignment: alignment))
        try skipEmptyTensors()
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
            try padToAlignment()
            current += 1
            currentWritten = 0
            try skipEmptyTensors()
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

    private func padToAlignment() throws(FormatError) {
        let n = GGUFWriter.align(file.bytesWritten, alignment) - file.bytesWritten
        if n > 0 { try file.write([UInt8](repeating: 0, count: n)) }
    }

    private func skipEmptyTensors() throws(FormatError) {
        while current < tensors.count && byteCounts[current] == 0 { current += 1 }
    }
}
