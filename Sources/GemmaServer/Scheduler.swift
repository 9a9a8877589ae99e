// Continuous batching (after llama.cpp's server and vLLM's scheduler, reduced to what a CPU needs): one thread owns
// the model and N slots, each slot a KV-cache state. Every iteration it
//   1. drops cancelled jobs and admits waiting ones into free slots, choosing the free slot whose cache keeps the
//      longest prefix of the prompt under the exact-reuse rule (`KVCache.exactReusablePrefix`: only what a cold
//      prefill would have computed the same way, so a request's answer never depends on what the server did before,
//      whatever `prefillChunk` is);
//   2. prefills each newly admitted prompt on its own slot state (`Prefill`), one chunk per iteration, so running
//      sequences keep decoding while a long prompt goes in;
//   3. runs ONE batched decode step for every slot that is generating (each weight matrix is read once for all of
//      them; each sequence's arithmetic is that of stepping it alone), samples per slot and streams the tokens.
// Jobs join and leave between steps. HTTP handlers only parse, submit and stream; they never touch the model.
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaTokenizer
import Synchronization

/// Scheduler settings.
public struct SchedulerConfiguration: Sendable {
    /// Slots: sequences decoded together.
    public var parallel: Int = 4
    /// Positions of each slot's KV cache (prompt + generated tokens).
    public var contextLength: Int = 4096
    /// Jobs that may wait for a slot; more are refused.
    public var queueLimit: Int = 64
    /// Prompt tokens prefilled per slot per iteration.
    public var prefillChunk: Int = 256

    public init(parallel: Int = 4, contextLength: Int = 4096, queueLimit: Int = 64, prefillChunk: Int = 256) {
        self.parallel = parallel
        self.contextLength = contextLength
        self.queueLimit = queueLimit
        self.prefillChunk = prefillChunk
    }
}

/// Runs jobs on one model thread with continuous batching.
public final class Scheduler: @unchecked Sendable {
    public let model: Gemma3Model
    public let tokenizer: Tokenizer
    public let configuration: SchedulerConfiguration
    let stopTokens: Set<Int>
    let metrics: Metrics
    let log: @Sendable (String) -> Void

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var waiting: [Job] = []
    private var stopping = false
    private var nextJobID = 1
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    /// Decode steps run so far (read by `Job.cancel` from other threads).
    let steps = Atomic<Int>(0)

    // Owned by the model thread.
    private var slots: [Slot] = []
    private let batchWorkspace: Workspace

    public init(model lm: LanguageModel, configuration: SchedulerConfiguration, metrics: Metrics,
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        let model = lm.model
        var c = configuration
        c.parallel = max(1, c.parallel)
        c.contextLength = max(2, min(c.contextLength, model.config.maxPositionEmbeddings))
        c.queueLimit = max(0, c.queueLimit)
        c.prefillChunk = max(1, c.prefillChunk)
        self.model = model
        tokenizer = lm.tokenizer
        self.configuration = c
        self.metrics = metrics
        self.log = log
        stopTokens = Set(model.config.eosTokenIds)
        slots = (0..<c.parallel).map { Slot(index: $0, state: model.makeState(capacity: c.contextLength)) }
        batchWorkspace = model.makeWorkspace(maxRows: c.parallel, maxContext: c.contextLength)
        metrics.setSlots(total: c.parallel, busy: 0, queued: 0)
    }

    /// Starts the model thread.
    public func start() {
        let t = Thread { [self] in
            loop()
            finished.signal()
        }
        t.stackSize = 8 << 20
        t.name = "gemma-scheduler"
        thread = t
        t.start()
    }

    /// Refuses new jobs, fails the waiting ones, lets running ones finish their current step, and stops the thread.
    public func shutdown() {
        condition.lock()
        let wasRunning = thread != nil && !stopping
        stopping = true
        condition.broadcast()
        condition.unlock()
        if wasRunning { finished.wait() }
    }

    /// Queues a generation. The stream ends with `.finished` or `.failed`; dropping it (or cancelling the task that
    /// reads it) cancels the job.
    ///
    /// - Throws: `APIError.busy` when the queue is full, `.shuttingDown` after `shutdown()`.
    public func submit(tokens: [Int], parameters: GenerationParameters) throws(APIError) -> (Job, AsyncStream<JobEvent>) {
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream()
        condition.lock()
        defer { condition.unlock() }
        if stopping { throw .shuttingDown }
        // Jobs that a free slot will take at once do not count against the queue.
        let free = configuration.parallel - metrics.slotsBusy
        if waiting.count >= configuration.queueLimit + max(0, free) { throw .busy }
        let job = Job(id: nextJobID, tokens: tokens, parameters: parameters, continuation: continuation) { [weak self] job in
            self?.cancelled(job)
        }
        nextJobID += 1
        continuation.onTermination = { [weak job] _ in job?.cancel() }
        waiting.append(job)
        metrics.setQueued(waiting.count)
        condition.signal()
        return (job, stream)
    }

