// Speculative decoding by prompt lookup (issue 20): the output is the plain greedy output, token for token, on the
// 14 prompts of reference-greedy.json and on a copy-heavy prompt where most proposals are taken.
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct SpeculationTests {
    static func run(_ g: Generator, _ prompt: [Int], _ n: Int, draft: Int?) throws -> GenerationOutcome {
        let state = g.model.makeState(capacity: prompt.count + n + 1)
        var p = GenerationParameters(sampling: .greedy, maxTokens: n, ignoreStopTokens: true)
        p.draftMax = draft
        return try g.run(prompt: Prompt(tokens: prompt), state: state, parameters: p, tokenizer: nil) { _ in }
    }

    @Test func greedyIdsIdenticalWithAndWithoutPromptLookup() throws {
        guard let path = TestPaths.requireModel() else { return }
        let g = Generator(model: try Gemma3Model(path: path))
        let golden = try TestPaths.json("reference-greedy.json") as! [String: Any]
        var prompts = (golden["results"] as! [[String: Any]]).map { ($0["prompt_ids"] as! [NSNumber]).map(\.intValue) }
        // Copy-heavy: a list to repeat, so that proposals are made and mostly accepted.
        let list = [2] + (0..<6).flatMap { [236770 + $0, 236787, 818, 3823] } + [108]
        prompts.append(list + list.dropFirst())
        var proposed = 0, accepted = 0
        for prompt in prompts {
            let plain = try Self.run(g, prompt, 48, draft: nil)
            for draft in [1, 4, 6] {
                let spec = try Self.run(g, prompt, 48, draft: draft)
                #expect(spec.tokens == plain.tokens, "draft \(draft): \(spec.tokens) vs \(plain.tokens)")
                proposed += spec.stats.draftProposed
                accepted += spec.stats.draftAccepted
            }
            #expect(plain.stats.draftProposed == 0)
        }
        print("prompt lookup over \(prompts.count) prompts x 3 draft lengths: \(accepted) of \(proposed) proposed tokens accepted")
        #expect(proposed > 0 && accepted > 0 && accepted < proposed)  // both outcomes exercised
    }
}
