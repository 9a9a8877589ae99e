// `gemma quantize`'s per-tensor policy: a release format's embedding rule and --keep NAME=TYPE overrides, on the tiny
// Gemma 3 of Tests/Fixtures/gemma3-tiny-text (rows of 72 and 128), and the overrides' name patterns.
import GemmaConvert
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct QuantizePolicyTests {
    @Test func patternsMatchWholeNames() throws {
        let o = try TypeOverride(parsing: "blk.*.ffn_down.weight=Q6_k")
        #expect(o.type == .q6_K)
        #expect(o.matches("blk.0.ffn_down.weight") && o.matches("blk.17.ffn_down.weight"))
        #expect(!o.matches("blk.0.ffn_down.weight.x") && !o.matches("blk.0.ffn_up.weight") && !o.matches("token_embd.weight"))
        #expect(try TypeOverride(parsing: "*=f16").matches("anything"))
        #expect(try TypeOverride(parsing: "token_embd.weight=q8_0").matches("token_embd.weight"))
        for bad in ["token_embd.weight", "=q8_0", "x=q9_9", "x=iq2_xxs"] {
            #expect(throws: ConvertError.self, "\(bad)") { try TypeOverride(parsing: bad) }
        }
    }

    @Test func releasePolicyAndOverridesDecideEachTensor() throws {
        let s = try Scratch()
        defer { s.cleanup() }
        let format = try QuantizeFormat.named("int4-b32")
        #expect(format == .int4Block && format.ggufType == .q4_0 && format.embeddingType == .f16)
        var options = ConvertOptions(type: format.ggufType)
        options.embeddingType = format.embeddingType
        options.overrides = try ["blk.0.attn_output.weight=q8_0", "blk.7.*=f32", "blk.7.attn_output.weight=bf16"].map {
            try TypeOverride(parsing: $0)
        }
        let report = try Converter.convert(input: Tiny.folder, output: s["q.gguf"], options: options)
        let file = try GGUFFile(path: s["q.gguf"])
        func type(_ name: String) -> TensorType? { file.tensor(named: name)?.type }
        #expect(type("token_embd.weight") == .f16)  // the release's rule, not llama-quantize's
        #expect((1...6).allSatisfy { type("blk.\($0).attn_output.weight") == .q4_0 })  // rows of 128: whole q4_0 blocks
        #expect(type("blk.0.attn_output.weight") == .q8_0)
        #expect(type("blk.7.attn_q.weight") == .f32 && type("blk.7.attn_output.weight") == .bf16)  // the last match wins
        #expect(type("blk.0.attn_q.weight") == .f16 && type("blk.0.ffn_down.weight") == .f16)  // rows of 72, 144: f16
        #expect(type("output_norm.weight") == .f32 && report.plan.tensors.count == 106)
        // The file runs, and its weights' distance from the folder's is what WeightComparison reports.
        let comparison = try WeightComparison(candidate: Checkpoint.open(path: s["q.gguf"]), reference: Checkpoint.open(path: Tiny.folder))
        let rmse = Dictionary(uniqueKeysWithValues: comparison.relativeRMSE.map { ($0.kind, $0.value) })
        #expect(rmse["norms"] == 0 && rmse["attn_q"]! < 1e-3 && rmse["attn_q"]! > 0)  // f16 rounding
        #expect(rmse["attn_output"]! > 0.02 && rmse["attn_output"]! < 0.2)  // mostly 4-bit
        _ = try Tiny.logits(s["q.gguf"], Tiny.ids("chat"))
    }

    @Test func overridesThatCannotApplyAreErrors() throws {
        let s = try Scratch()
        defer { s.cleanup() }
        for (keep, message) in [("nothing.weight=q8_0", "no tensor of the output is named so"),
                                ("blk.0.attn_q.weight=q4_K", "rows of 72 are not whole Q4_K blocks of 256")] {
            var options = ConvertOptions(type: .q8_0)
            options.overrides = [try TypeOverride(parsing: keep)]
            #expect { try Converter.convert(input: Tiny.folder, output: s["x.gguf"], options: options) } throws: { error in
                "\(error)".contains(message)
            }
        }
        var options = ConvertOptions(type: .f32)
        options.overrides = [try TypeOverride(parsing: "*=f16")]
        #expect(throws: ConvertError.self) { try Converter.convert(input: Tiny.folder, output: s["folder"], options: options) }
    }
}
