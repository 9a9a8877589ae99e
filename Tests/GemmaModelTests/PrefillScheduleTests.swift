// The prefill schedule on its own (no model): chunk boundaries at absolute positions, steps of at most maxRows from a
// chunk's start, bidirectional spans never split, clear errors for spans that cannot be placed.
import GemmaModel
import Testing

@Suite struct PrefillScheduleTests {
    /// A prompt of `tokens` token positions with embedding spans (hidden size 1) at the given ranges.
    static func prompt(_ count: Int, spans: [Range<Int>] = [], bidirectional: Bool = true) -> Prompt {
        var parts: [PromptPart] = [], p = 0
        for s in spans {
            parts.append(.tokens(Array(repeating: 7, count: s.lowerBound - p)))
            parts.append(.embeddings(EmbeddingSpan(rows: [Float](repeating: Float(s.lowerBound), count: s.count), count: s.count,
                                                   bidirectional: bidirectional, placeholder: 9)))
            p = s.upperBound
        }
        parts.append(.tokens(Array(repeating: 7, count: count - p)))
        return Prompt(parts)
    }

    @Test func chunkBoundariesAreAbsoluteAndStepsFitTheRows() throws {
        let s = PrefillSchedule(chunk: 100, maxRows: 64)
        #expect(try s.steps(of: Self.prompt(250)) == [0..<64, 64..<100, 100..<164, 164..<200, 200..<250])
        #expect(try PrefillSchedule(chunk: 37, maxRows: 64).steps(of: Self.prompt(120)) == [0..<37, 37..<74, 74..<111, 111..<120])
        #expect(try PrefillSchedule(chunk: 256, maxRows: 64).steps(of: Self.prompt(130)) == [0..<64, 64..<128, 128..<130])
        // From a later start (a `.longest` reuse), chunks are counted from there.
        #expect(try s.steps(of: Self.prompt(250), from: 30) == [30..<94, 94..<130, 130..<194, 194..<230, 230..<250])
        // Whatever the prompt's length, the cold steps are a prefix-closed family: a shorter prompt's steps are the
        // longer one's, cut at its end.
        let long = try s.steps(of: Self.prompt(400))
        for n in 1..<400 {
            let short = try s.steps(of: Self.prompt(n))
            #expect(Array(short.dropLast()) == Array(long.prefix(short.count - 1)))
            #expect(short.last!.lowerBound == long[short.count - 1].lowerBound && short.last!.upperBound == n)
        }
        #expect(try s.steps(of: Self.prompt(0)) == [])
    }

    @Test func spansAreNeverSplit() throws {
        let s = PrefillSchedule(chunk: 100, maxRows: 64)
        // A span across a row boundary: the step ends before it, the span starts the next step.
        #expect(try s.steps(of: Self.prompt(200, spans: [50..<90])) == [0..<50, 50..<100, 100..<164, 164..<200])
        // A span across a chunk boundary: one step of its own length, past the chunk's end.
        #expect(try s.steps(of: Self.prompt(200, spans: [90..<130])) == [0..<64, 64..<90, 90..<130, 130..<194, 194..<200])
        // A span of exactly maxRows, and one at the very start.
        #expect(try s.steps(of: Self.prompt(140, spans: [0..<64, 70..<134])) == [0..<64, 64..<70, 70..<134, 134..<140])
        // Causal embedding rows (not bidirectional) may be split like tokens.
        #expect(try s.steps(of: Self.prompt(200, spans: [50..<90], bidirectional: false)) == [0..<64, 64..<100, 100..<164, 164..<200])
        // Random spans and sizes: the steps cover the prompt in order, fit the rows, and never cut a span.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let rows = Int.random(in: 8...64, using: &rng), chunk = Int.random(in: 1...200, using: &rng)
            var spans: [Range<Int>] = [], p = Int.random(in: 0...20, using: &rng)
            while spans.count < 5 {
                let len = Int.random(in: 1...rows, using: &rng)
                spans.append(p..<(p + len))
                p += len + Int.random(in: 0...40, using: &rng)
            }
            let count = p + Int.random(in: 1...30, using: &rng)
            let steps = try PrefillSchedule(chunk: chunk, maxRows: rows).steps(of: Self.prompt(count, spans: spans))
            #expect(steps.first?.lowerBound == 0 && steps.last?.upperBound == count)
            #expect(zip(steps, steps.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
            #expect(steps.allSatisfy { !$0.isEmpty && $0.count <= rows })
            for span in spans {
                #expect(steps.contains { $0.contains(span.lowerBound) && $0.upperBound >= span.upperBound }, "span \(span) split: \(steps)")
            }
            // A step crosses a chunk boundary only to finish a span that starts in it.
            for step in steps where (step.lowerBound / chunk) != ((step.upperBound - 1) / chunk) {
                #expect(spans.contains { $0.lowerBound >= step.lowerBound && $0.upperBound == step.upperBound }, "step \(step), chunk \(chunk)")
            }
        }
    }

    @Test func spansThatCannotBePlacedAreClearErrors() {
        let s = PrefillSchedule(chunk: 256, maxRows: 64)
        #expect(throws: ModelError.input("a bidirectional span of 100 positions (10..<110) does not fit a forward step of 64 rows; make the state with maxBatch >= 100")) {
            try s.steps(of: Self.prompt(200, spans: [10..<110]))
        }
        #expect(throws: ModelError.self) { try s.steps(of: Self.prompt(200, spans: [10..<50]), from: 20) }
    }
}
