// Writes safetensors files byte for byte as the reference library does (huggingface/safetensors, tensor.rs `prepare`
// and `serialize`): a u64 header length, compact JSON with "__metadata__" first and each tensor's
// {"dtype","shape","data_offsets"} in data order, padded with spaces to a multiple of 8 bytes so that the byte buffer
// starts 8-aligned, then the tensors' bytes back to back. Tensors are written in the order they were added;
// `sortLikeReference()` puts them in the library's order (larger element types first, then by name), which keeps
// every tensor aligned to its element size.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a safetensors file from metadata and tensors.
public struct SafetensorsWriter: Sendable {
    public struct Tensor: Sendable {
        public let name: String
        public let dtype: SafetensorsDType
        /// PyTorch order, outermost first.
        public let shape: [Int]
        public let data: [UInt8]
    }

    /// The "__metadata__" entries, in insertion order (written only when there is at least one).
    public private(set) var metadata: [(key: String, value: String)] = []
    public private(set) var tensors: [Tensor] = []
    private var names: Set<String> = []

    public init() {}

    /// A writer holding a copy of `file`'s metadata and every tensor's bytes, in the file's header order.
    public init(copying file: SafetensorsFile) throws(FormatError) {
        for (k, v) in file.metadata { setMetadata(v, forKey: k) }
        for t in file.tensors {
            try addTensor(name: t.name, dtype: t.dtype, shape: t.shape, data: [UInt8](file.data(for: t)))
        }
    }

    /// Sets the "__metadata__" entry `key` (replacing its value if present).
    public mutating func setMetadata(_ value: String, forKey key: String) {
        if let i = metadata.firstIndex(where: { $0.key == key }) { metadata[i].value = value }
        else { metadata.append((key, value)) }
    }

    /// Adds a tensor; `data` must hold exactly the bytes its dtype and shape need.
    public mutating func addTensor(name: String, dtype: SafetensorsDType, shape: [Int], data: [UInt8]) throws(FormatError) {
        guard !names.contains(name) else { throw .duplicate(what: "tensor", name: name) }
        let expected = try Self.checkedByteCount(name: name, dtype: dtype, shape: shape)
        guard expected == data.count else {
            throw .badTensorData(tensor: name, reason: "has \(data.count) bytes but \(dtype) \(shape) needs \(expected)")
        }
        names.insert(name)
        tensors.append(Tensor(name: name, dtype: dtype, shape: shape, data: data))
    }

    /// The bytes a tensor of `dtype` and `shape` takes, or an error naming what is wrong with them.
    static func checkedByteCount(name: String, dtype: SafetensorsDType, shape: [Int]) throws(FormatError) -> Int {
        guard name != "__metadata__" else {
            throw .badTensorData(tensor: name, reason: "the name is reserved for the header's metadata")
        }
        var elements = 1
        for d in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard d >= 0, !overflow else {
                throw .badTensorData(tensor: name, reason: "shape \(shape) is not a list of non-negative sizes with a representable product")
            }
            elements = product
        }
        guard let bytes = dtype.byteCount(elements: elements) else {
            throw .badTensorData(tensor: name, reason: "\(dtype) \(shape) does not fill a whole number of bytes")
        }
        return bytes
    }

    /// Orders the tensors as the reference writer does: element types in reverse `SafetensorsDType` order (largest
    /// first), then names in byte order.
    public mutating func sortLikeReference() {
        tensors.sort { Self.precedesLikeReference(($0.name, $0.dtype), ($1.name, $1.dtype)) }
    }

    /// The reference writer's order: element types in reverse `SafetensorsDType` order, then names in byte order.
    public static func precedesLikeReference(_ a: (name: String, dtype: SafetensorsDType),
                                             _ b: (name: String, dtype: SafetensorsDType)) -> Bool {
        a.dtype != b.dtype ? a.dtype > b.dtype : Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
    }

    /// The 8-byte length and the padded JSON header.
    public func header() throws(FormatError) -> [UInt8] {
        try Self.header(metadata: metadata, tensors: tensors.map { ($0.name, $0.dtype, $0.shape, $0.data.count) })
    }

    /// The 8-byte length and the padded JSON header of tensors stored back to back in the given order.
    static func header(metadata: [(key: String, value: String)],
                       tensors: [(name: String, dtype: SafetensorsDType, shape: [Int], byteCount: Int)]) throws(FormatError) -> [UInt8] {
        var json = "{"
        var first = true
        func separator() { if first { first = false } else { json += "," } }
        if !metadata.isEmpty {
            separator()
            json += "\"__metadata__\":{"
            for (i, (k, v)) in metadata.enumerated() {
                if i > 0 { json += "," }
                writeString(k, into: &json)
                json += ":"
                writeString(v, into: &json)
            }
            json += "}"
        }
        var offset = 0
        for t in tensors {
            separator()
            writeString(t.name, into: &json)
            json += ":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":["
            json += t.shape.map(String.init).joined(separator: ",")
            json += "],\"data_offsets\":[\(offset),\(offset + t.byteCount)]}"
            offset += t.byteCount
        }
        json += "}"
        var bytes = Array(json.utf8)
        bytes += repeatElement(UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8)
        guard bytes.count <= SafetensorsFile.maxHeaderBytes else {
            throw .implausible(field: "safetensors header length", value: UInt64(bytes.count),
                               reason: "larger than the format's limit of \(SafetensorsFile.maxHeaderBytes) bytes")
        }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { out += $0 }
        return out + bytes
    }

    /// The whole file as bytes.
    public func serialized() throws(FormatError) -> [UInt8] {
        var out = try header()
        out.reserveCapacity(tensors.reduce(out.count) { $0 + $1.data.count })
        for t in tensors { out += t.data }
        return out
    }

    /// Writes the file to `path` through a temporary file and a rename, so that a failed write leaves no partial file
    /// under the final name. The tensors' bytes are written from where they are, without assembling the whole file.
    public func write(to path: String) throws(FormatError) {
        let head = try header()
        let tmp = path + ".tmp-\(getpid())"
        guard let f = fopen(tmp, "wb") else { throw .io(path: tmp, reason: "cannot create: \(String(cString: strerror(errno)))") }
        var ok = head.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) } == head.count
        for t in tensors where ok && !t.data.isEmpty {
            ok = t.data.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) } == t.data.count
        }
        let closed = fclose(f) == 0
        guard ok, closed else {
            unlink(tmp)
            throw .io(path: tmp, reason: "write failed: \(String(cString: strerror(errno)))")
        }
        guard rename(tmp, path) == 0 else {
            let reason = "cannot rename \(tmp): \(String(cString: strerror(errno)))"
            unlink(tmp)
            throw .io(path: path, reason: reason)
        }
    }

    /// A JSON string as serde_json writes it: `"` `\` and control characters escaped (\b \f \n \r \t by name, the
    /// others as \u00xx), everything else as UTF-8.
    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
