// A Hugging Face checkpoint folder as one TensorSource: its single model.safetensors, or the shards that
// model.safetensors.index.json names ({"metadata": {"total_size": n}, "weight_map": {tensor: file}}). The single file
// wins when both are present, as in transformers (`_get_resolved_checkpoint_files` looks for it first). The index is
// untrusted like the shards: every file it names must be a plain name inside the folder, every tensor it maps must be
// in that shard, and every tensor of a shard must be mapped to it; an index and shards that disagree are refused
// rather than half-loaded. "total_size" is kept but not checked (writers have counted it differently).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The safetensors files of a checkpoint folder, read as one collection of tensors.
public final class SafetensorsCheckpoint: Sendable {
    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"
    /// A larger index is refused (a 27B model's lists ~1,250 tensors in ~110 KB).
    public static let maxIndexBytes = 64 << 20

    public let directory: String
    /// The shards' file names, in the order the index first names them (just model.safetensors when unsharded).
    public let shardNames: [String]
    public let shards: [SafetensorsFile]
    /// The index's metadata "total_size", when there is an index that states it.
    public let totalSize: Int?
    /// Every tensor: in the index's order when sharded, in the file's header order otherwise.
    public let tensorNames: [String]
    private let shardOfTensor: [String: Int]

    /// Opens the checkpoint in `directory`: model.safetensors if present, else the shards of
    /// model.safetensors.index.json.
    public init(directory: String) throws(FormatError) {
        self.directory = directory
        let single = directory + "/" + Self.singleFileName
        let indexPath = directory + "/" + Self.indexFileName
        if Self.isRegularFile(single) {
            let file = try SafetensorsFile(path: single)
            shardNames = [Self.singleFileName]
            shards = [file]
            totalSize = nil
            tensorNames = file.tensorNames
            shardOfTensor = Dictionary(uniqueKeysWithValues: file.tensorNames.map { ($0, 0) })
            return
        }
        guard Self.isRegularFile(indexPath) else {
            throw .io(path: directory, reason: "holds neither \(Self.singleFileName) nor \(Self.indexFileName)")
        }
        let index = try Self.readIndex(indexPath)
        var names: [String] = []
        var shardIndex: [String: Int] = [:]
        var shardOfTensor: [String: Int] = [:]
        for (tensor, file) in index.weightMap {
            if shardIndex[file] == nil {
                shardIndex[file] = names.count
                names.append(file)
            }
            shardOfTensor[tensor] = shardIndex[file]
        }
        var shards: [SafetensorsFile] = []
        for (i, name) in names.enumerated() {
            let shard = try SafetensorsFile(path: directory + "/" + name)
            for t in shard.tensors where shardOfTensor[t.name] != i {
                let listed = shardOfTensor[t.name].map { "puts it in \(names[$0])" } ?? "does not list it"
                throw .badIndex(path: indexPath, reason: "shard \(name) holds tensor \(t.name) but the weight_map \(listed)")
            }
            shards.append(shard)
        }
        for (tensor, file) in index.weightMap {
            guard let i = shardIndex[file], shards[i].tensor(named: tensor) != nil else {
                throw .badIndex(path: indexPath, reason: "the weight_map puts tensor \(tensor) in shard \(file), which does not hold it")
            }
        }
        self.shardNames = names
        self.shards = shards
        self.totalSize = index.totalSize
        self.tensorNames = index.weightMap.map(\.tensor)
        self.shardOfTensor = shardOfTensor
    }

    /// The shard that holds `name`, if any.
    public func shard(of name: String) -> SafetensorsFile? {
        shardOfTensor[name].map { shards[$0] }
    }

    // MARK: - The index

    struct Index {
        var weightMap: [(tensor: String, file: String)]
        var totalSize: Int?
    }

    /// Reads and checks model.safetensors.index.json (shards are not opened here).
    static func readIndex(_ path: String) throws(FormatError) -> Index {
        let storage = try ByteStorage(mapping: path)
        guard storage.count <= maxIndexBytes else {
            throw .badIndex(path: path, reason: "\(storage.count) bytes is larger than the \(maxIndexBytes)-byte limit for an index")
        }
        return try parseIndex(Array(storage.buffer), path: path)
    }

    /// Parses index JSON text; errors name `path`.
    static func parseIndex(_ bytes: [UInt8], path: String) throws(FormatError) -> Index {
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch { throw .badIndex(path: path, reason: "invalid JSON: \(error)") }
        guard case let .object(top) = json else { throw .badIndex(path: path, reason: "not a JSON object") }
        var totalSize: Int?
        switch json["metadata"] {
        case nil, .null?: break
        case let .object(meta)?:
            if let v = meta.last(where: { $0.0 == "total_size" })?.1 {
                guard case let .number(x) = v, x >= 0, x <= Double(SafetensorsFile.maxExactInteger), x == x.rounded(.towardZero) else {
                    throw .badIndex(path: path, reason: "metadata.total_size must be a non-negative integer, found \(v.serialized)")
                }
                totalSize = Int(x)
            }
        case let other?: throw .badIndex(path: path, reason: "metadata must be an object, found \(other.typeName)")
        }
        guard top.filter({ $0.0 == "weight_map" }).count == 1, case let .object(map)? = json["weight_map"] else {
            throw .badIndex(path: path, reason: "must have exactly one weight_map object")
        }
        guard !map.isEmpty else { throw .badIndex(path: path, reason: "the weight_map is empty") }
        var seen = Set<String>()
        var weightMap: [(tensor: String, file: String)] = []
        for (tensor, v) in map {
            guard case let .string(file) = v else {
                throw .badIndex(path: path, reason: "the weight_map entry of \(tensor) must be a file name, found \(v.typeName)")
            }
            guard isPlainFileName(file) else {
                throw .badIndex(path: path, reason: "the weight_map puts \(tensor) in \"\(file)\", which is not a file name inside the folder")
            }
            guard seen.insert(tensor).inserted else {
                throw .badIndex(path: path, reason: "the weight_map lists tensor \(tensor) twice")
            }
            weightMap.append((tensor, file))
        }
        return Index(weightMap: weightMap, totalSize: totalSize)
    }

    /// True for a name that stays inside the folder: not empty, not "." or "..", no separator, no NUL.
    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.utf8.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") || $0 == 0 }
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
}

extension SafetensorsCheckpoint: TensorSource {
    public func sourceTensor(named name: String) -> SourceTensor? {
        shard(of: name)?.sourceTensor(named: name)
    }

    /// One region per shard: each shard's byte buffer.
    public var dataRegions: [TensorDataRegion] { shards.flatMap(\.dataRegions) }
}
