// Server metrics in the Prometheus text format (version 0.0.4), written by hand: counters, gauges and histograms
// under one lock, rendered on GET /metrics. Names follow Prometheus conventions (`_total`, `_seconds`).
import Synchronization

/// A cumulative histogram over fixed upper bounds.
struct Histogram {
    let bounds: [Double]
    var counts: [Int]
    var sum = 0.0
    var count = 0

    init(_ bounds: [Double]) {
        self.bounds = bounds
        counts = [Int](repeating: 0, count: bounds.count)
    }

    mutating func observe(_ x: Double) {
        for (i, b) in bounds.enumerated() where x <= b { counts[i] += 1 }
        sum += x
        count += 1
    }

    func render(_ name: String, labels: String = "", into out: inout String) {
        let sep = labels.isEmpty ? "" : ","
        for (b, c) in zip(bounds, counts) { out += "\(name)_bucket{\(labels)\(sep)le=\"\(b)\"} \(c)\n" }
        out += "\(name)_bucket{\(labels)\(sep)le=\"+Inf\"} \(count)\n"
        let l = labels.isEmpty ? "" : "{\(labels)}"
        out += "\(name)_sum\(l) \(sum)\n\(name)_count\(l) \(count)\n"
    }
}

/// Everything the server counts. Thread-safe; cheap enough to update on every token.
public final class Metrics: Sendable {
    struct State {
        var requests: [String: Int] = [:]   // "path|status" -> count
        var durations: [String: Histogram] = [:]  // endpoint -> seconds
        var firstToken = Histogram([0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
        var queueWait = Histogram([0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30])
        var decodeStep = Histogram([0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1])
        var imageEncode = Histogram([0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120])
        var images: [ImageOutcome: Int] = [:]
        var promptTokens = 0, reusedTokens = 0, prefilledTokens = 0, generatedTokens = 0
        var constrainedTokens = 0, constraintSeconds = 0.0
        var draftProposed = 0, draftAccepted = 0
        var decodeSteps = 0, decodeRows = 0
        var cancelled = 0, lastCancelSteps = 0, maxCancelSteps = 0
        var slotsTotal = 0, slotsBusy = 0, queued = 0
        var kvUsage = 0.0
        var ready = false
    }

    private let state = Mutex(State())

    public init() {}

    static let durationBounds: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

    func countRequest(path: String, status: Int) {
        let known = ["/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/tokenize", "/detokenize",
                     "/api/version", "/api/tags", "/api/show", "/api/generate", "/api/chat", "/v1/embeddings", "/", "/index.html"]
        let p = known.contains(path) ? path : "other"
        state.withLock { $0.requests["\(p)|\(status)", default: 0] += 1 }
    }

    func observeRequest(endpoint: String, _ d: Duration) {
        state.withLock { $0.durations[endpoint, default: Histogram(Self.durationBounds)].observe(d.seconds) }
    }

    func observeFirstToken(_ d: Duration) { state.withLock { $0.firstToken.observe(d.seconds) } }
    func observeQueueWait(_ d: Duration) { state.withLock { $0.queueWait.observe(d.seconds) } }
    func observeDecodeStep(_ d: Duration, batch: Int) {
        state.withLock {
            $0.decodeStep.observe(d.seconds)
            $0.decodeSteps += 1
            $0.decodeRows += batch
        }
    }
    func countPrompt(total: Int, reused: Int) {
        state.withLock {
            $0.promptTokens += total
            $0.reusedTokens += reused
        }
    }
    /// What became of an image part.
    enum ImageOutcome: String, CaseIterable { case encoded, cached, failed }
    func countImage(_ outcome: ImageOutcome, seconds: Double? = nil) {
        state.withLock {
            $0.images[outcome, default: 0] += 1
            if let seconds { $0.imageEncode.observe(seconds) }
        }
    }
    func countPrefilled(_ n: Int) { state.withLock { $0.prefilledTokens += n } }
    func countDraft(proposed: Int, accepted: Int) {
        guard proposed > 0 else { return }
        state.withLock { $0.draftProposed += proposed; $0.draftAccepted += accepted }
    }
    func countGenerated(_ n: Int) { state.withLock { $0.generatedTokens += n } }
    func countConstrained(_ n: Int, nanoseconds: UInt64) {
        state.withLock {
            $0.constrainedTokens += n
            $0.constraintSeconds += Double(nanoseconds) / 1e9
        }
    }
    func countCancelled(stepsToFree: Int? = nil) {
        state.withLock {
            $0.cancelled += 1
            if let s = stepsToFree {
                $0.lastCancelSteps = s
                $0.maxCancelSteps = max($0.maxCancelSteps, s)
            }
        }
    }
    func setSlots(total: Int, busy: Int, queued: Int) {
        state.withLock {
            $0.slotsTotal = total
            $0.slotsBusy = busy
            $0.queued = queued
        }
    }
    func setBusy(_ n: Int) { state.withLock { $0.slotsBusy = n } }
    func setKVUsage(_ x: Double) { state.withLock { $0.kvUsage = x } }
    func setQueued(_ n: Int) { state.withLock { $0.queued = n } }
    func setReady(_ r: Bool) { state.withLock { $0.ready = r } }

    /// The Prometheus exposition text.
    public func render() -> String {
        let s = state.withLock { $0 }
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: some Numeric & CustomStringConvertible) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        out += "# HELP gemma_requests_total HTTP requests answered, by path and status.\n# TYPE gemma_requests_total counter\n"
        for (key, n) in s.requests.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|", maxSplits: 1)
            out += "gemma_requests_total{path=\"\(parts[0])\",status=\"\(parts.count > 1 ? parts[1] : "")\"} \(n)\n"
        }
        out += "# HELP gemma_request_duration_seconds Time from request to the last byte of the answer, by endpoint.\n# TYPE gemma_request_duration_seconds histogram\n"
        for (endpoint, h) in s.durations.sorted(by: { $0.key < $1.key }) {
            h.render("gemma_request_duration_seconds", labels: "endpoint=\"\(endpoint)\"", into: &out)
        }
        out += "# HELP gemma_time_to_first_token_seconds Time from submission to the first generated token.\n# TYPE gemma_time_to_first_token_seconds histogram\n"
        s.firstToken.render("gemma_time_to_first_token_seconds", into: &out)
        out += "# HELP gemma_queue_wait_seconds Time a request waited for a slot.\n# TYPE gemma_queue_wait_seconds histogram\n"
        s.queueWait.render("gemma_queue_wait_seconds", into: &out)
        out += "# HELP gemma_decode_step_seconds Duration of one batched decode step.\n# TYPE gemma_decode_step_seconds histogram\n"
        s.decodeStep.render("gemma_decode_step_seconds", into: &out)
        out += "# HELP gemma_images_total Image parts of chat requests: encoded, taken from the cache of encoded images, or refused.\n# TYPE gemma_images_total counter\n"
        for o in ImageOutcome.allCases { out += "gemma_images_total{outcome=\"\(o.rawValue)\"} \(s.images[o] ?? 0)\n" }
        out += "# HELP gemma_image_encode_seconds Time to decode, preprocess and encode one image.\n# TYPE gemma_image_encode_seconds histogram\n"
        s.imageEncode.render("gemma_image_encode_seconds", into: &out)
        metric("gemma_prompt_tokens_total", "counter", "Prompt tokens of requests that started generating.", s.promptTokens)
        metric("gemma_prompt_tokens_reused_total", "counter", "Prompt tokens whose KV entries were reused from a slot's cache.", s.reusedTokens)
        metric("gemma_prompt_tokens_prefilled_total", "counter", "Prompt tokens run through the model.", s.prefilledTokens)
        metric("gemma_generated_tokens_total", "counter", "Tokens generated by finished requests.", s.generatedTokens)
        metric("gemma_constrained_tokens_total", "counter", "Tokens generated under a grammar or JSON schema (structured output).", s.constrainedTokens)
        metric("gemma_constraint_seconds_total", "counter", "Time spent on grammar masks and checks for those tokens.", s.constraintSeconds)
        metric("gemma_draft_tokens_proposed_total", "counter", "Tokens proposed by speculative decoding (--draft).", s.draftProposed)
        metric("gemma_draft_tokens_accepted_total", "counter", "Proposed tokens the model accepted (accepted / proposed = acceptance rate).", s.draftAccepted)
        metric("gemma_decode_steps_total", "counter", "Batched decode steps.", s.decodeSteps)
        metric("gemma_decode_rows_total", "counter", "Sequences stepped, summed over decode steps (rows / steps = mean batch).", s.decodeRows)
        metric("gemma_requests_cancelled_total", "counter", "Requests whose client went away before they finished.", s.cancelled)
        metric("gemma_cancel_to_free_steps_last", "gauge", "Decode steps between the last disconnect and its slot being freed.", s.lastCancelSteps)
        metric("gemma_cancel_to_free_steps_max", "gauge", "Most decode steps between a disconnect and its slot being freed.", s.maxCancelSteps)
        metric("gemma_queue_depth", "gauge", "Requests waiting for a slot.", s.queued)
        metric("gemma_slots_busy", "gauge", "Slots serving a request.", s.slotsBusy)
        metric("gemma_slots_total", "gauge", "Slots (--parallel).", s.slotsTotal)
        metric("gemma_model_loaded", "gauge", "1 once the model is loaded.", s.ready ? 1 : 0)
        // The three gauges of the Gateway API Inference Extension's model server protocol (TotalQueuedRequests,
        // TotalRunningRequests, KVCacheUtilization), under the names routers are pointed at.
        metric("gemma_requests_waiting", "gauge", "Requests queued for a slot (TotalQueuedRequests).", s.queued)
        metric("gemma_requests_running", "gauge", "Requests holding a slot, prefilling or decoding (TotalRunningRequests).", s.slotsBusy)
        metric("gemma_kv_cache_usage_ratio", "gauge", "KV-cache positions held by running requests over all slots' capacity, 0 to 1 (KVCacheUtilization).", s.kvUsage)
        return out
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}
