// Speculative decoding: a proposer guesses the next few tokens, and the model checks them all in one forward step
// (the step's rows share one read of every weight). Each row's logits are what decoding it alone gives, so a greedy
// choice that equals the proposal keeps the plain output token for token; with top-k sampling a proposal is taken
// with probability min(1, p/q) and a refusal draws from the residual (Leviathan et al. 2023), so each token keeps
// plain sampling's distribution. Rejected rows are taken back from the cache (`KVCache.checkpoint`/`rollback`).
// Proposers: prompt lookup (the tokens that followed the text's last n-gram earlier in the prompt or the output) and
// a draft model (a smaller Gemma 3 with the same vocabulary, decoding ahead on its own cache). `Generator.run` and the
// server's scheduler drive the same `Speculator`.
import Foundation
import GemmaModel

/// A draft model for speculative decoding: a Gemma 3 checkpoint with the target's vocabulary whose greedy (or
/// sampled) continuation is proposed to the target. Keeps the KV-cache states of finished generations, so that a
/// chat's next turn or a server slot's next request only runs what is new to it.
public final class DraftModel: @unchecked Sendable, Equatable {
    public let model: Gemma3Model
    private let lock = NSLock()
    private var idle: [Gemma3State] = []
    /// States kept between generations at most.
    static let maxIdle = 8

    public init(_ model: Gemma3Model) { self.model = model }

    public static func == (a: DraftModel, b: DraftModel) -> Bool { a === b }

    /// A state of `capacity` positions (the draft's context at most) for a generation over `prompt`: the idle one
    /// whose cache keeps the longest prefix of it, cut back to that prefix, else a new one.
    func takeState(capacity: Int, prompt: [Int]) -> Gemma3State {
        let capacity = min(capacity, model.config.maxPositionEmbeddings)
        let p = Prompt(tokens: prompt)
        lock.lock()
        var best: (index: Int, keep: Int)? = nil
        for (i, s) in idle.enumerated() where s.cache.capacity >= capacity {
            let keep = s.cache.longestReusablePrefix(of: p)
            if best == nil || keep > best!.keep { best = (i, keep) }
        }
        let state = best.map { idle.remove(at: $0.index) }
        lock.unlock()
        if let state, let best {
            if state.cache.truncate(to: best.keep) { return state }
            if state.cache.truncate(to: 0) { return state }
        }
        return model.makeState(capacity: capacity)
    }

    func giveBack(_ state: Gemma3State) {
        lock.lock()
        defer { lock.unlock() }
        if idle.count >= Self.maxIdle { idle.removeFirst() }
        idle.append(state)
    }
}

/// One generation's speculative decoding: the proposals of each step, their adaptive length, and the verification
/// of the step's rows. The driver runs `[cursor.next] + propose(for:cache:)` in one forward step (logits of every
/// row), calls `verify` on the rows in order while it returns true (each true is a proposal taken: `cursor.next` is
/// then that token, to emit), and calls `finishStep(kept:cache:)`, which takes the other rows back from the cache.
public struct Speculator {
    /// The prompt and every token chosen since (the last: the token the current step runs).
    private(set) var history: [Int]
    private var length: DraftLength
    private var draft: DraftRunner?
    private let sampling: Bool
    /// The current step's proposals, and how many of them were taken so far.
    public private(set) var proposals: [Int] = []
    private var taken = 0
    /// The cache's count when the step's proposals were made.
    private var stepBase = 0
    /// Tokens proposed and tokens of them accepted so far.
    public private(set) var proposed = 0, accepted = 0

    /// Whether speculation applies to generation under `parameters`: `draftMax` > 0, greedy or top-k sampling, and
    /// no bias, penalties, grammar or log-probabilities (which a verification step does not reproduce).
    public static func applies(to parameters: GenerationParameters) -> Bool {
        guard let m = parameters.draftMax, m > 0 else { return false }
        let s = parameters.sampling
        let sampling = s.temperature > 0 && s.temperature.isFinite
        return (!sampling || s.topK > 0) && s.logitBias.isEmpty && !s.hasPenalties && parameters.constraint == nil
            && parameters.topLogprobs == nil
    }

