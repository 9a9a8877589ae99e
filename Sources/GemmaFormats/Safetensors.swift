// A Hugging Face safetensors file read from untrusted bytes: a u64 little-endian header length N, N bytes of JSON
// ({name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}), then the byte buffer
// the offsets index (little-endian, C order). Validation follows the reference reader (huggingface/safetensors,
// safetensors/src/tensor.rs: `read_metadata` and `Metadata::validate`): a header of at most 100 MB that starts with
// "{", every size overflow-checked, each tensor's byte count equal to its element count times its dtype's size, and
// the tensors covering the byte buffer exactly, with no gap, no overlap and nothing after the last one (the format's
// rule against polyglot files). Beyond the reference, repeated keys are refused (serde silently keeps the last one).
// A malformed or hostile file ends in a thrown FormatError: no crash, no allocation beyond the header's size.

/// A safetensors element type, in the reference's order (the library's writer puts later types first, so that every
/// tensor starts aligned to its element size).
public enum SafetensorsDType: String, CaseIterable, Sendable, Comparable {
    case BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, C64, F64,
         I64, U64

    /// Bits per element (4 and 6 for the packed microscaling types, whose tensors must fill whole bytes).
    public var bitSize: Int {
        switch self {
        case .F4: 4
        case .F6_E2M3, .F6_E3M2: 6
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3, .F8_E8M0: 8
        case .I16, .U16, .F16, .BF16: 16
        case .I32, .U32, .F32: 32
        case .C64, .F64, .I64, .U64: 64
        }
    }

    /// The engine's encoding of this type, or nil when it cannot compute with it (weight binding then reports the
    /// stored type as unsupported).
    public var encoding: WeightEncoding? {
        switch self {
        case .F32: WeightEncoding.of(.f32)
        case .F16: WeightEncoding.of(.f16)
        case .BF16: WeightEncoding.of(.bf16)
        default: nil
        }
    }

    /// Bytes of `elements` elements, or nil when that overflows or is not a whole number of bytes.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0 else { return nil }
        let (bits, overflow) = elements.multipliedReportingOverflow(by: bitSize)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }

    public static func < (a: Self, b: Self) -> Bool { rank[a]! < rank[b]! }
    private static let rank = Dictionary(uniqueKeysWithValues: allCases.enumerated().map { ($1, $0) })
}

/// One tensor's entry in a safetensors header.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    /// PyTorch order, outermost first; [] is a scalar.
    public let shape: [Int]
    /// Where the data lies, relative to the start of the byte buffer (`begin ..< end`).
    public let begin: Int
    public let end: Int

    public var byteCount: Int { end - begin }
    public var elementCount: Int { shape.reduce(1, *) }  // checked against overflow when the header was read
}

/// A parsed safetensors file over bytes that it keeps alive (usually a read-only memory mapping).
public final class SafetensorsFile: Sendable {
    /// The reference's limit on the header's length (tensor.rs `MAX_HEADER_SIZE`).
    public static let maxHeaderBytes = 100_000_000
    /// JSON numbers are read as doubles: integers above 2^53 are not exact, and no file can need them.
    static let maxExactInteger = 1 << 53

    public let storage: ByteStorage
    /// The tensors in the order the header lists them.
    public let tensors: [SafetensorsTensorInfo]
    /// The "__metadata__" entries, in the header's order (transformers writes {"format": "pt"}).
    public let metadata: [(key: String, value: String)]
    /// Byte offset of the byte buffer in the file: 8 + the header's length.
    public let dataOffset: Int
    private let tensorIndex: [String: Int]

    /// Maps and parses the file at `path`; errors name the file.
    public convenience init(path: String) throws(FormatError) {
        try self.init(storage: ByteStorage(mapping: path), path: path)
    }

    /// Parses `bytes` (copied).
    public convenience init(bytes: [UInt8]) throws(FormatError) {
        try self.init(storage: ByteStorage(bytes: bytes))
    }

    /// Parses `storage`; errors name `path` when given.
    public init(storage: ByteStorage, path: String? = nil) throws(FormatError) {
        self.storage = storage
        let header: Header
        do { header = try Self.parseHeader(storage.buffer) } catch {
            throw path.map { FormatError.inFile(path: $0, error: error) } ?? error
        }
        tensors = header.tensors
        metadata = header.metadata
        dataOffset = header.dataOffset
        tensorIndex = header.index
    }

