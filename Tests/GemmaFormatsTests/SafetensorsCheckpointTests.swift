// Checkpoint folders: a single model.safetensors, and the tiny Gemma 3 checkpoint split into two shards with an index,
// which must read exactly as the single file; indexes that escape the folder or disagree with their shards are refused
// with errors naming the file and the tensor.
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

@Suite struct SafetensorsCheckpointTests {
    static let shardNames = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]

    /// Writes the f32 fixture into `dir` as two shards (tensors alternating between them) and returns the index's
    /// weight_map in the order written (the reverse of the file's, so that order is seen to come from the index).
    @discardableResult
    static func writeShards(of file: SafetensorsFile, into dir: String,
                            weightMap edit: ([(String, JSONValue)]) -> [(String, JSONValue)] = { $0 },
                            indexText: String? = nil) throws -> [(String, JSONValue)] {
        var writers = [SafetensorsWriter(), SafetensorsWriter()]
        var map: [(String, JSONValue)] = []
        for (i, t) in file.tensors.enumerated().reversed() {
            try writers[i % 2].addTensor(name: t.name, dtype: t.dtype, shape: t.shape, data: [UInt8](file.data(for: t)))
            map.append((t.name, .string(shardNames[i % 2])))
        }
        for (w, name) in zip(writers, shardNames) {
            var w = w
            w.setMetadata("pt", forKey: "format")
            try w.write(to: dir + "/" + name)
        }
        let total = file.tensors.reduce(0) { $0 + $1.byteCount }
        let edited = edit(map)
        let index: JSONValue = ["metadata": ["total_size": .int(total)], "weight_map": .object(edited)]
        try Data((indexText ?? index.serialized).utf8).write(to: URL(fileURLWithPath: dir + "/" + SafetensorsCheckpoint.indexFileName))
        return edited
    }

    static func fixture() throws -> SafetensorsFile {
        try SafetensorsFile(path: SafetensorsFixtures.path(SafetensorsFixtures.f32))
    }

    @Test func shardedFolderReadsLikeTheSingleFile() throws {
        let single = try Self.fixture()
        let dir = try SafetensorsFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let map = try Self.writeShards(of: single, into: dir)
        let c = try SafetensorsCheckpoint(directory: dir)
        #expect(c.shardNames == [map[0].1, map[1].1].compactMap { if case let .string(s) = $0 { s } else { nil } })
        #expect(c.tensorNames == map.map(\.0))
        #expect(c.tensorNames.count == 106)
        #expect(c.totalSize == single.tensors.reduce(0) { $0 + $1.byteCount })
        #expect(c.dataRegions.count == 2)
        #expect(c.dataRegions.reduce(0) { $0 + $1.bytes.count } == single.dataRegions[0].bytes.count)
        for name in single.tensorNames {
            let a = try #require(single.sourceTensor(named: name)), b = try #require(c.sourceTensor(named: name))
            #expect(a.shape == b.shape && a.storedType == b.storedType && a.encoding == b.encoding, "\(name)")
            #expect(Array(a.bytes) == Array(b.bytes), "\(name)")
            // Each tensor's bytes lie in its shard's region.
            let region = try #require(c.dataRegions.first { r in
                guard let base = r.bytes.baseAddress, let p = b.bytes.baseAddress else { return false }
                return p >= base && p + b.bytes.count <= base + r.bytes.count
            })
            #expect(region.releasable)
        }
        #expect(c.sourceTensor(named: "lm_head.weight") == nil)
    }

    @Test func folderWithOneFileUsesIt() throws {
        let dir = try SafetensorsFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: SafetensorsFixtures.path(SafetensorsFixtures.f32), toPath: dir + "/model.safetensors")
        // A stale index beside the single file is not read, as in transformers.
        try Data("not json".utf8).write(to: URL(fileURLWithPath: dir + "/" + SafetensorsCheckpoint.indexFileName))
        let c = try SafetensorsCheckpoint(directory: dir)
        let single = try Self.fixture()
        #expect(c.shardNames == ["model.safetensors"] && c.totalSize == nil)
        #expect(c.tensorNames == single.tensorNames)
        #expect(c.dataRegions.count == 1)
        let t = try #require(c.sourceTensor(named: "model.norm.weight"))
        #expect(Array(t.bytes) == Array(try #require(single.sourceTensor(named: "model.norm.weight")).bytes))
    }

    @Test func emptyFolderIsAnError() throws {
        let dir = try SafetensorsFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: FormatError.io(path: dir, reason: "holds neither model.safetensors nor model.safetensors.index.json")) {
            try SafetensorsCheckpoint(directory: dir)
        }
    }

    /// Each broken index, and the words its error must contain.
    static let brokenIndexes: [(what: String, edit: @Sendable ([(String, JSONValue)]) -> [(String, JSONValue)], words: [String])] = [
        ("escapes the folder", { m in [(m[0].0, .string("../model-00001-of-00002.safetensors"))] + m.dropFirst() }, ["../model-00001", "not a file name"]),
        ("absolute path", { m in [(m[0].0, .string("/etc/passwd"))] + m.dropFirst() }, ["/etc/passwd"]),
        ("wrong shard", { m in [(m[0].0, m[1].1)] + m.dropFirst() }, [SafetensorsCheckpoint.indexFileName]),
        ("unlisted tensor", { m in Array(m.dropFirst()) }, ["does not list it"]),
        ("listed twice", { m in m + [m[0]] }, ["twice"]),
        ("missing shard", { m in [(m[0].0, .string("model-00003-of-00002.safetensors"))] + m.dropFirst() }, ["model-00003-of-00002.safetensors"]),
        ("not a string", { m in [(m[0].0, .int(3))] + m.dropFirst() }, ["must be a file name"]),
        ("empty", { _ in [] }, ["empty"]),
    ]

    @Test(arguments: 0..<brokenIndexes.count)
    func brokenIndexIsRefusedWithTheFileAndTensor(_ i: Int) throws {
        let (what, edit, words) = Self.brokenIndexes[i]
        let dir = try SafetensorsFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let map = try Self.writeShards(of: try Self.fixture(), into: dir, weightMap: edit)
        do {
            _ = try SafetensorsCheckpoint(directory: dir)
            Issue.record("\(what): opened")
        } catch {
            let text = error.description
            for w in words { #expect(text.contains(w), "\(what): \(text)") }
            if what != "empty", what != "missing shard" {
                let tensor = map.first?.0 ?? ""
                #expect(text.contains(tensor) || what == "unlisted tensor", "\(what): \(text)")
            }
        }
    }

    @Test(arguments: [
        "[]", "{}", "{\"weight_map\": []}", "{\"weight_map\": {\"a\": \"x.safetensors\"}, \"weight_map\": {}}",
        "{\"metadata\": {\"total_size\": -1}, \"weight_map\": {\"a\": \"x\"}}", "{\"metadata\": 3, \"weight_map\": {\"a\": \"x\"}}",
        "{\"weight_map\": {\"a\": \"x\"}", "",
    ])
    func malformedIndexTextIsRefused(text: String) throws {
        let dir = try SafetensorsFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeShards(of: try Self.fixture(), into: dir, indexText: text)
        let indexPath = dir + "/" + SafetensorsCheckpoint.indexFileName
        do {
            _ = try SafetensorsCheckpoint(directory: dir)
            Issue.record("opened with index \(text)")
        } catch let error {
            guard case let .badIndex(path, _) = error else { Issue.record("\(error)"); return }
            #expect(path == indexPath)
        }
    }

    @Test func brokenShardErrorNamesTheShard() throws {
        let dir = try SafetensorsFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeShards(of: try Self.fixture(), into: dir)
        let shard = dir + "/" + Self.shardNames[1]
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: shard)))
        try Data(bytes.dropLast(3)).write(to: URL(fileURLWithPath: shard))
        #expect {
            try SafetensorsCheckpoint(directory: dir)
        } throws: { error in
            guard case let .inFile(path, inner)? = error as? FormatError else { return false }
            return path == shard && inner.description.contains("bytes")
        }
    }
}
