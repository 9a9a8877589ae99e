// A GGUF file (versions 2 and 3) read from untrusted bytes: header, metadata, tensor infos, and the data section.
// Layout per ggml's docs/gguf.md. Every length, count, offset and dimension product is checked before use, so a
// malformed or hostile file ends in a thrown FormatError: no crash, no hang, no allocation beyond the file's size.

/// Where one tensor's data lies and what it holds.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: TensorType
    /// ggml order: `dimensions[0]` is the contiguous (row) length; a [cols, rows] matrix has `rows` rows.
    public let dimensions: [Int]
    /// Byte offset of the data, relative to the start of the data section.
    public let offset: Int

    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Bytes of the data (checked against overflow when the file was read).
    public var byteCount: Int { type.byteCount(rows: rowCount, cols: dimensions.first ?? 1) ?? 0 }
    /// Rows, counting every dimension past the first.
    public var rowCount: Int { dimensions.dropFirst().reduce(1, *) }
    /// Bytes per row of `dimensions[0]` elements (with the row's scale for an extended per-row type).
    public var rowBytes: Int { type.rowBytes(dimensions.first ?? 1) ?? 0 }

    public init(name: String, type: TensorType, dimensions: [Int], offset: Int) {
        self.name = name
        self.type = type
        self.dimensions = dimensions
        self.offset = offset
    }
}

/// A parsed GGUF file over bytes that it keeps alive (usually a read-only memory mapping).
public final class GGUFFile: Sendable {
    public static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian
    public static let defaultAlignment = 32
    /// ggml's GGML_MAX_DIMS.
    public static let maxDimensions = 4
    /// Arrays nested deeper than this are refused (no real file nests at all; this bounds recursion).
    static let maxArrayDepth = 8

    public let storage: ByteStorage
    public let version: UInt32
    public let metadata: GGUFMetadata
    public let tensors: [GGUFTensorInfo]
    /// Alignment of tensor data (general.alignment, default 32).
    public let alignment: Int
    /// Byte offset of the data section in the file.
    public let dataOffset: Int
    private let tensorIndex: [String: Int]

    /// Maps and parses the file at `path`.
    public convenience init(path: String) throws(FormatError) {
        try self.init(storage: ByteStorage(mapping: path))
    }

    /// Parses `bytes` (copied).
    public convenience init(bytes: [UInt8]) throws(FormatError) {
        try self.init(storage: ByteStorage(bytes: bytes))
    }

    public init(storage: ByteStorage) throws(FormatError) {
        self.storage = storage
        var r = ByteReader(storage.buffer)

        let magic = try r.read(UInt32.self, "magic")
        guard magic == Self.magic else { throw .badMagic(found: magic) }
        version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }

        // Smallest possible tensor info: name length (8) + n_dims (4) + type (4) + offset (8).
        let tensorCount = try r.readCount("tensor_count", minimumElementSize: 24)
        // Smallest possible key/value: key length (8) + value type (4) + a one-byte value.
        let kvCount = try r.readCount("metadata_kv_count", minimumElementSize: 13)

        var metadata = GGUFMetadata()
        for i in 0..<kvCount {
            let key = try r.readString("metadata key #\(i)")
            let typeID = try r.read(UInt32.self, "metadata \(key) (type)")
            guard let type = GGUFValueType(rawValue: typeID) else {
                throw .unknownValueType(field: "metadata \(key)", id: typeID)
            }
            let value = try Self.readValue(&r, type: type, field: "metadata \(key)", depth: 0)
            guard metadata.append(key, value) else { throw .duplicate(what: "metadata key", name: key) }
        }
        self.metadata = metadata

        var alignment = Self.defaultAlignment
        if let a = metadata["general.alignment"] {
            guard case let .uint32(v) = a else {
                throw .metadata(key: "general.alignment", reason: "must be a uint32, found \(a.type)")
            }
            guard v > 0, v & (v - 1) == 0, v <= 1 << 20 else {
                throw .implausible(field: "general.alignment", value: UInt64(v), reason: "must be a power of two up to 1 MiB")
            }
            alignment = Int(v)
        }
        self.alignment = alignment

