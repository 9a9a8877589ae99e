// A Hugging Face folder of the 27B's real shapes (62 layers, 5376 wide, 262,208-row embedding: 54 GB of bf16) as a
// sparse file: its config and every tensor declared, no byte of data on disk. Loading it with `.auto` placement must
// keep the weights in the file mapping (they exceed half the memory limit), say so, and bind every tensor without
// reading the matrices (the resident set stays small).
import Foundation
import GemmaFormats
import GemmaKernels
import GemmaModel
import Testing

@Suite(.serialized) struct BigCheckpointTests {
    /// Writes `dir/config.json` and a sparse `dir/model.safetensors` of the 27B text model in bf16; returns its bytes.
    static func sparse27B(_ dir: String) throws -> Int {
        let h = 5376, layers = 62, heads = 32, kv = 16, hd = 128, ffn = 21504, vocab = 262_208
        var tensors: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, h]), ("model.norm.weight", [h])]
        for l in 0..<layers {
            let p = "model.layers.\(l)."
            tensors += [
                (p + "input_layernorm.weight", [h]), (p + "post_attention_layernorm.weight", [h]),
                (p + "pre_feedforward_layernorm.weight", [h]), (p + "post_feedforward_layernorm.weight", [h]),
                (p + "self_attn.q_proj.weight", [heads * hd, h]), (p + "self_attn.k_proj.weight", [kv * hd, h]),
                (p + "self_attn.v_proj.weight", [kv * hd, h]), (p + "self_attn.o_proj.weight", [h, heads * hd]),
                (p + "self_attn.q_norm.weight", [hd]), (p + "self_attn.k_norm.weight", [hd]),
                (p + "mlp.gate_proj.weight", [ffn, h]), (p + "mlp.up_proj.weight", [ffn, h]), (p + "mlp.down_proj.weight", [h, ffn]),
            ]
        }
        var entries: [(String, JSONValue)] = [("__metadata__", .object([("format", .string("pt"))]))]
        var offset = 0
        for (name, shape) in tensors {
            let bytes = 2 * shape.reduce(1, *)
            entries.append((name, .object([("dtype", .string("BF16")), ("shape", .array(shape.map { .number(Double($0)) })),
                                           ("data_offsets", .array([.number(Double(offset)), .number(Double(offset + bytes))]))])))
            offset += bytes
        }
        var header = Array(JSONValue.object(entries).serialized.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var file = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
        let path = dir + "/model.safetensors"
        try Data(file).write(to: URL(fileURLWithPath: path))
        file = []
        // The data: a hole of `offset` bytes (no disk blocks).
        let fd = open(path, O_WRONLY)
        #expect(fd >= 0)
        #expect(ftruncate(fd, off_t(8 + header.count + offset)) == 0)
        close(fd)
        let config = """
            {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": \(h),
             "num_hidden_layers": \(layers), "num_attention_heads": \(heads), "num_key_value_heads": \(kv), "head_dim": \(hd),
             "intermediate_size": \(ffn), "vocab_size": \(vocab), "sliding_window": 1024, "query_pre_attn_scalar": 168,
             "max_position_embeddings": 131072, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
             "rope_scaling": {"rope_type": "linear", "factor": 8.0}, "rms_norm_eps": 1e-6, "torch_dtype": "bfloat16"}
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        return offset
    }

    static func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = Int(s.split(separator: " ")[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test func a27BSizedFolderStaysMappedAndSaysSo() throws {
        let dir = NSTemporaryDirectory() + "swift-gemma-27b-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = try Self.sparse27B(dir)
        #expect(bytes > 54_000_000_000)
        // The premise: this machine cannot hold a copy of 54 GB in half its memory (else `.auto` would copy).
        let limit = min(HugePageCopy.physicalMemory, HugePageCopy.memoryLimit?.bytes ?? .max)
        try #require(bytes > limit / 2, "this machine's memory limit (\(limit) bytes) would hold a copy of the 27B")

        let before = Self.residentBytes()
        let model = try Gemma3Model(path: dir, options: ModelOptions(threads: 1, placement: .auto))
        let grown = Self.residentBytes() - before
        print("27B-shaped folder (\(bytes) bytes of bf16): placement note: \(model.placementNote ?? "none"); resident set grew \(grown) bytes")
        #expect(model.config.knownSize == .b27 && model.config.queryPreAttnScalar == 168)
        #expect(model.config.layers.filter(\.isGlobal).count == 10)
        let note = try #require(model.placementNote)
        // Either the memory rule or (on a kernel without huge pages) the mapping is said; both keep the mapping.
        #expect(note.contains("file mapping"))
        if HugePageCopy.available { #expect(note.contains("exceed half the memory limit")) }
        // Bound without a copy: the resident set grew by far less than the weights (norm vectors are read; matrices not).
        #expect(grown < 1 << 30)
    }
}