    /// Nil when speculation does not apply (see `applies(to:)`). A draft model drafts for prompts of token ids only
    /// (it does not see images); other prompts fall back to prompt lookup.
    ///
    /// - Parameter capacity: Positions of the target's cache (the draft's state gets as many, within its context).
    public init?(parameters: GenerationParameters, prompt: Prompt, capacity: Int) {
        guard Self.applies(to: parameters) else { return nil }
        let s = parameters.sampling
        sampling = s.temperature > 0 && s.temperature.isFinite
        history = prompt.tokenIDs
        length = DraftLength(max: min(parameters.draftMax ?? 1, 6))
        if let d = parameters.draftModel, prompt.isTokensOnly,
           prompt.tokenIDs.allSatisfy({ $0 < d.model.config.vocabSize }) {
            var draftSampler: Sampler? = nil
            if sampling {
                var ds = s
                ds.seed = s.seed ^ 0x9E37_79B9_7F4A_7C15  // the draft's own stream: proposals never shift the target's
                draftSampler = Sampler(ds)
            }
            draft = DraftRunner(owner: d, state: d.takeState(capacity: capacity, prompt: history), sampler: draftSampler,
                                promptCount: history.count)
        }
    }

    /// The proposals for the step that runs `cursor.next` on `cache` (at most the positions left in the cache after
    /// it, or the tokens left to generate after it if fewer); when there are any, the cache is checkpointed for the
    /// step's rows.
    public mutating func propose(for cursor: GenerationCursor, cache: KVCache) -> [Int] {
        stepBase = cache.count
        let p = propose(next: cursor.next, room: min(cache.capacity - stepBase - 1, cursor.limit - cursor.generated))
        if !p.isEmpty { cache.checkpoint(ahead: p.count + 1) }
        return p
    }

    private mutating func propose(next: Int, room: Int) -> [Int] {
        history.append(next)
        let k = min(length.take(), max(0, room))
        guard k > 0 else { proposals = []; return [] }
        if draft != nil {
            do {
                proposals = try draft!.propose(history: history, count: k)
            } catch {
                // The draft cannot go on (its context is full, a token it does not know): prompt lookup from here.
                draft!.close()
                draft = nil
                proposals = PromptLookup.propose(history, count: k)
            }
        } else {
            proposals = PromptLookup.propose(history, count: k)
        }
        return proposals
    }

    /// Chooses the token of row `i` of the step (row 0 runs `next`, row j + 1 the proposal j) into the cursor;
    /// returns true when it is that row's proposal (then it is emitted and row i + 1 is checked next).
    public mutating func verify(row i: Int, _ logits: UnsafeBufferPointer<Float>, cursor: inout GenerationCursor) -> Bool {
        let match: Bool
        if sampling && i < proposals.count {
            match = cursor.acceptSpeculative(logits, proposal: proposals[i], draft: draft?.distribution(i))
        } else {
            cursor.accept(logits)
            match = i < proposals.count && cursor.next == proposals[i]
        }
        if match {
            history.append(cursor.next)
            taken += 1
        }
        return match
    }

    /// Ends a step with proposals that keeps `kept` rows in `cache` (the token run and kept - 1 proposals; a
    /// proposal taken by the last row checked is the next token to run, as is a refused proposal's replacement):
    /// the other rows are taken back. Returns the step's proposed and accepted counts.
    @discardableResult
    public mutating func finishStep(kept: Int, cache: KVCache) -> (proposed: Int, accepted: Int) {
        cache.rollback(to: stepBase + kept)
        let step = (proposals.count, taken)
        proposed += step.0
        accepted += step.1
        length.record(proposed: step.0, accepted: step.1)
        draft?.rollback(accepted: max(0, kept - 1))
        proposals = []
        taken = 0
        return step
    }

    /// Hands the draft model's state back for the next generation.
    public mutating func close() {
        draft?.close()
        draft = nil
    }
}

/// The draft length: a proposal taken whole doubles it (up to `max`), one rejected at its first token halves it,
/// and after 4 such rejections in a row nothing is proposed for 8 tokens, so text with nothing to guess decodes as
/// without speculation.
struct DraftLength {
    let max: Int
    var current: Int
    var misses = 0, pause = 0

    init(max: Int) {
        self.max = Swift.max(1, max)
        current = self.max
    }

    mutating func take() -> Int {
        if pause > 0 { pause -= 1; return 0 }
        return current
    }

    mutating func record(proposed p: Int, accepted a: Int) {
        guard p > 0 else { return }
        if a == p { current = Swift.min(max, current * 2); misses = 0 }
        else if a == 0 {
            current = Swift.max(1, current / 2)
            misses += 1
            if misses >= 4 { pause = 8; misses = 0 }
        }
    }
}

