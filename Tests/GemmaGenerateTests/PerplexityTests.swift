// Perplexity of ppl-public.txt at ctx 512 by llama-perplexity's method: within 0.5% of the f32 reference
// (reference-perplexity.json, 13.1535) and within 1% of llama.cpp's 13.2312.
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaModel
import GemmaTokenizer
import GemmaTestSupport
import Testing

@Suite(.serialized) struct PerplexityTests {
    @Test func perplexityMatchesTheReferenceAndLlamaCpp() throws {
        guard let path = TestPaths.requireModel() else { return }
        let file = try GGUFFile(path: path)
        let model = try Gemma3Model(file: file, config: try Gemma3Config(gguf: file))
        let tokenizer = try Tokenizer(vocabulary: Vocabulary(gguf: file.metadata))
        var text = try String(contentsOfFile: TestPaths.fixtures + "/ppl-public.txt", encoding: .utf8)
        if text.hasSuffix("\n") { text.removeLast() }
        let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: false).map(Int.init)
        #expect(ids.count == 9883)  // llama-perplexity's count
        let reference = try TestPaths.json("reference-perplexity.json") as! [String: Any]
        let refPPL = (reference["ppl"] as! NSNumber).doubleValue
        let refChunks = (reference["per_chunk"] as! [NSNumber]).map(\.doubleValue)
        let llamaCpp = 13.2312
        let r = try Perplexity.evaluate(model: model, tokens: ids, ctx: 512)
        print("perplexity: \(r.ppl) over \(r.chunks) chunks (\(r.scored) scored); reference \(refPPL) (\((r.ppl / refPPL - 1) * 100)%), llama.cpp \(llamaCpp) (\((r.ppl / llamaCpp - 1) * 100)%)")
        #expect(r.chunks == 19 && r.scored == 19 * 255)
        #expect(abs(r.ppl / refPPL - 1) < 0.005)
        #expect(abs(r.ppl / llamaCpp - 1) < 0.01)
        for (mine, ref) in zip(r.perChunk, refChunks) { #expect(abs(mine / ref - 1) < 0.005) }
    }
}
