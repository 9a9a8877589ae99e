// Long context on the real model: logits at positions past several 512-token windows (up to 4096) of one causal
// sequence equal the f32 reference (reference-long-context.json, from scripts/reference/gemma3_ref.py) within the
// model issue's tolerances: the same top-1 (near ties under 0.05 excepted) and top-32 logits within 0.02.
import Foundation
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct LongContextTests {
    @Test(arguments: [KVStorage.f32, .f16])
    func logitsPastSeveralWindowsMatchTheReference(kv: KVStorage) throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let golden = try TestPaths.json("reference-long-context.json") as! [String: Any]
        let ids = (golden["input_ids"] as! [NSNumber]).map(\.intValue)
        let positions = (golden["positions"] as! [NSNumber]).map(\.intValue)
        let top = (golden["top"] as! [[[NSNumber]]]).map { $0.map { (id: $0[0].intValue, logit: $0[1].floatValue) } }
        #expect(ids.count == 4097 && positions.last == 4096)
        let state = model.makeState(capacity: ids.count, maxBatch: 128, kvStorage: kv)
        var worst: Float = 0
        var seen = 0
        try model.forward(ids, state: state, logits: .at(positions)) { p, logits in
            let ref = top[positions.firstIndex(of: p)!]
            seen += 1
            let mine = topK(logits, 1)[0].id
            if mine != ref[0].id {
                #expect(ref[0].logit - ref[1].logit < 0.05, "position \(p): top-1 \(mine), reference \(ref[0].id)")
            }
            for (id, want) in ref { worst = max(worst, abs(logits[id] - want)) }
        }
        print("long context (KV \(kv)): \(seen) positions up to \(positions.last!), max |logit - reference| over the top-32 = \(worst); KV bytes \(state.cache.bytes)")
        #expect(seen == positions.count)
        #expect(worst <= (kv == .f32 ? 0.02 : 0.03))
    }
}
