// A gemma.cpp .sbs model file, opened: its BlobStore (SbsBlobStore.swift), the `config` blob (a serialized
// `ModelConfig`), the `tokenizer` blob (a SentencePiece model proto), and its tensors as gemma.cpp names and stores
// them (gemma/model_store.cc): listed by the `toc` blob (one serialized `MatPtr` each, with type, rows, cols and
// scale) in files written since 2025, or, in older files, by keys with a type prefix (`F` f32, `B` bf16, `$` SFP,
// `2` NUQ, `I` int8) whose shapes gemma.cpp takes from the model it deduces from the layer count. Old files keep the
// tokenizer beside them (`tokenizer.spm`) and SFP scales in an optional `Fscales` blob (SbsFile+Legacy.swift).
// Every tensor's bytes must be exactly its blob: rows x cols packed elements of its type.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One tensor of an .sbs file, as gemma.cpp stores it: a packed `rows` x `cols` matrix (vectors have one row).
public struct SbsTensor: @unchecked Sendable {  // the bytes point into the file mapping its SbsFile keeps alive
    public let name: String
    public let type: SbsType
    public let rows: Int
    public let cols: Int
    /// Decoded values are multiplied by this (SFP's per-tensor scale; 1 for the other types).
    public let scale: Float
    /// The blob's bytes (rows x cols elements).
    public let bytes: UnsafeRawBufferPointer
}

/// A gemma.cpp .sbs file.
public final class SbsFile: @unchecked Sendable {  // immutable after init
    /// Where the tokenizer of a pre-2025 file lives, beside it.
    public static let legacyTokenizerName = "tokenizer.spm"
    /// What gemma.cpp stores in the `tokenizer` blob when it had none.
    static let mockTokenizer = Array("unavailable".utf8)

    public let storage: ByteStorage
    public let store: SbsBlobStore
    /// The stored `config` blob, or for a pre-2025 file the config gemma.cpp deduces (`configIsDeduced`), or nil
    /// when neither exists (a pre-2025 file of a size gemma.cpp does not know).
    public let config: SbsModelConfig?
    /// True when `config` was not stored but deduced (pre-2025 files).
    public let configIsDeduced: Bool
    /// True for a pre-2025 file (type-prefixed keys, no toc).
    public let isLegacy: Bool
    /// The tokenizer's SentencePiece model proto: the `tokenizer` blob, or a pre-2025 file's `tokenizer.spm`.
    public let tokenizerModel: [UInt8]?
    /// Where `tokenizerModel` came from: "blob", or the path of the file beside.
    public let tokenizerOrigin: String?
    /// Every tensor, in toc (or directory) order.
    public let tensors: [SbsTensor]
    private let tensorIndex: [String: Int]

    /// Opens and validates the file at `path` (memory-mapped). Errors name the path.
    public convenience init(path: String) throws(FormatError) {
        let storage = try ByteStorage(mapping: path)
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        do { try self.init(storage: storage, directory: directory) } catch { throw .inFile(path: path, error: error) }
    }