    private func cancelled(_ job: Job) {
        job.cancelledAtStep.store(steps.load(ordering: .relaxed), ordering: .relaxed)
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    // MARK: The model thread

    private func loop() {
        while true {
            // 1. Admission, under the lock.
            condition.lock()
            while !stopping && waiting.isEmpty && slots.allSatisfy({ $0.active == nil }) {
                condition.wait()
            }
            if stopping {
                let left = waiting
                waiting.removeAll()
                metrics.setQueued(0)
                condition.unlock()
                for job in left { job.continuation.yield(.failed(.shuttingDown)); job.continuation.finish() }
                for slot in slots where slot.active != nil { finish(slot, reason: .cancelled) }
                return
            }
            let dropped = waiting.filter(\.isCancelled)
            waiting.removeAll(where: \.isCancelled)
            var admitted: [Slot] = []
            while !waiting.isEmpty, let slot = bestFreeSlot(for: waiting[0]) {
                let job = waiting.removeFirst()
                slot.active = Active(job: job, slot: slot, scheduler: self)
                admitted.append(slot)
            }
            metrics.setQueued(waiting.count)
            condition.unlock()
            for job in dropped {
                metrics.countCancelled()
                job.continuation.finish()
            }
            for slot in admitted {
                guard let a = slot.active else { continue }
                metrics.observeQueueWait(ContinuousClock.now - a.job.enqueued)
            }
            publishBusy()

            // 2. Cancellations, then one prefill chunk per prefilling slot.
            for slot in slots where slot.active?.job.isCancelled == true { finish(slot, reason: .cancelled) }
            for slot in slots {
                guard let a = slot.active, !a.decoding else { continue }
                prefillChunk(slot, a)
            }

            // 3. Emit each generating slot's pending token; those that go on step together.
            var batch: [Slot] = []
            for slot in slots {
                guard let a = slot.active, a.decoding else { continue }
                if let reason = a.emitPending() { finish(slot, reason: reason) } else { batch.append(slot) }
            }
            if !batch.isEmpty { decodeStep(batch) }
            publishBusy()
        }
    }

    /// The free slot whose cache keeps the longest prefix of the job's prompt under the exact-reuse rule (ties: the
    /// lowest index).
    private func bestFreeSlot(for job: Job) -> Slot? {
        var best: (slot: Slot, reuse: Int)? = nil
        for slot in slots where slot.active == nil {
            let reuse = slot.state.cache.exactReusablePrefix(of: job.prompt, schedule: schedule(slot))
            if best == nil || reuse > best!.reuse { best = (slot, reuse) }
        }
        return best?.slot
    }

    /// How a slot's prompts are cut into forward steps: chunks of `prefillChunk` at absolute positions, steps of the
    /// slot state's rows.
    private func schedule(_ slot: Slot) -> PrefillSchedule {
        PrefillSchedule(chunk: configuration.prefillChunk, state: slot.state)
    }

    private func publishBusy() {
        metrics.setBusy(slots.reduce(0) { $0 + ($1.active == nil ? 0 : 1) })
    }

    private func prefillChunk(_ slot: Slot, _ a: Active) {
        do {
            if a.prefill == nil {
                let prefill = try Prefill(a.job.prompt, model: model, state: slot.state, chunk: configuration.prefillChunk,
                                          reuse: .exact)
                a.reused = prefill.reused
                a.prefill = prefill
            }
            let before = a.prefill!.done
            try a.prefill!.runChunk { a.choose($0) }
            metrics.countPrefilled(a.prefill!.done - before)
            if a.prefill!.isComplete {
                a.prefill = nil
                a.decoding = true
                metrics.countPrompt(total: a.job.tokens.count, reused: a.reused)
            }
        } catch {
            fail(slot, APIError.invalid("\(error)"))
        }
    }

    private func decodeStep(_ batch: [Slot]) {
        let started = ContinuousClock.now
        do {
            try model.forward(batch: batch.map { ($0.state, [$0.active!.next]) }, workspace: batchWorkspace) { i, logits in
                batch[i].active!.choose(logits)
            }
        } catch {
            for slot in batch { fail(slot, APIError(.internalServerError, "decode step failed: \(error)", type: "server_error")) }
            return
        }
        steps.add(1, ordering: .relaxed)
        metrics.observeDecodeStep(ContinuousClock.now - started, batch: batch.count)
    }

    private func fail(_ slot: Slot, _ error: APIError) {
        guard let a = slot.active else { return }
        slot.active = nil
        slot.state.cache.truncate(to: 0)
        a.job.continuation.yield(.failed(error))
        a.job.continuation.finish()
    }

    private func finish(_ slot: Slot, reason: StopReason) {
        guard let a = slot.active else { return }
        slot.active = nil
        if reason == .cancelled {
            let at = a.job.cancelledAtStep.load(ordering: .relaxed)
            let now = steps.load(ordering: .relaxed)
            let lag = at < 0 ? 0 : now - at
            metrics.countCancelled(stepsToFree: lag)
            log("job \(a.job.id): client gone, slot \(slot.index) freed after \(a.generated) tokens, \(lag) decode step(s) after the disconnect")
            a.job.continuation.finish()
            return
        }
        let summary = a.summary(reason: reason)
        metrics.countGenerated(summary.generatedTokens)
        a.job.continuation.yield(.finished(summary))
        a.job.continuation.finish()
    }
}

/// A KV-cache state and the job it serves.
final class Slot {
    let index: Int
    let state: Gemma3State
    var active: Active?

