// `gemma finetune`: full or LoRA fine-tuning of a Gemma 3 text model on JSONL chat data (GemmaTrain), the result
// written in the input's format (with LoRA: the merged model, and with --adapter-out the adapter as PEFT files and,
// for a GGUF model, as a llama.cpp adapter GGUF). The loss is on the model's replies only; progress shows loss,
// tokens/s and the time left.
import ArgumentParser
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaTrain

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune a model on chat examples (full or LoRA, in f32, AdamW).",
        discussion: """
            --data (and --eval) are JSON Lines: {"messages": [{"role": "user", "content": ...}, {"role": "assistant", \
            "content": ...}]} or {"prompt": ..., "completion": ...}. Each is rendered in Gemma 3's chat template as \
            `gemma run` sends it, with the loss on the model's replies and their <end_of_turn> only. Lines that \
            cannot be used are listed by number and skipped (--strict refuses the file instead). The result is \
            written in the input's format: OUT is a .gguf file for a GGUF model (trained tensors f32; `gemma \
            quantize` makes it smaller), else a Hugging Face folder; with --lora-rank the adapters are merged into \
            it, and --adapter-out also writes them as a PEFT adapter folder (for a GGUF model with adapter.gguf, \
            a LoRA adapter llama.cpp applies to the base with --lora). Training runs in f32 on every core (the \
            270M with LoRA: about 3 s per step of 8 examples of 75 tokens on 2 cores). --eval-only prints a model's \
            loss on --eval (or --data) without training; --dump-tokens writes the examples as token ids.
            """)

    @OptionGroup(title: "Model") var model: ModelOption
    @Option(help: "Training examples (JSONL).") var data: String
    @Option(help: "Held-out examples (JSONL): their loss is printed before training, every --eval-every steps and at the end.")
    var eval: String?
    @Option(help: "Where to write the fine-tuned model (a .gguf file for a GGUF model, else a folder).") var out: String?
    @Flag(help: "Train every weight.") var full = false
    @Option(name: .customLong("lora-rank"), help: "Train LoRA adapters of this rank instead (the base frozen).") var loraRank: Int?
    @Option(name: .customLong("lora-alpha"), help: "LoRA alpha (default: 2 x rank); the adapters' product is scaled by alpha / rank.")
    var loraAlpha: Float?
    @Option(name: .customLong("lora-targets"), help: "Projections adapted, comma-separated: q, k, v, o, gate, up, down.")
    var loraTargets = "q,k,v,o,gate,up,down"
    @Option(name: .customLong("lora-dropout"), help: "LoRA dropout: the probability of dropping each input of an adapter while training (PEFT's lora_dropout; default 0).")
    var loraDropout: Float = 0
    @Flag(help: "With --lora-rank: keep the frozen base's projections in their stored format (QLoRA), dequantized as each product needs them: less memory, slower steps.")
    var qlora = false
    @Flag(help: "Keep only each layer's input through the forward pass and recompute the rest in the backward pass: activation memory about 20 times smaller, about a third more arithmetic (long examples, large batches).")
    var recompute = false
    @Option(name: .customLong("adapter-out"), help: "With --lora-rank: also write the adapters as a PEFT folder (adapter_model.safetensors, adapter_config.json), and for a GGUF model as DIR/adapter.gguf for llama.cpp's --lora.")
    var adapterOut: String?
    @Option(help: "Passes over the data (default 1 unless --steps is given).") var epochs: Int?
    @Option(help: "Optimizer steps (instead of --epochs).") var steps: Int?
    @Option(help: "Examples computed together (a micro-batch with --accumulate).") var batch = 8
    @Option(help: "Gradient accumulation: each optimizer step sums the gradients of this many batches, computed one after another (the memory of one batch).")
    var accumulate = 1
    @Option(help: "Peak learning rate.") var lr: Float = 1e-5
    @Option(help: "Warm-up steps (linear), then cosine decay to a tenth of the peak.") var warmup: Int?
    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay (on the weight matrices, or with LoRA on the adapters).") var weightDecay: Float = 0
    @Option(name: .customLong("max-grad-norm"), help: "Clip the gradient to this global norm (0: off).") var maxGradNorm: Float = 1
    @Option(name: .customLong("max-tokens"), help: "Longer examples are left out (reported).") var maxTokens = 1024
    @Option(name: .customLong("eval-every"), help: "Steps between evaluations of --eval.") var evalEvery = 50
    @Flag(name: .customLong("eval-only"), help: "Print the model's loss on --eval (else on --data) and exit: no training, no --out.")
    var evalOnly = false
    @Option(name: .customLong("dump-tokens"), help: "Write the --data examples as the trainer sees them (JSON: token ids, and per position the id learned or -1) to this file and exit.")
    var dumpTokens: String?
    @Option(help: "Quantization-aware training: the forward pass sees the weights as this format stores them (int4-block, int4-channel, sfp8); the result is still written in f32, for `gemma quantize --to` the same format.")
    var qat: String?
    @Option(name: .customLong("distill-from"), help: ArgumentHelp("Distillation (the report's): learn a teacher model's distribution on the replies (256 sampled ids per token, weighted by its probabilities, renormalized) instead of their tokens; the teacher (a path or a cached ORG/REPO) must have the same vocabulary.", valueName: "TEACHER"))
    var distillFrom: String?
    @Option(name: .customLong("distill-samples"), help: "Ids sampled from the teacher per token.") var distillSamples = 256
    @Option(help: "Seed of the order of the examples (and of the teacher's samples).") var seed: UInt64 = 0
    @Option(name: .customLong("save-every"), help: "Steps between saves of the training state to OUT.state (0: never); a run stopped or killed resumes from the last with --resume.")
    var saveEvery = 50
    @Flag(help: "Continue from OUT.state, written by an earlier run with the same options and data.") var resume = false
    @Flag(help: "Refuse the data when a line cannot be used (default: skip it and say which).") var strict = false
    @Option(name: [.customShort("t"), .customLong("threads")], help: "Threads (default: all cores).") var threads: Int?

    func validate() throws {
        let training = !evalOnly && dumpTokens == nil
        if training { guard full != (loraRank != nil) else { throw ValidationError("choose --full or --lora-rank R") } }
        if training, out == nil { throw ValidationError("--out is needed (where the fine-tuned model goes)") }
        if let loraRank { guard loraRank >= 1 else { throw ValidationError("--lora-rank must be at least 1") } }
        _ = try targets()
        guard loraDropout >= 0 && loraDropout < 1 else { throw ValidationError("--lora-dropout must be in [0, 1)") }
        if loraDropout > 0 && loraRank == nil { throw ValidationError("--lora-dropout needs --lora-rank") }
        if adapterOut != nil && loraRank == nil { throw ValidationError("--adapter-out needs --lora-rank") }
        if qlora && loraRank == nil { throw ValidationError("--qlora needs --lora-rank") }
        if qlora && qat != nil { throw ValidationError("--qat needs the base in f32: drop --qlora") }
        if let qat, QATFormat(rawValue: qat) == nil {
            throw ValidationError("--qat \(qat): one of \(QATFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard accumulate >= 1 else { throw ValidationError("--accumulate must be at least 1") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be > 0") }
        if let epochs { guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") } }
        if let steps { guard steps >= 1 else { throw ValidationError("--steps must be at least 1") } }
        if epochs != nil && steps != nil { throw ValidationError("give --epochs or --steps, not both") }
        guard maxTokens >= 8 else { throw ValidationError("--max-tokens must be at least 8") }
        guard evalEvery >= 1 else { throw ValidationError("--eval-every must be at least 1") }
        guard distillSamples >= 1 else { throw ValidationError("--distill-samples must be at least 1") }
        guard saveEvery >= 0 else { throw ValidationError("--save-every must be at least 0") }
    }

    func run() throws {
        let path = try model.resolve()
        // The trainer reads the weights once into its own f32 vector (or, with --qlora, each step from the file's
        // pages): a private huge-page copy of them (the engine's default) would be a second resident copy.
        let lm = try LanguageModel.load(path: path, options: ModelOptions(threads: threads ?? ProcessInfo.processInfo.activeProcessorCount,
                                                                          placement: .mapped))
        let checkpoint = lm.model.checkpoint
        if let out, checkpoint.gguf != nil, !out.hasSuffix(".gguf") { throw ValidationError("--out: a GGUF model is written as a .gguf file") }
        if checkpoint.gguf == nil, checkpoint.directory == nil { throw ValidationError("\(path): only GGUF files and Hugging Face folders can be fine-tuned") }

        func load(_ file: String, _ what: String) throws -> [TrainingExample] {
            guard let bytes = FileManager.default.contents(atPath: file), let text = String(data: bytes, encoding: .utf8) else {
                throw ExitCodeError(message: "\(what) \(file): cannot read the file as UTF-8 text")
            }
            let (examples, problems) = TrainingData.parse(text, tokenizer: lm.tokenizer, maxTokens: maxTokens)
            for p in problems.prefix(20) { writeErr("\(file): \(p)\n") }
            if problems.count > 20 { writeErr("\(file): \(problems.count - 20) more lines left out\n") }
            if strict && !problems.isEmpty { throw ExitCodeError(message: "\(what) \(file): \(problems.count) unusable line(s) (--strict)") }
            guard !examples.isEmpty else { throw ExitCodeError(message: "\(what) \(file): no usable example") }
            writeErr("\(file): \(examples.count) examples, \(examples.reduce(0) { $0 + $1.tokens.count }) tokens, "
                     + "\(examples.reduce(0) { $0 + $1.targetCount }) of them learned\(problems.isEmpty ? "" : ", \(problems.count) lines left out")\n")
            return examples
        }
        var train = try load(data, "--data")
        if let dumpTokens {
            let rows = train.map { e in
                "{\"line\": \(e.line), \"tokens\": \(e.tokens), \"targets\": \(e.targets.map { $0 ?? -1 })}"
            }
            do { try Data(("[\n" + rows.joined(separator: ",\n") + "\n]\n").utf8).write(to: URL(fileURLWithPath: dumpTokens), options: .atomic) }
            catch { throw ExitCodeError(message: "--dump-tokens \(dumpTokens): \(error)") }
            writeErr("wrote \(train.count) examples to \(dumpTokens)\n")
            return
        }
        if let distillFrom {
            let teacher: LanguageModel
            do {
                teacher = try LanguageModel.load(path: ModelOption.resolve(distillFrom).path, options: ModelOptions(threads: threads ?? ProcessInfo.processInfo.activeProcessorCount))
                try lm.requireSameVocabulary(teacher, role: "teacher")
            } catch { throw ExitCodeError(message: "--distill-from \(distillFrom): \(error)") }
            for i in train.indices {
                train[i].soft = try Distillation.targets(for: train[i], teacher: teacher.model, samples: distillSamples,
                                                         seed: seed &+ UInt64(i))
                if Progress.enabled { writeErr("\r\u{1B}[Kteacher: \(i + 1)/\(train.count) examples") }
            }
            writeErr((Progress.enabled ? "\r\u{1B}[K" : "") + "teacher \(distillFrom): \(distillSamples) samples per learned token of \(train.count) examples\n")
        }
        let held = try eval.map { try load($0, "--eval") }
        if evalOnly {
            let gradient = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset)
            let trainer = Trainer(model: gradient, parameters: try checkpoint.trainableParameters(gradient.layout),
                                  schedule: LearningRateSchedule(peak: lr, warmup: 0, total: 1), optimizer: false)
            if let threads { trainer.threads = threads }
            let loss = try trainer.evaluate(held ?? train)
            print(String(format: "eval loss %.4f (perplexity %.4f) on %@", loss, exp(Double(loss)), eval ?? data))
            return
        }
        guard let out else { throw ValidationError("--out is needed") }

        let lora = try loraRank.map { LoRAConfig(rank: $0, alpha: loraAlpha, targets: try targets(), dropout: loraDropout) }
        let stored = qlora ? try StoredBase(checkpoint) : nil
        let gradient = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset, lora: lora, stored: stored)
        let perEpoch = (train.count + batch * accumulate - 1) / (batch * accumulate)
        let total = steps ?? perEpoch * (epochs ?? 1)
        // The weights go straight into the trainer (no second reference), so that the end can merge in place.
        let trainer = Trainer(model: gradient, parameters: try checkpoint.trainableParameters(gradient.layout, leaving: stored), adapters: gradient.lora?.initialAdapters(seed: seed),
                              schedule: LearningRateSchedule(peak: lr, warmup: warmup ?? max(0, total / 20), total: total),
                              weightDecay: weightDecay)
        trainer.maxGradientNorm = maxGradNorm
        trainer.dropoutSeed = seed
        trainer.recompute = recompute
        trainer.qat = qat.flatMap(QATFormat.init(rawValue:))
        if let threads { trainer.threads = threads }
        let what = gradient.lora.map { "\($0.count) LoRA values (rank \($0.config.rank), alpha \($0.config.alpha); \(gradient.layout.count) weights frozen)" }
            ?? "\(gradient.layout.count) parameters"
        writeErr("training \(what) for \(total) steps of \(accumulate > 1 ? "\(accumulate) x " : "")\(batch) examples (\(perEpoch) steps an epoch)\n")
        if let held { writeErr(String(format: "eval loss %.4f before training\n", try trainer.evaluate(held))) }

        // The order: a seeded shuffle per epoch, a function of (seed, epoch), so that a resumed run takes the same
        // examples at each step.
        func order(epoch: Int) -> [Int] {
            var rng = SeededGenerator(seed: seed ^ (UInt64(epoch) &* 0xD1B5_4A32_D192_ED03))
            return Array(train.indices).shuffled(using: &rng)
        }
        var orders: [Int: [Int]] = [:]
        let perStep = min(batch * accumulate, train.count)
        // The run, as resuming checks it: what is trained and on what.
        let describe = ["run": "\(path)|\(data)|\(train.count) examples|\(loraRank.map { "lora \($0) \(loraTargets)\(loraDropout > 0 ? " dropout \(loraDropout)" : "")" } ?? "full")|batch \(batch)\(accumulate > 1 ? " x \(accumulate)" : "")|steps \(total)|seed \(seed)|qat \(qat ?? "-")|distill \(distillFrom ?? "-")"]
        let statePath = out + ".state"
        var first = 0
        if resume {
            guard FileManager.default.fileExists(atPath: statePath) else { throw ExitCodeError(message: "--resume: no \(statePath) to resume from") }
            let meta = try trainer.restoreState(from: statePath)
            guard meta["run"] == describe["run"] else {
                throw ExitCodeError(message: "--resume: \(statePath) was written by another run (\(meta["run"] ?? "?")), not this one (\(describe["run"]!))")
            }
            first = trainer.step
            writeErr("resuming at step \(first + 1) of \(total)\n")
        }
        let started = Date()
        var tokens = 0, smoothed: Float? = nil
        for step in first..<total {
            var picked: [TrainingExample] = []
            for j in 0..<perStep {
                let g = step * perStep + j, epoch = g / train.count
                if orders[epoch] == nil { orders = [epoch: order(epoch: epoch)] }
                picked.append(train[orders[epoch]![g % train.count]])
            }
            let stepStarted = Date()
            let report = try trainer.step(accumulating: stride(from: 0, to: picked.count, by: batch).map {
                Array(picked[$0..<min(picked.count, $0 + batch)])
            })
            let stepSeconds = Date().timeIntervalSince(stepStarted)
            tokens += report.tokens
            smoothed = smoothed.map { 0.9 * $0 + 0.1 * report.loss } ?? report.loss
            let elapsed = Date().timeIntervalSince(started)
            let eta = elapsed / Double(step + 1 - first) * Double(total - step - 1)
            let line = String(format: "step %d/%d  loss %.4f (avg %.4f)  lr %.2e  grad %.2f  %d tokens in %.2f s  %.0f tok/s  %@ left",
                              step + 1, total, report.loss, smoothed!, report.learningRate, report.gradientNorm,
                              report.tokens, stepSeconds, Double(tokens) / max(elapsed, 1e-9), Self.duration(eta))
            writeErr(Progress.enabled ? "\r\u{1B}[K" + line : line + "\n")
            if saveEvery > 0, (step + 1) % saveEvery == 0, step + 1 < total {
                try trainer.saveState(to: statePath, extra: describe)
            }
            if let held, (step + 1) % evalEvery == 0 || step + 1 == total {
                let l = try trainer.evaluate(held)
                writeErr((Progress.enabled ? "\n" : "") + String(format: "eval loss %.4f after step %d\n", l, step + 1))
            }
        }
        if Progress.enabled { writeErr("\n") }
        guard first < total else { throw ExitCodeError(message: "--resume: \(statePath) is at step \(first), the end of this run") }
        try TrainedModel.write(trainer.takeMergedParameters(), layout: gradient.layout, like: checkpoint, to: out)
        if let adapterOut, let l = gradient.lora {
            try l.writePEFT(trainer.adapters, to: adapterOut, baseModel: path)
            if checkpoint.gguf != nil { try l.writeGGUF(trainer.adapters, to: adapterOut + "/adapter.gguf", like: checkpoint) }
            writeErr("wrote the adapter to \(adapterOut)\n")
        }
        try? FileManager.default.removeItem(atPath: statePath)  // finished: nothing to resume
        writeErr(String(format: "wrote %@ (%d steps, %.1f s)\n", out, total, Date().timeIntervalSince(started)))
    }

    func targets() throws -> [Gemma3Weight.Layer] {
        try loraTargets.split(separator: ",").map { name in
            switch name.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_proj", with: "") {
            case "q": .q
            case "k": .k
            case "v": .v
            case "o": .o
            case "gate": .gate
            case "up": .up
            case "down": .down
            default: throw ValidationError("--lora-targets: \(name) is not one of q, k, v, o, gate, up, down")
            }
        }
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}