        // This engine's extended tensor types are read only from files that declare them (GGUFFile+ExtendedTypes).
        let declaredTypes = try Self.declaredExtendedTypes(metadata)

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(tensorCount)
        var index: [String: Int] = [:]
        for i in 0..<tensorCount {
            let name = try r.readString("tensor #\(i) name")
            let nDims = try r.read(UInt32.self, "tensor \(name) n_dims")
            guard nDims <= UInt32(Self.maxDimensions) else {
                throw .implausible(field: "tensor \(name) n_dims", value: UInt64(nDims), reason: "at most \(Self.maxDimensions) dimensions")
            }
            var dims: [Int] = []
            var elements = 1
            for d in 0..<Int(nDims) {
                let raw = try r.read(UInt64.self, "tensor \(name) dimension \(d)")
                guard raw <= UInt64(Int.max) else {
                    throw .implausible(field: "tensor \(name) dimension \(d)", value: raw, reason: "too large")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(raw))
                guard !overflow else {
                    throw .implausible(field: "tensor \(name) dimension \(d)", value: raw, reason: "element count overflows")
                }
                elements = product
                dims.append(Int(raw))
            }
            if dims.isEmpty { dims = [1] }
            let typeID = try r.read(UInt32.self, "tensor \(name) type")
            guard let type = TensorType(rawValue: typeID) else { throw .unknownTensorType(tensor: name, id: typeID) }
            guard type.isGGML || declaredTypes.contains(type) else {
                throw .metadata(key: Self.extendedTypesKey,
                                reason: "tensor \(name) has the extended type \(typeID) (\(type)), which the file does not declare")
            }
            guard dims[0] % type.blockSize == 0 else {
                throw .badTensorData(tensor: name, reason: "row length \(dims[0]) is not a multiple of the \(type) block size \(type.blockSize)")
            }
            var rows = 1
            for d in dims.dropFirst() {
                let (product, overflow) = rows.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw .implausible(field: "tensor \(name) rows", value: UInt64(d), reason: "row count overflows")
                }
                rows = product
            }
            guard type.byteCount(rows: rows, cols: dims[0]) != nil else {
                throw .implausible(field: "tensor \(name) size", value: UInt64(elements), reason: "byte size overflows")
            }
            let offset = try r.read(UInt64.self, "tensor \(name) offset")
            guard offset <= UInt64(Int.max), Int(offset) % alignment == 0 else {
                throw .badTensorData(tensor: name, reason: "offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            guard index[name] == nil else { throw .duplicate(what: "tensor", name: name) }
            index[name] = infos.count
            infos.append(GGUFTensorInfo(name: name, type: type, dimensions: dims, offset: Int(offset)))
        }

        // The data section starts at the next multiple of the alignment after the tensor infos.
        let headerEnd = r.offset
        let dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        let dataBytes = max(0, storage.count - dataOffset)
        for info in infos {
            let bytes = info.byteCount
            let (end, overflow) = info.offset.addingReportingOverflow(bytes)
            guard !overflow, end <= dataBytes || bytes == 0 else {
                throw .badTensorData(
                    tensor: info.name,
                    reason: "data ends at byte \(overflow ? "(overflow)" : String(dataOffset + end)) but the file has \(storage.count) bytes")
            }
        }
        self.dataOffset = dataOffset
        self.tensors = infos
        self.tensorIndex = index
    }

    /// The tensor named `name`, if present.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of `tensor`'s data; valid while this file object lives.
    public func data(for tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let bytes = tensor.byteCount
        precondition(tensor.offset + bytes <= storage.count - dataOffset || bytes == 0, "tensor not from this file")
        return UnsafeRawBufferPointer(start: storage.base + dataOffset + tensor.offset, count: bytes)
    }

    /// Total file size in bytes.
    public var fileSize: Int { storage.count }

    // MARK: - Values

    private static func readValue(_ r: inout ByteReader, type: GGUFValueType, field: String, depth: Int) throws(FormatError) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try r.read(UInt8.self, field))
        case .int8: return .int8(try r.read(Int8.self, field))
        case .uint16: return .uint16(try r.read(UInt16.self, field))
        case .int16: return .int16(try r.read(Int16.self, field))
        case .uint32: return .uint32(try r.read(UInt32.self, field))
        case .int32: return .int32(try r.read(Int32.self, field))
        case .float32: return .float32(Float(bitPattern: try r.read(UInt32.self, field)))
        case .bool: return .bool(try readBool(&r, field))
        case .string: return .string(try r.readString(field))
        case .uint64: return .uint64(try r.read(UInt64.self, field))
        case .int64: return .int64(try r.read(Int64.self, field))
        case .float64: return .float64(Double(bitPattern: try r.read(UInt64.self, field)))
        case .array: return .array(try readArray(&r, field: field, depth: depth + 1))
        }
    }

    private static func readBool(_ r: inout ByteReader, _ field: String) throws(FormatError) -> Bool {
        let b = try r.read(UInt8.self, field)
        guard b <= 1 else { throw .implausible(field: field, value: UInt64(b), reason: "a bool must be 0 or 1") }
        return b == 1
    }

    private static func readArray(_ r: inout ByteReader, field: String, depth: Int) throws(FormatError) -> GGUFArray {
        guard depth <= maxArrayDepth else {
            throw .implausible(field: field, value: UInt64(depth), reason: "arrays nested more than \(maxArrayDepth) deep")
        }
        let typeID = try r.read(UInt32.self, field + " (array type)")
        guard let type = GGUFValueType(rawValue: typeID) else { throw .unknownValueType(field: field + " (array)", id: typeID) }
        let n = try r.readCount(field + " (array count)", minimumElementSize: type.minimumSize)
        switch type {
        case .uint8: return .uint8(try r.readArray(UInt8.self, count: n, field))
        case .int8: return .int8(try r.readArray(Int8.self, count: n, field))
        case .uint16: return .uint16(try r.readArray(UInt16.self, count: n, field))
        case .int16: return .int16(try r.readArray(Int16.self, count: n, field))
        case .uint32: return .uint32(try r.readArray(UInt32.self, count: n, field))
        case .int32: return .int32(try r.readArray(Int32.self, count: n, field))
        case .float32: return .float32(try r.readArray(UInt32.self, count: n, field).map(Float.init(bitPattern:)))
        case .uint64: return .uint64(try r.readArray(UInt64.self, count: n, field))
        case .int64: return .int64(try r.readArray(Int64.self, count: n, field))
        case .float64: return .float64(try r.readArray(UInt64.self, count: n, field).map(Double.init(bitPattern:)))
        case .bool:
            var out: [Bool] = []
            out.reserveCapacity(n)
            for i in 0..<n { out.append(try readBool(&r, "\(field)[\(i)]")) }
            return .bool(out)
        case .string:
            var out: [String] = []
            out.reserveCapacity(n)
            for i in 0..<n { out.append(try r.readString("\(field)[\(i)]")) }
            return .string(out)
        case .array:
            var out: [GGUFArray] = []
            out.reserveCapacity(n)
            for i in 0..<n { out.append(try readArray(&r, field: "\(field)[\(i)]", depth: depth + 1)) }
            return .array(out)
        }
    }
}
