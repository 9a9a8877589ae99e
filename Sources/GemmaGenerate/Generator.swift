// The generation loop: prefill the prompt, then sample and decode one token at a time until a stop token or the
// token limit. Reports each token as it is chosen; timings are measured around prefill and decode.
import Dispatch
import GemmaModel

/// Why generation ended.
public enum StopReason: String, Sendable, Equatable {
    /// A stop token (`<eos>` or `<end_of_turn>`) was generated.
    case stopToken = "stop"
    /// The token limit was reached.
    case length
    /// The caller asked to stop.
    case cancelled
}

/// The outcome of one generation.
public struct GenerationResult: Sendable {
    public var promptTokens: [Int]
    public var tokens: [Int]
    public var stopReason: StopReason
    public var promptNanoseconds: UInt64
    public var generateNanoseconds: UInt64
    public var kvCacheBytes: Int
}

/// Generates from a loaded model.
public struct Generator: Sendable {
    public let model: Gemma3Model
    /// Token ids that end generation (Gemma 3: `<eos>` 1 and `<end_of_turn>` 106).
    public var stopTokens: Set<Int>

    public init(model: Gemma3Model) {
        self.model = model
        stopTokens = Set(model.config.eosTokenIds)
    }

    /// Generates up to `maxTokens` after `prompt`. `onToken` sees each token as it is chosen (stop tokens included)
    /// and returns false to stop. With `ignoreStopTokens`, stop tokens do not end generation.
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, ignoreStopTokens: Bool = false,
                         onToken: (Int) -> Bool = { _ in true }) throws(ModelError) -> GenerationResult {
        guard !prompt.isEmpty else { throw .input("the prompt is empty (at least BOS is needed)") }
        let capacity = prompt.count + max(maxTokens, 0)
        guard capacity <= model.config.maxPositionEmbeddings else {
            throw .input("prompt (\(prompt.count) tokens) + max tokens (\(maxTokens)) = \(capacity) exceeds the model's context of \(model.config.maxPositionEmbeddings)")
        }
        let state = model.makeState(capacity: capacity)
        var sampler = Sampler(sampling)
        var next = 0
        let t0 = DispatchTime.now().uptimeNanoseconds
        try model.forward(prompt, state: state, logits: .last) { _, logits in next = sampler.sample(logits) }
        let t1 = DispatchTime.now().uptimeNanoseconds
        var tokens: [Int] = []
        var reason = StopReason.length
        while tokens.count < maxTokens {
            tokens.append(next)
            if !onToken(next) { reason = .cancelled; break }
            if !ignoreStopTokens && stopTokens.contains(next) { reason = .stopToken; break }
            if tokens.count == maxTokens { break }
            try model.forward([next], state: state, logits: .last) { _, logits in next = sampler.sample(logits) }
        }
        let t2 = DispatchTime.now().uptimeNanoseconds
        return GenerationResult(promptTokens: prompt, tokens: tokens, stopReason: reason, promptNanoseconds: t1 - t0,
                                generateNanoseconds: t2 - t1, kvCacheBytes: state.cache.bytes)
    }
}