    private struct Header {
        var tensors: [SafetensorsTensorInfo]
        var metadata: [(key: String, value: String)]
        var dataOffset: Int
        var index: [String: Int]
    }

    private static func parseHeader(_ file: UnsafeRawBufferPointer) throws(FormatError) -> Header {
        guard file.count >= 8 else {
            throw .truncated(field: "safetensors header length", offset: 0, needed: 8, remaining: file.count)
        }
        let n = file.loadUnaligned(as: UInt64.self).littleEndian
        guard n <= UInt64(Self.maxHeaderBytes) else {
            throw .implausible(field: "safetensors header length", value: n,
                               reason: "larger than the format's limit of \(Self.maxHeaderBytes) bytes")
        }
        let headerBytes = Int(n)
        guard headerBytes <= file.count - 8 else {
            throw .truncated(field: "safetensors header", offset: 8, needed: headerBytes, remaining: file.count - 8)
        }
        guard headerBytes > 0, file[8] == UInt8(ascii: "{") else { throw .badHeader(reason: "does not start with {") }
        let json: JSONValue
        do { json = try JSONValue.parse(Array(file[8..<(8 + headerBytes)])) } catch {
            throw .badHeader(reason: "invalid JSON: \(error)")
        }
        guard case let .object(pairs) = json else { throw .badHeader(reason: "not a JSON object") }

        let dataOffset = 8 + headerBytes
        let bufferBytes = file.count - dataOffset
        var infos: [SafetensorsTensorInfo] = []
        infos.reserveCapacity(pairs.count)
        var index: [String: Int] = [:]
        var metadata: [(key: String, value: String)]? = nil
        for (key, value) in pairs {
            if key == "__metadata__" {
                guard metadata == nil else { throw .duplicate(what: "header key", name: key) }
                metadata = try Self.readMetadata(value)
                continue
            }
            guard index[key] == nil else { throw .duplicate(what: "tensor", name: key) }
            let info = try Self.readTensor(key, value)
            guard info.end <= bufferBytes else {
                throw .badTensorData(tensor: key, reason: "data_offsets [\(info.begin), \(info.end)] run past the byte buffer of \(bufferBytes) bytes")
            }
            index[key] = infos.count
            infos.append(info)
        }

        // The tensors, in offset order, must tile the byte buffer: each starts where the previous one ends.
        let byOffset = infos.indices.sorted { (infos[$0].begin, infos[$0].end, $0) < (infos[$1].begin, infos[$1].end, $1) }
        var covered = 0
        for i in byOffset {
            let t = infos[i]
            guard t.begin == covered else {
                throw .badTensorData(
                    tensor: t.name,
                    reason: "data starts at byte \(t.begin) of the byte buffer but the tensors before it end at byte \(covered) (\(t.begin < covered ? "overlap" : "gap"))")
            }
            covered = t.end
        }
        guard covered == bufferBytes else {
            throw .badHeader(reason: "the tensors cover \(covered) bytes of a \(bufferBytes)-byte buffer (the file must end with the last tensor)")
        }
        return Header(tensors: infos, metadata: metadata ?? [], dataOffset: dataOffset, index: index)
    }

    /// The tensor named `name`, if present.
    public func tensor(named name: String) -> SafetensorsTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of `tensor`'s data; valid while this file object lives.
    public func data(for tensor: SafetensorsTensorInfo) -> UnsafeRawBufferPointer {
        precondition(tensor.begin >= 0 && tensor.begin <= tensor.end && tensor.end <= storage.count - dataOffset,
                     "tensor not from this file")
        return UnsafeRawBufferPointer(start: storage.base + dataOffset + tensor.begin, count: tensor.byteCount)
    }

    /// The value of the "__metadata__" entry `key`, if present.
    public func metadataValue(forKey key: String) -> String? {
        metadata.first { $0.key == key }?.value
    }

    /// Total file size in bytes.
    public var fileSize: Int { storage.count }

    // MARK: - Header entries

