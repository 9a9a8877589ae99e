// The generation loop under a grammar: each token is what the sampler picks from logits whose forbidden tokens are
// -inf (the definition), stop tokens come only where the grammar may end, and generation ends when it is complete.
// Synthetic logits over a toy vocabulary, so every step can be recomputed by hand.
import GemmaFormats
import GemmaGenerate
import GemmaGrammar
import GemmaTestSupport
import Testing

@Suite struct ConstrainedSamplingTests {
    /// ids 0-1 stop tokens (no text), then pieces.
    static let pieces = ["", "", "{", "}", "\"a\"", ":", "1", "2", "12", "true", " ", "x", "\"", "a", "\":", "1}"]
    static let trie = TokenTrie(tokens: pieces.map { $0.isEmpty ? nil : Array($0.utf8) })
    static let grammar = try! Grammar(gbnf: #"root ::= "{" "\"a\"" ":" " "? [0-9]+ "}""#)

    /// Steps a cursor over seeded random logits; returns the tokens and, per step, the logits it was given.
    func run(_ sampling: SamplingParameters, seed: UInt64) -> (tokens: [Int], logits: [[Float]], reason: StopReason) {
        var p = GenerationParameters(sampling: sampling, maxTokens: 20)
        p.constraint = TokenConstraint(grammar: Self.grammar, trie: Self.trie)
        var cursor = GenerationCursor(prompt: [], parameters: p, stopTokens: [0, 1], tokenizer: nil, room: 100)
        var rng = SplitMix64(seed: seed)
        var tokens: [Int] = [], seen: [[Float]] = []
        var reason: StopReason? = nil
        while reason == nil {
            let z = (0..<Self.pieces.count).map { _ in rng.gaussian() * 3 }
            seen.append(z)
            z.withUnsafeBufferPointer { cursor.accept($0) }
            tokens.append(cursor.next)
            reason = cursor.emit { _ in }
        }
        return (tokens, seen, reason!)
    }

    @Test(arguments: [0, 1, 2, 3, 4, 5, 6, 7] as [UInt64])
    func samplingEqualsSamplingMaskedLogits(seed: UInt64) {
        // top-k 40 (more than the vocabulary) and the unfiltered chain take the full mask; top-k 3 and 5 the
        // shortcut that checks the best-ranked tokens one by one.
        for sampling in [SamplingParameters(temperature: 1, seed: seed), SamplingParameters.unfiltered(temperature: 0.7, seed: seed),
                         SamplingParameters.greedy, SamplingParameters(temperature: 1, topK: 3, seed: seed),
                         SamplingParameters(temperature: 0.8, topK: 5, topP: 0.9, minP: 0.1, seed: seed)] {
            let (tokens, logits, reason) = run(sampling, seed: seed)
            // Replay: a plain sampler over logits masked by the grammar's own per-token check.
            var sampler = Sampler(sampling)
            var m = GrammarMatcher(Self.grammar, trie: Self.trie)
            var text = ""
            for (t, z) in zip(tokens, logits) {
                var masked = z
                for id in masked.indices {
                    let ok = id < 2 ? m.canEnd : m.allows(id)
                    if !ok { masked[id] = -.infinity }
                }
                let expect = masked.withUnsafeBufferPointer { sampler.sample($0) }
                #expect(t == expect, "seed \(seed) \(sampling.temperature): \(t) vs \(expect)")
                if t >= 2 {
                    let moved = m.accept(t)
                    #expect(moved)
                    text += Self.pieces[t]
                }
            }
            // Ends as soon as the grammar is complete (no stop token needed) or on a stop token where it may end.
            #expect(reason == .stopToken)
            #expect(m.canEnd, "\(text)")
            #expect(text.hasPrefix("{\"a\":") && text.hasSuffix("}"), "\(text)")
        }
    }
}
