// Prefill in one place: how a prompt is cut into forward steps (`PrefillSchedule`) and a prompt's prefill on one
// state, run a chunk at a time (`Prefill`), for the generation loop, the chat session and the server's scheduler
// alike. A step's rows decide its kernels (prompt GEMM from 8 rows, row kernels below), so the schedule is a
// function of the prompt alone, with chunk boundaries at absolute positions: a cold prefill of a prompt always runs
// the same steps, and a cache knows which of them it holds (`KVCache.exactReusablePrefix`).

/// How prompt positions are cut into forward steps: chunks of `chunk` positions (a scheduler runs one chunk of a
/// prompt between decode steps; a generator reports progress between chunks), within a chunk steps of at most
/// `maxRows` positions from the chunk's start, and never a bidirectional span split across steps (a step ends before
/// a span that would cross its end; a span is one step of its own length, even across a chunk's end).
public struct PrefillSchedule: Sendable, Equatable {
    /// Positions per chunk; chunk boundaries are multiples of it counted from the schedule's start.
    public let chunk: Int
    /// Rows of one forward step (the state's `maxBatch`).
    public let maxRows: Int

    public init(chunk: Int, maxRows: Int) {
        self.chunk = max(1, chunk)
        self.maxRows = max(1, maxRows)
    }

    /// The schedule of `state` (its workspace's rows) with chunks of `chunk` positions.
    public init(chunk: Int, state: Gemma3State) { self.init(chunk: chunk, maxRows: state.maxBatch) }

    /// The forward steps that process positions `start..<prompt.count` of `prompt`, in order, chunks counted from
    /// `start`. A cold prefill starts at 0; `PrefixReuse.exact` keeps a prefix that ends on one of its steps.
    ///
    /// - Throws: `ModelError.input` when `start` lies inside a bidirectional span, or a span is longer than
    ///   `maxRows` (name the sizes: the state's `maxBatch` must be at least the longest span).
    public func steps(of prompt: Prompt, from start: Int = 0) throws(ModelError) -> [Range<Int>] {
        let n = prompt.count
        guard start >= 0, start <= n else { throw .input("prefill start \(start) is outside a \(n)-position prompt") }
        let spans = prompt.bidirectionalSpans
        if let long = spans.first(where: { $0.count > maxRows }) {
            throw .input("a bidirectional span of \(long.count) positions (\(long.lowerBound)..<\(long.upperBound)) does not fit a forward step of \(maxRows) rows; make the state with maxBatch >= \(long.count)")
        }
        if let inside = spans.first(where: { $0.lowerBound < start && start < $0.upperBound }) {
            throw .input("prefill cannot start at \(start), inside the bidirectional span \(inside.lowerBound)..<\(inside.upperBound)")
        }
        var out: [Range<Int>] = []
        var p = start, s = spans.startIndex
        while p < n {
            let offset = (p - start) / chunk * chunk
            var end = min(start + offset + min(chunk, n - start - offset), p + maxRows)
            while s < spans.endIndex, spans[s].upperBound <= p { s += 1 }
            var i = s
            while i < spans.endIndex, spans[i].lowerBound < end {
                if spans[i].upperBound > end {
                    // The span would cross the step's end: stop before it, or (starting here) take it whole.
                    end = spans[i].lowerBound > p ? spans[i].lowerBound : spans[i].upperBound
                    break
                }
                i += 1
            }
            out.append(p..<end)
            p = end
        }
        return out
    }
}

/// A prompt's prefill on one state: what its cache keeps (by a `PrefixReuse` policy), then the remaining steps of
/// the schedule, run a chunk at a time. Each step is recorded in the cache as written by a prefill.
///
/// ```swift
/// var prefill = try Prefill(prompt, model: model, state: state, chunk: 256, reuse: .exact)
/// while !prefill.isComplete { try prefill.runChunk { logits in next = sampler.sample(logits) } }
/// ```
public struct Prefill {
    public let model: Gemma3Model
    public let state: Gemma3State
    public let prompt: Prompt
    public let schedule: PrefillSchedule
    /// Prompt positions kept from what the cache held.
    public let reused: Int
    /// The steps still to run, in order.
    public private(set) var steps: ArraySlice<Range<Int>>
    /// Save the cache's rings when the prompt is complete (see `KVCache.snapshot`).
    public let snapshot: Bool
    /// Where chunks are counted from: 0 (the cold schedule) under `.exact`, the reused prefix's end under `.longest`.
    private let origin: Int