    init(index: Int, state: Gemma3State) {
        self.index = index
        self.state = state
    }
}

/// A job in a slot: sampler, detokenizer and stop-string matcher, as `Generator.run` keeps them, stepped one token
/// at a time by the scheduler.
final class Active {
    let job: Job
    let slotIndex: Int
    let stopTokens: Set<Int>
    var sampler: Sampler
    var detokenizer: StreamingDetokenizer
    var stops: StopStringMatcher
    let wantLogprobs: Int?
    let limit: Int
    /// The prompt's prefill, from its first chunk until the prompt is in the cache.
    var prefill: Prefill? = nil
    var reused = 0
    var decoding = false
    /// The sampled token not yet emitted (nor run through the model).
    var next = 0
    var nextLogprobs: (Float, [TokenLogprob])? = nil
    var generated = 0
    let metrics: Metrics
    var firstTokenAt: ContinuousClock.Instant? = nil
    var stopString: String? = nil

    init(job: Job, slot: Slot, scheduler: Scheduler) {
        self.job = job
        slotIndex = slot.index
        stopTokens = scheduler.stopTokens
        metrics = scheduler.metrics
        let p = job.parameters
        sampler = Sampler(p.sampling)
        if p.sampling.hasPenalties { sampler.accept(job.tokens) }
        detokenizer = StreamingDetokenizer(tokenizer: scheduler.tokenizer)
        stops = StopStringMatcher(p.stopStrings)
        wantLogprobs = p.topLogprobs.map { max(0, $0) }
        limit = max(1, min(p.maxTokens, slot.state.cache.capacity - job.tokens.count))
    }

    func choose(_ logits: UnsafeBufferPointer<Float>) {
        next = sampler.sample(logits)
        if let n = wantLogprobs { nextLogprobs = Sampler.logprobs(logits, chosen: next, top: n) }
    }

    /// Emits the pending token; returns why generation ends, or nil to go on (then `next` is run next step).
    func emitPending() -> StopReason? {
        generated += 1
        if firstTokenAt == nil {
            firstTokenAt = .now
            metrics.observeFirstToken(.now - job.enqueued)
        }
        if !job.parameters.ignoreStopTokens && stopTokens.contains(next) { return .stopToken }
        let token = TokenInfo(id: next, logprob: nextLogprobs?.0, topLogprobs: nextLogprobs?.1 ?? [])
        let piece = (try? detokenizer.append(TokenID(next))) ?? ""
        switch stops.append(piece) {
        case let .text(s):
            job.continuation.yield(.token(token, text: s))
        case let .stop(before, matched):
            job.continuation.yield(.token(token, text: before))
            stopString = matched
            return .stopString
        }
        return generated >= limit ? .length : nil
    }

    /// The closing summary; releases held-back text unless a stop string ended generation.
    func summary(reason: StopReason) -> JobSummary {
        var reason = reason
        var tail = ""
        if reason != .stopString {
            switch stops.append(detokenizer.finish()) {
            case let .text(s): tail = s + stops.flush()
            case let .stop(before, m):
                tail = before
                stopString = m
                reason = .stopString
            }
        }
        return JobSummary(text: tail, reason: reason, promptTokens: job.tokens.count, reusedPromptTokens: reused,
                          generatedTokens: generated, slot: slotIndex)
    }
}