    private static func readMetadata(_ value: JSONValue) throws(FormatError) -> [(key: String, value: String)] {
        if value == .null { return [] }  // the reference reads "__metadata__" as an optional map
        guard case let .object(pairs) = value else {
            throw .metadata(key: "__metadata__", reason: "must be an object of strings, found \(value.typeName)")
        }
        var seen = Set<String>()
        var out: [(key: String, value: String)] = []
        for (k, v) in pairs {
            guard case let .string(s) = v else {
                throw .metadata(key: "__metadata__.\(k)", reason: "must be a string, found \(v.typeName)")
            }
            guard seen.insert(k).inserted else { throw .duplicate(what: "__metadata__ key", name: k) }
            out.append((k, s))
        }
        return out
    }

    private static func readTensor(_ name: String, _ value: JSONValue) throws(FormatError) -> SafetensorsTensorInfo {
        guard case let .object(fields) = value else {
            throw .badTensorData(tensor: name, reason: "entry must be an object, found \(value.typeName)")
        }
        // Unknown fields are ignored, as the reference does; a repeated field is refused.
        var found: [String: JSONValue] = [:]
        for (k, v) in fields where k == "dtype" || k == "shape" || k == "data_offsets" {
            guard found.updateValue(v, forKey: k) == nil else { throw .duplicate(what: "field of tensor \(name)", name: k) }
        }
        let dtypeValue = found["dtype"], shapeValue = found["shape"], offsetsValue = found["data_offsets"]
        guard case let .string(dtypeText)? = dtypeValue else {
            throw .badTensorData(tensor: name, reason: "dtype must be a string, found \(dtypeValue?.typeName ?? "nothing")")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeText) else { throw .unknownDType(tensor: name, dtype: dtypeText) }
        guard case let .array(dims)? = shapeValue else {
            throw .badTensorData(tensor: name, reason: "shape must be an array, found \(shapeValue?.typeName ?? "nothing")")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        var elements = 1
        for (d, v) in dims.enumerated() {
            let dim = try integer(v, tensor: name, "shape[\(d)]")
            let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
            guard !overflow else {
                throw .implausible(field: "tensor \(name) shape[\(d)]", value: UInt64(dim), reason: "element count overflows")
            }
            elements = product
            shape.append(dim)
        }
        guard case let .array(offsets)? = offsetsValue, offsets.count == 2 else {
            throw .badTensorData(tensor: name, reason: "data_offsets must be an array of two integers")
        }
        let begin = try integer(offsets[0], tensor: name, "data_offsets[0]")
        let end = try integer(offsets[1], tensor: name, "data_offsets[1]")
        guard begin <= end else {
            throw .badTensorData(tensor: name, reason: "data_offsets [\(begin), \(end)] end before they begin")
        }
        guard let bytes = dtype.byteCount(elements: elements) else {
            throw .badTensorData(tensor: name, reason: "\(elements) \(dtype) elements are not a whole number of bytes or overflow")
        }
        guard end - begin == bytes else {
            throw .badTensorData(tensor: name, reason: "data_offsets [\(begin), \(end)] hold \(end - begin) bytes but \(dtype) \(shape) needs \(bytes)")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// A non-negative JSON integer that a double holds exactly.
    private static func integer(_ v: JSONValue, tensor: String, _ field: String) throws(FormatError) -> Int {
        guard case let .number(x) = v else {
            throw .badTensorData(tensor: tensor, reason: "\(field) must be a non-negative integer, found \(v.typeName)")
        }
        guard x >= 0, x <= Double(maxExactInteger), x == x.rounded(.towardZero) else {
            throw .badTensorData(tensor: tensor, reason: "\(field) must be a non-negative integer up to 2^53, found \(x)")
        }
        return Int(x)
    }
}

extension SafetensorsFile: TensorSource {
    public var tensorNames: [String] { tensors.map(\.name) }

    public func sourceTensor(named name: String) -> SourceTensor? {
        guard let t = tensor(named: name) else { return nil }
        return SourceTensor(name: t.name, encoding: t.dtype.encoding, storedType: t.dtype.rawValue, shape: t.shape,
                            bytes: data(for: t))
    }

    /// The byte buffer after the header: one region holding every tensor.
    public var dataRegions: [TensorDataRegion] {
        [TensorDataRegion(bytes: UnsafeRawBufferPointer(start: storage.base + dataOffset, count: storage.count - dataOffset),
                          releasable: storage.isFileMapping)]
    }
}
