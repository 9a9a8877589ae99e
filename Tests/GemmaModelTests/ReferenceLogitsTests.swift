// Logits on the real model against the independent f32/f64 NumPy reference (reference-topk.json): the first 1024
// tokens of ppl-public.txt as one causal sequence (twice the 512 sliding window). At every position the top-1 id
// equals the reference's (near ties under 0.05 excepted) and each of the reference's top-32 logits is within 0.02.
import Foundation
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct ReferenceLogitsTests {
    /// The model issue's tolerance, for the exact path (f32 KV).
    static let logitTolerance: Float = 0.02
    /// f16 KV rounds keys and values to 11 significant bits; measured 0.0193 worst case here (top-1 unchanged).
    static let f16KVLogitTolerance: Float = 0.03
    static let nearTie: Float = 0.05

    /// f32 is the exact path; f16 is the default KV storage. Both prefill in chunks of 64 through rings of 512.
    @Test(arguments: [KVStorage.f32, .f16])
    func topLogitsMatchTheReferenceOver1024Positions(kv: KVStorage) throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let golden = try TestPaths.json("reference-topk.json") as! [String: Any]
        let ids = (golden["input_ids"] as! [NSNumber]).map(\.intValue)
        let lse = (golden["lse"] as! [NSNumber]).map(\.doubleValue)
        let top = (golden["top"] as! [[[NSNumber]]]).map { $0.map { (id: $0[0].intValue, logit: $0[1].floatValue) } }
        #expect(ids.count == 1024 && top.count == 1024)

        let state = model.makeState(capacity: ids.count, maxBatch: 64, kvStorage: kv)
        let rings = state.cache.layers.filter { $0.isRing }.count
        #expect(rings == 15)
        var worst: Float = 0, worstAt = 0, top1Agree = 0, ties = 0, lseWorst = 0.0
        var klTop = 0.0
        try model.forward(ids, state: state, logits: .all) { p, logits in
            let ref = top[p]
            let mine = topK(logits, 1)[0].id
            if mine == ref[0].id { top1Agree += 1 } else {
                let margin = ref[0].logit - ref[1].logit
                #expect(margin < Self.nearTie, "position \(p): top-1 \(mine) but reference \(ref[0].id) with margin \(margin)")
                ties += 1
            }
            for (id, want) in ref {
                let d = abs(logits[id] - want)
                if d > worst { worst = d; worstAt = p }
            }
            // Log-sum-exp of our full distribution, and the KL over the reference's top-32 mass.
            var m = -Float.infinity
            for x in logits { m = max(m, x) }
            var s = 0.0
            for x in logits { s += exp(Double(x - m)) }
            let myLse = Double(m) + log(s)
            lseWorst = max(lseWorst, abs(myLse - lse[p]))
            for (id, want) in ref {
                let pr = exp(Double(want) - lse[p])
                klTop += pr * ((Double(want) - lse[p]) - (Double(logits[id]) - myLse))
            }
        }
        print("logits (KV \(kv)): top-1 agrees at \(top1Agree)/1024 positions (\(ties) near ties); max |logit - reference| over the top-32 = \(worst) at position \(worstAt); max |lse diff| = \(lseWorst); top-32 partial KL mean = \(klTop / 1024)")
        #expect(worst <= (kv == .f32 ? Self.logitTolerance : Self.f16KVLogitTolerance))
    }
}
