// Continuous batching (after llama.cpp's server and vLLM's scheduler, reduced to what a CPU needs): one thread owns
// the model and N slots, each slot a KV-cache state. Every iteration it
//   1. drops cancelled jobs and admits waiting ones into free slots, choosing the free slot whose cache keeps the
//      longest prefix of the prompt under the exact-reuse rule (`KVCache.exactReusablePrefix`: only what a cold
//      prefill would have computed the same way, so a request's answer never depends on what the server did before,
//      whatever `prefillChunk` is);
//   2. prefills each newly admitted prompt on its own slot state (`Prefill`), one chunk per iteration, so running
//      sequences keep decoding while a long prompt goes in (an image's soft tokens, one bidirectional span, are one
//      forward step: slot states take steps of max(64, soft tokens per image) rows);
//   3. lets each generating slot's `GenerationCursor` emit its pending token, then runs ONE batched decode step
//      (`BatchDecoder`) for the slots that go on, each weight matrix read once for all of them and each sequence's
//      arithmetic that of stepping it alone.
// The scheduler only schedules: sampling, stop conditions and text are the cursor's, as in `Generator.run`. Jobs join
// and leave between steps. HTTP handlers only parse, submit and stream; they never touch the model.
import Dispatch
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
    /// Speculative decoding for every request it applies to (greedy or top-k sampling without bias, penalties,
    /// grammar or log-probabilities): up to this many proposed tokens per slot and step (0: off), verified inside
    /// the batched step (`Speculator`).
    public var draftMax: Int = 0
    /// The proposer: this draft model, else prompt lookup.
    public var draftModel: DraftModel? = nil

    public init(parallel: Int = 4, contextLength: Int = 4096, queueLimit: Int = 64, prefillChunk: Int = 256,
                draftMax: Int = 0, draftModel: DraftModel? = nil) {
        self.parallel = parallel
        self.contextLength = contextLength
        self.queueLimit = queueLimit
        self.prefillChunk = prefillChunk
        self.draftMax = draftMax
        self.draftModel = draftModel
    }
}

/// Runs jobs on one model thread with continuous batching.
public final class Scheduler: @unchecked Sendable {
    public let languageModel: LanguageModel
    public let model: Gemma3Model
    public let tokenizer: Tokenizer
    public let configuration: SchedulerConfiguration
    /// Rows of a slot's forward step: the longest bidirectional span (an image's soft tokens) a prompt may hold.
    public let stepRows: Int
    let stopTokens: Set<Int>
    let metrics: Metrics
    let log: @Sendable (String) -> Void

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var waiting: [Job] = []
    /// Slots serving a job (the admission rule's state; the metrics gauge only reports it).
    private var busy = 0
    private var stopping = false
    private var nextJobID = 1
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    /// Decode steps run so far (read by `Job.cancel` from other threads).
    let steps = Atomic<Int>(0)

    // Owned by the model thread.
    private var slots: [Slot] = []
    private let decoder: BatchDecoder