    /// Cuts the state's cache back to the prefix of `prompt` that `reuse` allows and plans the rest.
    ///
    /// Under `.exact` the rest is the cold schedule's own steps; under `.longest` the steps start where the reused
    /// prefix ends (chunks counted from there, as a chat turn always did).
    /// - Throws: `ModelError.input` for an empty prompt or a span the schedule cannot place.
    public init(_ prompt: Prompt, model: Gemma3Model, state: Gemma3State, chunk: Int, reuse: PrefixReuse,
                snapshot: Bool = false) throws(ModelError) {
        guard !prompt.isEmpty else { throw .input("the prompt is empty (at least BOS is needed)") }
        let schedule = PrefillSchedule(chunk: chunk, state: state)
        let reused = state.cache.reusablePrefix(of: prompt, policy: reuse, schedule: schedule)
        let steps: [Range<Int>]
        switch reuse {
        case .exact: steps = try schedule.steps(of: prompt).filter { $0.lowerBound >= reused }
        case .longest: steps = try schedule.steps(of: prompt, from: reused)
        }
        state.cache.truncate(to: reused)
        self.model = model
        self.state = state
        self.prompt = prompt
        self.schedule = schedule
        self.reused = reused
        self.steps = steps[...]
        self.snapshot = snapshot
        origin = reuse == .exact ? 0 : reused
    }

    /// True once every position of the prompt is in the cache.
    public var isComplete: Bool { steps.isEmpty }

    /// Prompt positions in the cache.
    public var done: Int { steps.first?.lowerBound ?? prompt.count }

    /// Runs the steps of the next chunk (those that start before the chunk's end). `body` receives the logits of
    /// the prompt's last position, after the last step.
    public mutating func runChunk(_ body: (UnsafeBufferPointer<Float>) -> Void = { _ in }) throws(ModelError) {
        try runChunk(scoring: nil, body)
    }

    /// `runChunk`, and `scoring` receives the logits of every position the chunk runs (its absolute position
    /// first), in order.
    public mutating func runChunk(scoring: ((Int, UnsafeBufferPointer<Float>) -> Void)?,
                                  _ body: (UnsafeBufferPointer<Float>) -> Void) throws(ModelError) {
        guard let first = steps.first else { return }
        let chunkStart = (first.lowerBound - origin) / schedule.chunk * schedule.chunk + origin
        while let step = steps.first, step.lowerBound - chunkStart < schedule.chunk {
            let last = step.upperBound == prompt.count
            if let scoring {
                try model.forward(prompt, positions: step, state: state, logits: .all) { position, logits in
                    scoring(position, logits)
                    if last && position == prompt.count - 1 { body(logits) }
                }
            } else {
                try model.forward(prompt, positions: step, state: state, logits: last ? .last : .none) { _, logits in body(logits) }
            }
            state.cache.recordPrefillStep(step)
            steps.removeFirst()
            if last && snapshot { state.cache.snapshot() }
        }
    }

    /// Runs every remaining step.
    public mutating func run(_ body: (UnsafeBufferPointer<Float>) -> Void = { _ in }) throws(ModelError) {
        while !isComplete { try runChunk(body) }
    }
}

extension Gemma3Model {
    /// Makes the state hold `prompt` (see `Prefill`): keeps what `reuse` allows of its cache, runs the rest, and
    /// reports the logits of the last position. Returns how many positions were reused.
    @discardableResult
    public func prefill(_ prompt: Prompt, state: Gemma3State, chunk: Int = 256, reuse: PrefixReuse = .longest,
                        snapshot: Bool = false,
                        _ body: (UnsafeBufferPointer<Float>) -> Void = { _ in }) throws(ModelError) -> Int {
        var p = try Prefill(prompt, model: self, state: state, chunk: chunk, reuse: reuse, snapshot: snapshot)
        try p.run(body)
        return p.reused
    }
}
