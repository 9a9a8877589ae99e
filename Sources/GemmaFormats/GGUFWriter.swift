// Writes GGUF v3 files: metadata in insertion order, tensor infos, then tensor data at aligned offsets.
// Reading a file and writing it back gives identical metadata and tensor bytes.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a GGUF file from metadata and tensors.
public struct GGUFWriter: Sendable {
    public struct Tensor: Sendable {
        public let name: String
        public let type: TensorType
        public let dimensions: [Int]
        public let data: [UInt8]
    }

    public var metadata: GGUFMetadata
    public private(set) var tensors: [Tensor] = []
    private var names: Set<String> = []

    public init(metadata: GGUFMetadata = GGUFMetadata()) {
        self.metadata = metadata
    }

    /// A writer holding a copy of `file`'s metadata and every tensor's bytes.
    public init(copying file: GGUFFile) throws(FormatError) {
        self.init(metadata: file.metadata)
        for t in file.tensors {
            try addTensor(name: t.name, type: t.type, dimensions: t.dimensions, data: [UInt8](file.data(for: t)))
        }
    }

    /// Alignment of tensor data: general.alignment when set, else 32.
    public var alignment: Int {
        if case let .uint32(a)? = metadata["general.alignment"], a > 0, a & (a - 1) == 0 { return Int(a) }
        return GGUFFile.defaultAlignment
    }

    /// Adds a tensor; `data` must hold exactly the bytes its type and dimensions need.
    public mutating func addTensor(name: String, type: TensorType, dimensions: [Int], data: [UInt8]) throws(FormatError) {
        guard !names.contains(name) else { throw .duplicate(what: "tensor", name: name) }
        let expected = try Self.checkedByteCount(name: name, type: type, dimensions: dimensions)
        guard expected == data.count else {
            throw .badTensorData(tensor: name, reason: "has \(data.count) bytes but \(type) \(dimensions) needs \(expected)")
        }
        names.insert(name)
        tensors.append(Tensor(name: name, type: type, dimensions: dimensions, data: data))
    }

    /// The bytes a tensor of `type` and `dimensions` (ggml order) takes, or an error naming what is wrong with them.
    static func checkedByteCount(name: String, type: TensorType, dimensions: [Int]) throws(FormatError) -> Int {
        guard (1...GGUFFile.maxDimensions).contains(dimensions.count), dimensions.allSatisfy({ $0 >= 0 }) else {
            throw .badTensorData(tensor: name, reason: "dimensions \(dimensions) are not 1 to 4 non-negative sizes")
        }
        guard dimensions[0] % type.blockSize == 0 else {
            throw .badTensorData(tensor: name, reason: "row length \(dimensions[0]) is not a multiple of the \(type) block size \(type.blockSize)")
        }
        var elements = 1, rows = 1
        for (i, d) in dimensions.enumerated() {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            let (r, o2) = i == 0 ? (rows, false) : rows.multipliedReportingOverflow(by: d)
            guard !overflow, !o2 else { throw .badTensorData(tensor: name, reason: "dimensions \(dimensions) overflow") }
            elements = product
            rows = r
        }
        guard let bytes = type.byteCount(rows: rows, cols: dimensions[0]) else {
            throw .badTensorData(tensor: name, reason: "\(type) \(dimensions) needs too many bytes")
        }
        return bytes
    }

    /// The whole file as bytes.
    public func serialized() -> [UInt8] {
        let infos = tensors.map { (name: $0.name, type: $0.type, dimensions: $0.dimensions, byteCount: $0.data.count) }
        var out = Self.header(metadata: metadata, tensors: infos, alignment: alignment)
        out.reserveCapacity(tensors.reduce(out.count) { $0 + $1.data.count + alignment })
        for t in tensors {
            out.append(contentsOf: t.data)
            Self.pad(&out, alignment)
        }
        return out
    }