    public init(model: LanguageModel, configuration: SchedulerConfiguration, metrics: Metrics,
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        var c = configuration
        c.parallel = max(1, c.parallel)
        c.contextLength = max(2, min(c.contextLength, model.model.config.maxPositionEmbeddings))
        c.queueLimit = max(0, c.queueLimit)
        c.prefillChunk = max(1, c.prefillChunk)
        c.draftMax = min(max(0, c.draftMax), 6)
        languageModel = model
        self.model = model.model
        tokenizer = model.tokenizer
        self.configuration = c
        self.metrics = metrics
        self.log = log
        stopTokens = model.generator.stopTokens
        // As LanguageModel.makeState(capacity:for:): every view of an image is one span of mm_tokens_per_image rows.
        let rows = max(64, model.vision?.config.mmTokensPerImage ?? 0)
        stepRows = rows
        slots = (0..<c.parallel).map { Slot(index: $0, state: model.model.makeState(capacity: c.contextLength, maxBatch: rows)) }
        decoder = BatchDecoder(model: model.model, maxSequences: c.parallel, maxContext: c.contextLength,
                               rowsPerSequence: 1 + c.draftMax)
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

    /// Queues a generation. The stream carries the generation's events and ends after `.finished`; it throws an
    /// `APIError` when the job fails, and just ends when the job is cancelled. Dropping it (or cancelling the task
    /// that reads it) cancels the job.
    ///
    /// - Throws: `APIError.busy` when the queue is full, `.shuttingDown` after `shutdown()`, a 400 for a prompt whose
    ///   bidirectional span does not fit one forward step of a slot.
    public func submit(prompt: Prompt, parameters: GenerationParameters, scorePrompt: Int? = nil, embed: Bool = false) throws(APIError)
        -> (Job, AsyncThrowingStream<GenerationEvent, any Error>) {
        let (job, streams) = try submit(prompt: prompt, parameters: parameters, choices: 1, scorePrompt: scorePrompt, embed: embed)
        return (job, streams[0])
    }

    /// `submit` with `choices` continuations of one prefill (OpenAI's `n`), one stream each, generated in order.
    public func submit(prompt: Prompt, parameters: GenerationParameters, choices: Int, scorePrompt: Int? = nil,
                       embed: Bool = false) throws(APIError) -> (Job, [AsyncThrowingStream<GenerationEvent, any Error>]) {
        if let long = prompt.bidirectionalSpans.first(where: { $0.count > stepRows }) {
            throw .invalid("The prompt holds a span of \(long.count) embedding rows, more than a forward step of \(stepRows) rows takes.")
        }
        let pairs = (0..<max(1, choices)).map { _ in AsyncThrowingStream<GenerationEvent, any Error>.makeStream() }
        condition.lock()
        defer { condition.unlock() }
        if stopping { throw .shuttingDown }
        // Jobs that a free slot will take at once do not count against the queue.
        let free = configuration.parallel - busy
        if waiting.count >= configuration.queueLimit + max(0, free) { throw .busy }
        let job = Job(id: nextJobID, prompt: prompt, parameters: parameters, scorePrompt: scorePrompt, embed: embed,
                      continuations: pairs.map(\.1)) { [weak self] job in
            self?.cancelled(job)
        }
        nextJobID += 1
        // A stream dropped by its reader cancels the job; one that ended normally does not (later choices go on).
        for (_, c) in pairs { c.onTermination = { [weak job] t in if case .cancelled = t { job?.cancel() } } }
        waiting.append(job)
        metrics.setQueued(waiting.count)
        condition.signal()
        return (job, pairs.map(\.0))
    }

    /// `submit(prompt:parameters:)` for token ids.
    public func submit(tokens: [Int], parameters: GenerationParameters) throws(APIError)
        -> (Job, AsyncThrowingStream<GenerationEvent, any Error>) {
        try submit(prompt: Prompt(tokens: tokens), parameters: parameters)
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
            while !stopping && waiting.isEmpty && slots.allSatisfy({ $0.job == nil }) {
                condition.wait()
            }
            if stopping {
                let left = waiting
                waiting.removeAll()
                metrics.setQueued(0)
                condition.unlock()
                for job in left { job.finishAll(throwing: APIError.shuttingDown) }
                for slot in slots where slot.job != nil { finish(slot, reason: .cancelled) }
                return
            }
            let dropped = waiting.filter(\.isCancelled)
            waiting.removeAll(where: \.isCancelled)
            var admitted: [Slot] = []
            while !waiting.isEmpty, let slot = bestFreeSlot(for: waiting[0]) {
                slot.job = waiting.removeFirst()
                admitted.append(slot)
            }
            busy += admitted.count
            metrics.setQueued(waiting.count)
            condition.unlock()
            for job in dropped {
                metrics.countCancelled()
                job.finishAll()
            }
            for slot in admitted { begin(slot) }
            publishBusy()

            // 2. Cancellations, then one prefill chunk per prefilling slot.
            for slot in slots where slot.job?.isCancelled == true { finish(slot, reason: .cancelled) }
            for slot in slots where slot.prefill != nil { prefillChunk(slot) }

            // 3. Emit each generating slot's pending token; those that go on step together.
            var batch: [Slot] = []
            for slot in slots {
                guard let job = slot.job, slot.isDecoding else { continue }
                if slot.cursor.generated == 0 { metrics.observeFirstToken(.now - job.enqueued) }
                if let reason = slot.cursor.emit({ job.continuation.yield($0) }) {
                    finish(slot, reason: reason)
                } else {
                    batch.append(slot)
                }
            }
            if !batch.isEmpty { decodeStep(batch) }
            publishBusy()
        }
    }

