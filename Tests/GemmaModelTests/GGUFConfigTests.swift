// Gemma3Config(gguf:)'s query_pre_attn_scalar: llama.cpp's rule when the file does not say (head_dim; hidden / heads
// for 62 layers, the 27B), the value of gemma3.attention.query_pre_attn_scalar when it does (written by
// `gemma convert` for models that the rule does not fit).
import GemmaFormats
import GemmaModel
import Testing

@Suite struct GGUFConfigTests {
    /// A GGUF with a Gemma 3 header of `layers` layers of width `hidden` over `heads` heads of 128, no tensors.
    static func file(layers: Int, hidden: Int, heads: Int, extra: [(String, GGUFValue)] = []) throws -> GGUFFile {
        var m = GGUFMetadata()
        m["general.architecture"] = .string("gemma3")
        m["gemma3.embedding_length"] = .uint32(UInt32(hidden))
        m["gemma3.block_count"] = .uint32(UInt32(layers))
        m["gemma3.feed_forward_length"] = .uint32(4 * UInt32(hidden))
        m["gemma3.attention.head_count"] = .uint32(UInt32(heads))
        m["gemma3.attention.key_length"] = .uint32(128)
        m["tokenizer.ggml.tokens"] = .array(.string(["<pad>", "<eos>", "<bos>"]))
        for (k, v) in extra { m[k] = v }
        return try GGUFFile(bytes: GGUFWriter(metadata: m).serialized())
    }

    @Test func queryPreAttnScalarFollowsLlamaCppUnlessStored() throws {
        // 27B: 5376 / 32 = 168, not head_dim 128.
        #expect(try Gemma3Config(gguf: Self.file(layers: 62, hidden: 5376, heads: 32)).queryPreAttnScalar == 168)
        #expect(try Gemma3Config(gguf: Self.file(layers: 26, hidden: 5376, heads: 32)).queryPreAttnScalar == 128)
        let stored = try Self.file(layers: 26, hidden: 1152, heads: 4, extra: [("gemma3.attention.query_pre_attn_scalar", .float32(48))])
        #expect(try Gemma3Config(gguf: stored).queryPreAttnScalar == 48)
        let bad = try Self.file(layers: 26, hidden: 1152, heads: 4, extra: [("gemma3.attention.query_pre_attn_scalar", .float32(0))])
        #expect(throws: ModelError.config("metadata gemma3.attention.query_pre_attn_scalar 0.0 is not positive")) {
            try Gemma3Config(gguf: bad)
        }
    }
}