    /// Reads `storage`; a pre-2025 file's tokenizer is looked for in `directory` (nil: not looked for).
    public init(storage: ByteStorage, directory: String? = nil) throws(FormatError) {
        self.storage = storage
        let file = storage.buffer
        store = try SbsBlobStore(file)
        func bytes(_ b: SbsBlob) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: file[b.offset..<b.offset + b.size]) }

        var config: SbsModelConfig?
        if let b = store.blob(named: "config") {
            let words = try Self.words(bytes(b), blob: "config")
            let (c, next, _) = try SbsFieldReader.read(SbsModelConfig.self, from: words, blob: "config")
            guard next == words.count else {
                throw .badBlob(blob: "config", reason: "\(words.count - next) words follow the ModelConfig")
            }
            try c.validate()
            config = c
        }

        var tokenizer: [UInt8]?, origin: String?
        if let b = store.blob(named: "tokenizer"), !bytes(b).elementsEqual(Self.mockTokenizer) {
            tokenizer = Array(bytes(b))
            origin = "blob"
        }

        if let toc = store.blob(named: "toc") {
            isLegacy = false
            configIsDeduced = false
            tensors = try Self.tableOfContents(Self.words(bytes(toc), blob: "toc"), store: store, file: file, weight: config?.weight)
        } else {
            isLegacy = true
            let legacy = try Self.legacyTensors(store: store, file: file, storedConfig: config)
            tensors = legacy.tensors
            configIsDeduced = config == nil && legacy.config != nil
            config = config ?? legacy.config
            if tokenizer == nil, let directory {
                let path = directory + "/" + Self.legacyTokenizerName
                if let spm = try? ByteStorage(mapping: path) {
                    tokenizer = Array(spm.buffer)
                    origin = path
                }
            }
        }
        self.config = config
        tokenizerModel = tokenizer
        tokenizerOrigin = origin
        var index: [String: Int] = [:]
        for (i, t) in tensors.enumerated() {
            guard index.updateValue(i, forKey: t.name) == nil else { throw .duplicate(what: "tensor", name: t.name) }
        }
        tensorIndex = index
    }

    /// The tensor named `name` (gemma.cpp's name, e.g. "qkv_ein_3"), if present.
    public func tensor(named name: String) -> SbsTensor? { tensorIndex[name].map { tensors[$0] } }

    /// The bytes of every blob, from the first to the end of the last (what a weight copy copies).
    public var blobArea: UnsafeRawBufferPointer {
        let first = store.blobs.first?.offset ?? 0
        let end = store.blobs.last.map { $0.offset + $0.size } ?? first
        return UnsafeRawBufferPointer(rebasing: storage.buffer[first..<end])
    }

    // MARK: - Blobs

    /// A blob as little-endian u32 words (its size must be a whole number of words).
    static func words(_ bytes: UnsafeRawBufferPointer, blob: String) throws(FormatError) -> [UInt32] {
        guard bytes.count % 4 == 0 else {
            throw .badBlob(blob: blob, reason: "\(bytes.count) bytes is not a whole number of 4-byte words")
        }
        return (0..<bytes.count / 4).map { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) }
    }

    /// The `toc` blob: one `MatPtr` per tensor, each naming its blob.
    static func tableOfContents(_ words: [UInt32], store: SbsBlobStore, file: UnsafeRawBufferPointer,
                                weight: UInt32?) throws(FormatError) -> [SbsTensor] {
        var tensors: [SbsTensor] = []
        var position = 0
        var smallest: (bits: Int, type: SbsType)?
        while position < words.count {
            let (mat, next, _) = try SbsFieldReader.read(SbsMatPtr.self, from: words, at: position, blob: "toc")
            position = next
            let t = try tensor(mat, store: store, file: file)
            tensors.append(t)
            if t.type.bits < smallest?.bits ?? .max { smallest = (t.type.bits, t.type) }
        }
        guard !tensors.isEmpty else { throw .badBlob(blob: "toc", reason: "lists no tensors") }
        // gemma.cpp requires the config's weight type to be the toc's smallest type (the first of the fewest bits).
        if let weight, let smallest, weight != smallest.type.rawValue {
            throw .badBlob(blob: "config", reason: "weight type is \(SbsType(rawValue: weight).map { "\($0)" } ?? "\(weight)") but the smallest tensor type in the toc is \(smallest.type)")
        }
        return tensors
    }

    /// Checks one `MatPtr` against its blob.
    static func tensor(_ mat: SbsMatPtr, store: SbsBlobStore, file: UnsafeRawBufferPointer) throws(FormatError) -> SbsTensor {
        let name = mat.name
        guard !name.isEmpty else { throw .badBlob(blob: "toc", reason: "a MatPtr has an empty name") }
        guard let blob = store.blob(named: name) else {
            throw .badBlob(blob: "toc", reason: "tensor \(name) has no blob of that name")
        }
        guard let type = SbsType(rawValue: mat.type), type != .unknown else { throw .unknownTensorType(tensor: name, id: mat.type) }
        guard Int(mat.elementBytes) == type.elementBytes else {
            throw .badTensorData(tensor: name, reason: "element_bytes is \(mat.elementBytes) but \(type) elements take \(type.elementBytes)")
        }
        let rows = Int(mat.rows), cols = Int(mat.cols)
        guard rows > 0, cols > 0 else { throw .badTensorData(tensor: name, reason: "shape \(rows) x \(cols) is empty") }
        // NUQ and int8 store tables besides the elements; the other types exactly rows x cols.
        // (rows and cols are u32: their product can overflow 63 bits.)
        let (area, overflow) = rows.multipliedReportingOverflow(by: cols)
        if type != .nuq && type != .i8 {
            guard !overflow, Int(mat.numElements) == area else {
                throw .badTensorData(tensor: name, reason: "num_elements is \(mat.numElements) but the shape \(rows) x \(cols) has \(overflow ? "more than 2^63" : "\(area)")")
            }
        }
        let bytes = Int(mat.numElements) * type.elementBytes
        guard bytes == blob.size else {
            throw .badTensorData(tensor: name, reason: "\(mat.numElements) \(type) elements take \(bytes) bytes but its blob has \(blob.size)")
        }
        guard mat.scale > 0 else { throw .badTensorData(tensor: name, reason: "scale \(mat.scale) is not positive") }
        return SbsTensor(name: name, type: type, rows: rows, cols: cols, scale: mat.scale,
                         bytes: UnsafeRawBufferPointer(rebasing: file[blob.offset..<blob.offset + blob.size]))
    }
}

extension SbsFile {
    /// True when the file at `path` starts with the BlobStore magic ("SBS\n").
    public static func hasMagic(path: String) -> Bool {
        guard let f = fopen(path, "rb") else { return false }
        defer { fclose(f) }
        var magic: UInt32 = 0
        return fread(&magic, 4, 1, f) == 1 && UInt32(littleEndian: magic) == SbsBlobStore.magic
    }
}
