// GGUF files holding this engine's extended tensor types (TensorType.isGGML false, ids from 1024: int4Channel), and
// how they avoid masquerading as ggml files. Choices:
//  * the tensor type id is outside ggml's range, so llama.cpp (and gguf-py) refuse the file at that tensor ("invalid
//    ggml type") rather than read its bytes as some ggml format: no reuse of a ggml id (Q4_0's would have made
//    llama.cpp misread our rows), no renamed tensors;
//  * the metadata key `swift_gemma.extended_types` lists every extended type the file holds as "<id>:<NAME>"
//    ("1024:INT4_CHANNEL"). Our reader accepts an extended id only when the key lists it with our name for it, and
//    refuses a key naming an id or a name it does not know, so a future or foreign meaning of an id is never read
//    as ours; our writers (GGUFWriter, GGUFStreamWriter) set the key from the tensors they write, always.
// Everything else is plain GGUF v3 (same header, metadata, alignment), so our GGUF tooling reads these files too.

extension GGUFFile {
    /// The metadata key listing the extended tensor types a file holds.
    public static let extendedTypesKey = "swift_gemma.extended_types"

    /// The key's entry for an extended type: "1024:INT4_CHANNEL".
    public static func extendedTypeEntry(_ type: TensorType) -> String { "\(type.rawValue):\(type)" }

    /// The extended types `metadata` declares (empty without the key). Throws for a key that is not an array of
    /// strings, or that names a ggml id or an id or name this engine does not define.
    static func declaredExtendedTypes(_ metadata: GGUFMetadata) throws(FormatError) -> Set<TensorType> {
        guard let value = metadata[extendedTypesKey] else { return [] }
        guard case let .array(.string(entries)) = value else {
            throw .metadata(key: extendedTypesKey, reason: "must be an array of strings, found \(value.type)")
        }
        var types = Set<TensorType>()
        for entry in entries {
            let parts = entry.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let id = UInt32(parts[0]), let type = TensorType(rawValue: id), !type.isGGML,
                  String(parts[1]) == type.description else {
                throw .metadata(key: extendedTypesKey, reason: "\"\(entry)\" is not an extended tensor type this reader knows "
                                + "(known: \(TensorType.allCases.filter { !$0.isGGML }.map(extendedTypeEntry)))")
            }
            types.insert(type)
        }
        return types
    }

    /// `metadata` with the key listing exactly the extended types among `types` (in id order), or without the key
    /// when there are none. An existing key keeps its place.
    static func declaringExtendedTypes(_ metadata: GGUFMetadata, _ types: [TensorType]) -> GGUFMetadata {
        let extended = Set(types.filter { !$0.isGGML }).sorted { $0.rawValue < $1.rawValue }
        var m = metadata
        m[extendedTypesKey] = extended.isEmpty ? nil : .array(.string(extended.map(extendedTypeEntry)))
        return m
    }
}