/// Prompt lookup (n-gram speculation): the tokens that followed the most recent earlier occurrence of the text's last
/// 3 tokens (else 2), in the prompt and in what was generated, as a copy that may run into itself (LZ77's rule).
enum PromptLookup {
    static func propose(_ history: [Int], count: Int) -> [Int] {
        let n = history.count
        for len in [3, 2] where n > len {
            let tail = history[(n - len)...]
            var i = n - len - 1
            while i >= 0 {
                if history[i..<(i + len)].elementsEqual(tail) {
                    // What followed, continued into the proposal itself where the match is recent (a repeating
                    // run: "a b a b" proposes "a b a ..." as far as `count`).
                    let from = i + len
                    var out: [Int] = []
                    out.reserveCapacity(count)
                    for j in from..<(from + count) { out.append(j < n ? history[j] : out[j - n]) }
                    return out
                }
                i -= 1
            }
        }
        return []
    }
}

/// A draft model decoding ahead on its own cache: it catches up with the text (what it has not run yet), then
/// chooses `count` tokens one step at a time, greedily or (when the target samples) by the same sampler chain, and
/// keeps their distributions for the target's acceptance test.
struct DraftRunner {
    let owner: DraftModel
    let state: Gemma3State
    var sampler: Sampler?
    private var distributions: [(ids: [Int], probabilities: [Double])] = []
    /// The history's length when the last proposals were made.
    private var base = 0

    /// Tokens of the prompt (the target ran them in prefill steps).
    let promptCount: Int

    init(owner: DraftModel, state: Gemma3State, sampler: Sampler?, promptCount: Int) {
        self.promptCount = promptCount
        self.owner = owner
        self.state = state
        self.sampler = sampler
    }

    func distribution(_ i: Int) -> (ids: [Int], probabilities: [Double])? {
        i < distributions.count ? distributions[i] : nil
    }

    mutating func propose(history: [Int], count k: Int) throws(ModelError) -> [Int] {
        let cache = state.cache, model = owner.model
        let from = cache.count
        base = history.count
        // Positions from..<base catch up; the proposals but the last are run too.
        guard base + k - 1 <= cache.capacity, from < base else { throw .input("the draft's context is full") }
        cache.checkpoint(ahead: base - from + k - 1)
        var out: [Int] = []
        distributions.removeAll(keepingCapacity: true)
        func choose(_ l: UnsafeBufferPointer<Float>) {
            if sampler != nil {
                let d = sampler!.distribution(l)
                distributions.append(d)
                out.append(sampler!.draw(from: d))
            } else {
                out.append(Sampler.argmax(l))
            }
        }
        // The catch-up in the steps the target took: the prompt's rest in prefill steps, then what was generated a
        // few rows at a time (row kernels, as in decoding), so that the draft's cache holds what the target's does
        // and a draft that is the target proposes its choices exactly.
        var at = from
        if at < promptCount {
            try model.prefill(Prompt(tokens: Array(history[..<promptCount])), state: state, reuse: .longest)
            at = promptCount
        }
        while base - at > 4 {
            try model.forward(Array(history[at..<(at + 4)]), state: state, logits: .none)
            at += 4
        }
        try model.forward(Array(history[at...]), state: state, logits: .last) { _, l in choose(l) }
        var step = [0]
        while out.count < k {
            step[0] = out[out.count - 1]
            try model.forward(step, state: state, logits: .last) { _, l in choose(l) }
        }
        return out
    }

    /// Keeps the draft's positions that the step confirmed (the run token and `accepted` proposals).
    mutating func rollback(accepted a: Int) {
        state.cache.rollback(to: min(state.cache.count, base + a))
    }

    func close() { owner.giveBack(state) }
}

extension DraftModel {
    /// `draft` as the draft model of `target`: refused unless its vocabulary is the target's (every piece the same,
    /// in the same order), as proposals are token ids.
    public convenience init(_ draft: LanguageModel, for target: LanguageModel) throws(ModelError) {
        try target.requireSameVocabulary(draft, role: "draft model")
        self.init(draft.model)
    }
}

extension LanguageModel {
    /// Throws unless `other`'s vocabulary is this model's, every piece the same and in the same order (a draft
    /// model's proposals, a teacher's distributions are token ids); `role` names `other` in the error.
    public func requireSameVocabulary(_ other: LanguageModel, role: String) throws(ModelError) {
        let a = other.tokenizer.vocabulary.pieces, b = tokenizer.vocabulary.pieces
        guard a == b else {
            let first = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            throw .config("the \(role)'s vocabulary is not this model's (\(a.count) vs \(b.count) pieces"
                + (first.map { ", first difference at id \($0)" } ?? "") + ")")
        }
    }
}
