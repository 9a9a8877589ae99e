// `gemma bench`: prompt processing (ppN) and generation (tgN) speed, like llama-bench: median and spread over reps.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaKernels
import GemmaModel

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt processing (pp) and generation (tg) speed in tokens per second.",
        discussion: "ppN times one batch of N prompt tokens from an empty cache; tgN times N single-token decode steps. Token ids are fixed pseudo-random ids, as llama-bench uses random tokens.")

    @OptionGroup(title: "Model") var model: ModelRunOptions
    @Option(name: .short, help: "Prompt tokens for the pp test (0 to skip).") var p = 512
    @Option(name: .short, help: "Generated tokens for the tg test (0 to skip).") var n = 128
    @Option(name: .short, help: "Repetitions.") var r = 5
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: .hidden) var noHead = false
    @Option(name: [.short, .long], help: "Context depth: the tg test decodes after this many tokens already in the cache (prefilled, not timed), as llama-bench -d.")
    var depth = 0
    @Option(help: "Sequences decoded together in the tg test (continuous batching, as `gemma serve --parallel`); tok/s counts all of them.")
    var batch = 1
    @Flag(help: "Also measure this machine's memory read bandwidth with the same threads and give tg as a share of its roofline: bandwidth / bytes read per decode step (the weights as loaded, the tied embedding once as the head, and the KV cache at --depth); of the best reading after the runs, and per run of the mean reading right before and after it.")
    var roofline = false

    func validate() throws {
        guard p >= 0, n >= 0, p + n > 0 else { throw ValidationError("-p and -n must be >= 0 and not both 0") }
        guard r >= 1, batch >= 1 else { throw ValidationError("-r and --batch must be at least 1") }
        guard depth >= 0 else { throw ValidationError("--depth must be >= 0") }
    }

    func run() throws {
        let m = try model.load(progress: false).model
        let t = model.threads
        var seed: UInt64 = 42
        let vocab = m.config.vocabSize
        func nextID() -> Int {  // deterministic ids in the ordinary-text range (any id of a small test vocabulary)
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return vocab > 201_000 ? 1000 + Int((seed >> 33) % 200_000) : Int((seed >> 33) % UInt64(vocab))
        }
        let prompt = (0..<max(p, 1)).map { _ in nextID() }
        let context = (0..<depth).map { _ in nextID() }
        guard depth + n + 1 <= m.config.maxPositionEmbeddings else {
            throw ValidationError("--depth \(depth) + -n \(n) exceeds the model's context of \(m.config.maxPositionEmbeddings)")
        }
        var pp: [Double] = [], tg: [Double] = []
        // --roofline: the bandwidth read right before and right after each timed tg run (a VM's bandwidth moves with
        // its neighbours from second to second), so each run's share has its own limit.
        let probe = roofline && n > 0 ? ReadBandwidth.Probe(threads: t) : nil
        var around: [Double] = []
        func timedRun(_ rep: Int, _ body: () throws -> Double) rethrows {
            let before = rep >= 0 ? probe?.rate() ?? 0 : 0
            let rate = try body()
            guard rep >= 0 else { return }
            tg.append(rate)
            if let probe { around.append((before + probe.rate()) / 2) }
        }
        // One warm-up of each, not counted.
        for rep in -1..<r {
            if p > 0 {
                let s = m.makeState(capacity: p, maxBatch: min(p, 512))
                let start = DispatchTime.now().uptimeNanoseconds
                try m.forward(prompt, state: s, logits: .last)
                let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if rep >= 0 { pp.append(Double(p) / secs) }
            }
            if n > 0 && batch == 1 {
                let s = m.makeState(capacity: depth + n + 1, maxBatch: depth > 0 ? 512 : 1)
                if depth > 0 { try m.forward(context, state: s, logits: .none) }
                var step = [prompt[0]], token = prompt[0]  // the array is reused: the timed loop allocates nothing
                try timedRun(rep) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<n {
                        try m.forward(step, state: s, logits: noHead ? .none : .last) { _, logits in
                            token = Sampler.argmax(logits)
                        }
                        step[0] = token
                    }
                    return Double(n) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
            } else if n > 0 {
                // `batch` sequences, each started from its own token, stepped together as the server's scheduler does.
                let w = m.makeWorkspace(maxRows: batch, maxContext: depth + n + 1)
                let states = (0..<batch).map { _ in m.makeState(capacity: depth + n + 1, maxBatch: depth > 0 ? 512 : 1) }
                if depth > 0 { for s in states { try m.forward(context, state: s, logits: .none) } }
                var tokens = (0..<batch).map { prompt[$0 % prompt.count] }
                try timedRun(rep) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<n {
                        try m.forward(batch: (0..<batch).map { (states[$0], [tokens[$0]]) }, workspace: w) { i, logits in
                            tokens[i] = Sampler.argmax(logits)
                        }
                    }
                    return Double(n * batch) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
            }
        }
        func stats(_ xs: [Double]) -> (median: Double, min: Double, max: Double) {
            guard !xs.isEmpty else { return (0, 0, 0) }
            let s = xs.sorted()
            return (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2, s.first ?? 0, s.last ?? 0)
        }
        let ps = stats(pp), ts = stats(tg)
        // The roofline: every weight is read once per decode step (the embedding's rows as the output head), and the
        // cache's keys and values of the positions attended to (a local layer's window at most).
        // Two shares: of the best bandwidth read after all runs (best of 5 passes of 1 GB), and per run of the mean of
        // the readings around it (its median over the runs).
        var limit: (bandwidth: Double, bytes: Int, tokS: Double, paired: Double, around: Double)? = nil
        if roofline && n > 0 {
            let plan = MemoryPlan(checkpoint: m.checkpoint, context: max(1, depth + n / 2), kv: model.kv, widenQ5_0: m.options.widenQ5_0)
            let bytes = plan.weights.embedding + plan.weights.layers + (depth > 0 ? plan.kv.total : 0)
            let bandwidth = ReadBandwidth.measure(threads: t)
            let shares = zip(tg, around).map { rate, bw in rate / (bw / Double(bytes) * Double(batch)) }
            limit = (bandwidth, bytes, bandwidth / Double(bytes) * Double(batch), stats(shares).median, stats(around).median)
        }
        if json {
            var parts: [String] = []
            if p > 0 { parts.append("\"pp\":{\"n\":\(p),\"tok_s\":\(round2(ps.median)),\"min\":\(round2(ps.min)),\"max\":\(round2(ps.max)),\"reps\":\(r)}") }
            if n > 0 { parts.append("\"tg\":{\"n\":\(n),\"depth\":\(depth),\"tok_s\":\(round2(ts.median)),\"min\":\(round2(ts.min)),\"max\":\(round2(ts.max)),\"reps\":\(r)}") }
            parts.append("\"threads\":\(t)")
            if batch > 1 { parts.append("\"batch\":\(batch)") }
            if let l = limit {
                parts.append("\"roofline\":{\"read_gb_s\":\(round2(l.bandwidth / 1e9)),\"bytes_per_step\":\(l.bytes),\"tok_s\":\(round2(l.tokS)),\"tg_share\":\(round2(ts.median / l.tokS * 100) / 100),\"read_gb_s_around_runs\":\(round2(l.around / 1e9)),\"tg_share_per_run\":\(round2(l.paired * 100) / 100)}")
            }
            print("{" + parts.joined(separator: ",") + "}")
        } else {
            print("test        t/s (median)   min .. max      threads \(t), \(r) reps")
            if p > 0 { print(String(format: "pp%-8d %10.2f   %8.2f .. %-8.2f", p, ps.median, ps.min, ps.max)) }
            if n > 0 { print(String(format: "%-10@ %10.2f   %8.2f .. %-8.2f", depth > 0 ? "tg\(n) @ d\(depth)" : "tg\(n)", ts.median, ts.min, ts.max)) }
            if let l = limit {
                print(String(format: "roofline   %10.2f   (%.1f GB/s read with %d threads / %.1f MB per step%@): tg is %.0f%% of it",
                             l.tokS, l.bandwidth / 1e9, t, Double(l.bytes) / 1e6, batch > 1 ? " x \(batch) sequences" : "", 100 * ts.median / l.tokS))
                print(String(format: "per run                 (%.1f GB/s, median of the mean reads before and after each run): tg is %.0f%% of it",
                             l.around / 1e9, 100 * l.paired))
            }
        }
    }

    private func round2(_ x: Double) -> Double { (x * 100).rounded() / 100 }
}