    /// Everything before the first tensor's data: the header, the metadata, the tensor infos (each tensor's data at
    /// the next aligned offset after the one before), and the padding up to the aligned start of the data section.
    static func header(metadata: GGUFMetadata, tensors: [(name: String, type: TensorType, dimensions: [Int], byteCount: Int)],
                       alignment: Int) -> [UInt8] {
        // Extended tensor types only ever go out with the marker that declares them (GGUFFile+ExtendedTypes.swift).
        let metadata = GGUFFile.declaringExtendedTypes(metadata, tensors.map(\.type))
        var out: [UInt8] = []
        put(GGUFFile.magic, &out)
        put(UInt32(3), &out)
        put(UInt64(tensors.count), &out)
        put(UInt64(metadata.count), &out)
        for (key, value) in metadata.entries {
            putString(key, &out)
            put(value.type.rawValue, &out)
            putValue(value, &out)
        }
        var offset = 0
        for t in tensors {
            putString(t.name, &out)
            put(UInt32(t.dimensions.count), &out)
            for d in t.dimensions { put(UInt64(d), &out) }
            put(t.type.rawValue, &out)
            put(UInt64(offset), &out)
            offset = align(offset + t.byteCount, alignment)
        }
        pad(&out, alignment)
        return out
    }

    /// Writes the file to `path` through a temporary file and a rename, so a failed write loses nothing.
    public func write(to path: String) throws(FormatError) {
        let bytes = serialized()
        let tmp = path + ".tmp-\(getpid())"
        guard let f = fopen(tmp, "wb") else { throw .io(path: tmp, reason: "cannot create: \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        let closed = fclose(f)
        guard written == bytes.count, closed == 0 else {
            unlink(tmp)
            throw .io(path: tmp, reason: "short write (\(written) of \(bytes.count) bytes)")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw .io(path: path, reason: "cannot rename: \(String(cString: strerror(errno)))")
        }
    }

    // MARK: - Encoding

    static func align(_ n: Int, _ alignment: Int) -> Int { (n + alignment - 1) / alignment * alignment }
    static func pad(_ out: inout [UInt8], _ alignment: Int) {
        out.append(contentsOf: repeatElement(0, count: align(out.count, alignment) - out.count))
    }

    private static func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func putString(_ s: String, _ out: inout [UInt8]) {
        let utf8 = Array(s.utf8)
        put(UInt64(utf8.count), &out)
        out.append(contentsOf: utf8)
    }

    private static func putValue(_ v: GGUFValue, _ out: inout [UInt8]) {
        switch v {
        case let .uint8(x): put(x, &out)
        case let .int8(x): put(x, &out)
        case let .uint16(x): put(x, &out)
        case let .int16(x): put(x, &out)
        case let .uint32(x): put(x, &out)
        case let .int32(x): put(x, &out)
        case let .float32(x): put(x.bitPattern, &out)
        case let .bool(x): put(UInt8(x ? 1 : 0), &out)
        case let .string(x): putString(x, &out)
        case let .uint64(x): put(x, &out)
        case let .int64(x): put(x, &out)
        case let .float64(x): put(x.bitPattern, &out)
        case let .array(a): putArray(a, &out)
        }
    }

    private static func putArray(_ a: GGUFArray, _ out: inout [UInt8]) {
        put(a.elementType.rawValue, &out)
        put(UInt64(a.count), &out)
        switch a {
        case let .uint8(xs): out.append(contentsOf: xs)
        case let .int8(xs): for x in xs { put(x, &out) }
        case let .uint16(xs): for x in xs { put(x, &out) }
        case let .int16(xs): for x in xs { put(x, &out) }
        case let .uint32(xs): for x in xs { put(x, &out) }
        case let .int32(xs): for x in xs { put(x, &out) }
        case let .float32(xs): for x in xs { put(x.bitPattern, &out) }
        case let .bool(xs): for x in xs { put(UInt8(x ? 1 : 0), &out) }
        case let .string(xs): for x in xs { putString(x, &out) }
        case let .uint64(xs): for x in xs { put(x, &out) }
        case let .int64(xs): for x in xs { put(x, &out) }
        case let .float64(xs): for x in xs { put(x.bitPattern, &out) }
        case let .array(xs): for x in xs { putArray(x, &out) }
        }
    }
}