    /// The free slot whose cache keeps the longest prefix of the job's prompt under the exact-reuse rule (ties: the
    /// lowest index).
    private func bestFreeSlot(for job: Job) -> Slot? {
        var best: (slot: Slot, reuse: Int)? = nil
        for slot in slots where slot.job == nil {
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

    /// Publishes the busy count (counted on the model thread, the one place that frees slots) to the admission rule
    /// and to the gauge.
    private func publishBusy() {
        let n = slots.reduce(0) { $0 + ($1.job == nil ? 0 : 1) }
        condition.lock()
        busy = n
        condition.unlock()
        metrics.setBusy(n)
        // KV-cache use: the positions held by running requests over every slot's capacity (an idle slot's cached
        // prefix is reusable, not in use).
        let used = slots.reduce(0) { $0 + ($1.job == nil ? 0 : $1.state.cache.count) }
        let capacity = slots.reduce(0) { $0 + $1.state.cache.capacity }
        metrics.setKVUsage(capacity == 0 ? 0 : Double(used) / Double(capacity))
    }

    /// Starts an admitted job: its cursor, and its prefill after the prefix the slot's cache keeps.
    private func begin(_ slot: Slot) {
        guard let job = slot.job else { return }
        metrics.observeQueueWait(ContinuousClock.now - job.enqueued)
        slot.cursor = GenerationCursor(prompt: job.prompt.tokenIDs, parameters: job.parameters, stopTokens: stopTokens,
                                       tokenizer: tokenizer, room: slot.state.cache.capacity - job.prompt.count)
        slot.speculator = speculator(for: job, parameters: job.parameters, slot: slot)
        slot.prefillStarted = DispatchTime.now().uptimeNanoseconds
        if job.embed {
            // Embeddings: one cold pass over the prompt, the hidden states mean-pooled in f64 and normalized; the
            // positions it wrote are dropped again (no prefill step recorded them, so they are never reused anyway).
            slot.state.cache.truncate(to: 0)
            var sum = [Double](repeating: 0, count: model.config.hiddenSize)
            do {
                try model.forwardHidden(job.prompt.tokenIDs, state: slot.state) { _, h in
                    for i in 0..<h.count { sum[i] += Double(h[i]) }
                }
            } catch {
                fail(slot, APIError.invalid("\(error)"))
                return
            }
            slot.state.cache.truncate(to: 0)
            let n = Double(max(job.prompt.count, 1))
            var norm = 0.0
            for i in sum.indices { sum[i] /= n; norm += sum[i] * sum[i] }
            norm = norm.squareRoot()
            job.embedding.withLock { e in e = sum.map { Float(norm > 0 ? $0 / norm : 0) } }
            metrics.countPrefilled(job.prompt.count)
            slot.decodeStarted = DispatchTime.now().uptimeNanoseconds
            metrics.countPrompt(total: job.prompt.count, reused: 0)
            slot.reused = 0
            finish(slot, reason: .length)
            return
        }
        // Scoring the prompt needs the logits of every position: nothing is reused.
        if job.scorePrompt != nil { slot.state.cache.truncate(to: 0) }
        do {
            let prefill = try Prefill(job.prompt, model: model, state: slot.state, chunk: configuration.prefillChunk, reuse: .exact,
                                      snapshot: job.choices > 1)
            slot.reused = prefill.reused
            slot.prefill = prefill
        } catch {
            fail(slot, APIError.invalid("\(error)"))
        }
    }

    /// The slot's speculative decoding for a job (nil when off or when it does not apply to the request).
    private func speculator(for job: Job, parameters: GenerationParameters, slot: Slot) -> Speculator? {
        guard configuration.draftMax > 0, !job.embed, job.scorePrompt == nil else { return nil }
        var p = parameters
        p.draftMax = configuration.draftMax
        p.draftModel = configuration.draftModel
        return Speculator(parameters: p, prompt: job.prompt, capacity: slot.state.cache.capacity)
    }

    private func prefillChunk(_ slot: Slot) {
        guard let job = slot.job, let before = slot.prefill?.done else { return }
        do {
            if let top = job.scorePrompt {
                let ids = job.prompt.tokenIDs
                var scores: [GeneratedToken] = []
                try slot.prefill!.runChunk(scoring: { position, logits in
                    guard position + 1 < ids.count else { return }
                    let (lp, alts) = Sampler.logprobs(logits, chosen: ids[position + 1], top: top)
                    scores.append(GeneratedToken(id: ids[position + 1], logprob: lp, topLogprobs: alts))
                }) { slot.cursor.accept($0) }
                job.promptScores.withLock { $0 += scores }
            } else if job.choices > 1 {
                try slot.prefill!.runChunk { logits in
                    slot.cursor.accept(logits)
                    slot.promptLogits = Array(logits)
                }
            } else {
                try slot.prefill!.runChunk { slot.cursor.accept($0) }
            }
        } catch {
            fail(slot, APIError.invalid("\(error)"))
            return
        }
        let done = slot.prefill!.done
        metrics.countPrefilled(done - before)
        guard slot.prefill!.isComplete else { return }
        slot.prefill = nil
        slot.decodeStarted = DispatchTime.now().uptimeNanoseconds
        metrics.countPrompt(total: job.prompt.count, reused: slot.reused)
        if slot.cursor.limit == 0 { finish(slot, reason: .length) }
    }

    private func decodeStep(_ batch: [Slot]) {
        let started = ContinuousClock.now
        // With speculative decoding, each slot runs its pending token and the tokens proposed after it (at most
        // draftMax), checked row by row as `Generator.run` does; taken proposals are emitted during the step. A step
        // in which no slot proposes anything is a plain decode step.
        var inputs: [(state: Gemma3State, tokens: [Int])] = []
        var speculating = false
        if batch.contains(where: { $0.speculator != nil }) {
            inputs.reserveCapacity(batch.count)
            for slot in batch {
                slot.kept = 0
                slot.matching = true
                slot.endedInStep = nil
                let proposals = slot.speculator?.propose(for: slot.cursor, cache: slot.state.cache) ?? []
                speculating = speculating || !proposals.isEmpty
                inputs.append((slot.state, [slot.cursor.next] + proposals))
            }
        }
        do {
            if speculating {
                try decoder.step(rows: inputs) { i, row, logits in
                    let slot = batch[i]
                    guard inputs[i].tokens.count > 1 else { slot.cursor.accept(logits); return }
                    guard slot.matching, slot.endedInStep == nil, let job = slot.job else { return }
                    slot.kept = row + 1
                    if slot.speculator!.verify(row: row, logits, cursor: &slot.cursor) {
                        slot.endedInStep = slot.cursor.emit { job.continuation.yield($0) }
                    } else {
                        slot.matching = false
                    }
                }
            } else {
                try decoder.step(batch.map { ($0.state, $0.cursor.next) }) { i, logits in batch[i].cursor.accept(logits) }
            }
        } catch {
            for slot in batch { fail(slot, APIError(.internalServerError, "decode step failed: \(error)", type: "server_error")) }
            return
        }
        steps.add(1, ordering: .relaxed)
        metrics.observeDecodeStep(ContinuousClock.now - started, batch: batch.count)
        guard speculating else { return }
        for (slot, input) in zip(batch, inputs) where input.tokens.count > 1 {
            let step = slot.speculator!.finishStep(kept: slot.kept, cache: slot.state.cache)
            metrics.countDraft(proposed: step.proposed, accepted: step.accepted)
            if let reason = slot.endedInStep { finish(slot, reason: reason) }
        }
    }

    private func fail(_ slot: Slot, _ error: APIError) {
        guard let job = slot.job else { return }
        slot.release()
        slot.state.cache.truncate(to: 0)
        job.finishAll(throwing: error)
    }

    private func finish(_ slot: Slot, reason: StopReason) {
        guard let job = slot.job else { return }
        if reason == .cancelled {
            let at = job.cancelledAtStep.load(ordering: .relaxed)
            let now = steps.load(ordering: .relaxed)
            let lag = at < 0 ? 0 : now - at
            metrics.countCancelled(stepsToFree: lag)
            log("job \(job.id): client gone, slot \(slot.index) freed after \(slot.cursor.generated) tokens, \(lag) decode step(s) after the disconnect")
            slot.release()
            job.finishAll()
            return
        }
        let final = slot.cursor.finish(reason) { job.continuation.yield($0) }
        let end = DispatchTime.now().uptimeNanoseconds
        let decodeStarted = slot.decodeStarted ?? end
        var stats = slot.cursor.stats(final, promptTokens: job.prompt.count, reusedPromptTokens: slot.reused,
                                      promptNanoseconds: decodeStarted - slot.prefillStarted,
                                      generateNanoseconds: end - decodeStarted)
        stats.draftProposed = slot.speculator?.proposed ?? 0
        stats.draftAccepted = slot.speculator?.accepted ?? 0
        metrics.countGenerated(stats.generatedTokens)
        if job.parameters.constraint != nil { metrics.countConstrained(stats.generatedTokens, nanoseconds: stats.constraintNanoseconds) }
        job.continuation.yield(.finished(stats))
        job.continuation.finish()
        // The next choice: the cache back to the prompt (its rings from the snapshot taken when the prompt was in),
        // a cursor with seed + choice, its first token from the prompt's last logits.
        if !job.isCancelled, !slot.promptLogits.isEmpty, job.nextChoice(), slot.state.cache.truncate(to: job.prompt.count) {
            var p = job.parameters
            p.sampling.seed &+= UInt64(job.choice)
            slot.cursor = GenerationCursor(prompt: job.prompt.tokenIDs, parameters: p, stopTokens: stopTokens, tokenizer: tokenizer,
                                           room: slot.state.cache.capacity - job.prompt.count)
            slot.speculator?.close()
            slot.speculator = speculator(for: job, parameters: p, slot: slot)
            slot.promptLogits.withUnsafeBufferPointer { slot.cursor.accept($0) }
            slot.prefillStarted = DispatchTime.now().uptimeNanoseconds
            slot.decodeStarted = slot.prefillStarted
            if slot.cursor.limit == 0 { finish(slot, reason: .length) }
            return
        }
        slot.promptLogits = []
        slot.release()
        job.finishAll()
    }
}

/// A KV-cache state and the job it serves: the job's prefill until its prompt is in the cache, then its cursor.
final class Slot {
    let index: Int
    let state: Gemma3State
    var job: Job?
    var prefill: Prefill?
    var cursor: GenerationCursor
    /// Prompt positions kept from the cache.
    var reused = 0
    var prefillStarted: UInt64 = 0
    var decodeStarted: UInt64? = nil
    /// The prompt's last logits, kept for the job's later choices (n > 1).
    var promptLogits: [Float] = []
    /// Speculative decoding of the job's current choice, and the state of its verification in a step: rows kept,
    /// whether the rows so far matched, and the stop reason if a taken token ended it.
    var speculator: Speculator?
    var kept = 0
    var matching = true
    var endedInStep: StopReason? = nil

    init(index: Int, state: Gemma3State) {
        self.index = index
        self.state = state
        cursor = GenerationCursor(prompt: [], parameters: GenerationParameters(maxTokens: 0), stopTokens: [], tokenizer: nil, room: 0)
    }

    /// True while the job's tokens are being generated (its prompt is in the cache).
    var isDecoding: Bool { job != nil && prefill == nil }

    /// Frees the slot (its cache stays, for prefix reuse).
    func release() {
        job = nil
        prefill = nil
        promptLogits = []
        reused = 0
        decodeStarted = nil
        speculator?.close()
        speculator = nil
    }
}
