// Inputs beyond token ids: a prompt whose positions 10..25 are rows of embeddings forming one bidirectional span (as
// an image's soft tokens), against the independent NumPy reference with that mask (reference-bidirectional.json,
// scripts/reference/make_bidirectional_refs.py). Also a causal control: the same rows without the span's mask give
// the reference's causal logits, and the two references differ, so the comparison sees the mask.
import Foundation
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct BidirectionalSpanTests {
    struct Reference {
        let ids: [Int]
        let span: Range<Int>
        let rows: [Float]
        let top: [String: [[(id: Int, logit: Float)]]]

        init() throws {
            let j = try TestPaths.json("reference-bidirectional.json") as! [String: Any]
            ids = (j["input_ids"] as! [NSNumber]).map(\.intValue)
            let s = (j["span"] as! [NSNumber]).map(\.intValue)
            span = s[0]..<s[1]
            rows = (j["rows_f32_bits"] as! [NSNumber]).map { Float(bitPattern: $0.uint32Value) }
            var top: [String: [[(id: Int, logit: Float)]]] = [:]
            for name in ["bidirectional", "causal"] {
                let t = ((j[name] as! [String: Any])["top"] as! [[[NSNumber]]])
                top[name] = t.map { $0.map { (id: $0[0].intValue, logit: $0[1].floatValue) } }
            }
            self.top = top
        }

        func prompt(bidirectional: Bool) -> Prompt {
            Prompt([.tokens(Array(ids[..<span.lowerBound])),
                    .embeddings(EmbeddingSpan(rows: rows, count: span.count, bidirectional: bidirectional, placeholder: 0)),
                    .tokens(Array(ids[span.upperBound...]))])
        }
    }

    /// Largest |logit - reference| over the reference's top-16 at every position.
    func worst(_ model: Gemma3Model, _ prompt: Prompt, maxBatch: Int, against ref: [[(id: Int, logit: Float)]]) throws -> Float {
        let state = model.makeState(capacity: 64, maxBatch: maxBatch, kvStorage: .f32)
        var worst: Float = 0, seen = 0
        try model.forward(prompt, positions: 0..<prompt.count, state: state, logits: .all) { p, logits in
            seen += 1
            for (id, want) in ref[p] { worst = max(worst, abs(logits[id] - want)) }
        }
        #expect(seen == prompt.count)
        #expect(state.cache.count == prompt.count)
        return worst
    }

    /// One step (64 rows), and steps of 16 rows, where the span (16 rows from position 10) moves the first step's end
    /// to 10 so that it is never split.
    @Test(arguments: [64, 16])
    func embeddingSpanMatchesTheReference(maxBatch: Int) throws {
        let path = try #require(TestPaths.requireModel())
        let ref = try Reference()
        let model = try Gemma3Model(path: path, options: ModelOptions(precision: .exact, kvStorage: .f32))
        let bidirectional = try worst(model, ref.prompt(bidirectional: true), maxBatch: maxBatch, against: ref.top["bidirectional"]!)
        let causal = try worst(model, ref.prompt(bidirectional: false), maxBatch: maxBatch, against: ref.top["causal"]!)
        let crossed = try worst(model, ref.prompt(bidirectional: true), maxBatch: maxBatch, against: ref.top["causal"]!)
        print("bidirectional span (maxBatch \(maxBatch)): max |logit - reference| \(bidirectional) (bidirectional), \(causal) (causal control); bidirectional run vs causal reference \(crossed)")
        #expect(bidirectional <= ReferenceLogitsTests.logitTolerance)
        #expect(causal <= ReferenceLogitsTests.logitTolerance)
        #expect(crossed > 0.5, "the span's mask made no visible difference")
    }

    @Test func spanLongerThanAStepIsRefused() throws {
        let path = try #require(TestPaths.requireModel())
        let ref = try Reference()
        let model = try Gemma3Model(path: path)
        let state = model.makeState(capacity: 64, maxBatch: 8)
        let prompt = ref.prompt(bidirectional: true)
        #expect(throws: ModelError.self) { try model.forward(prompt, positions: 0..<prompt.count, state: state) }
    }
}
