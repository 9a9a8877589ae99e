// Fine-tuning data and full fine-tuning (issue 21): JSONL lines become chat-template sequences whose loss is on the
// model's replies only, bad lines are reported by number, and AdamW steps make the tiny fixture model learn a task.
import Foundation
import GemmaConvert
import GemmaFormats
import GemmaGenerate
import GemmaModel
import GemmaTestSupport
import GemmaTokenizer
import GemmaTrain
import Testing

@Suite struct TrainerTests {
    static let fixture = TestPaths.fixtures + "/gemma3-tiny-text"

    @Test func examplesAreTheChatTemplateWithTheLossOnRepliesOnly() throws {
        let tk = try Tokenizer(directory: Self.fixture)
        let text = """
        {"prompt": "red", "completion": "rouge"}
        {"messages": [{"role": "system", "content": "Translate."}, {"role": "user", "content": "blue"}, {"role": "assistant", "content": "bleu"}]}
        """
        let (examples, problems) = TrainingData.parse(text, tokenizer: tk, maxTokens: 64)
        #expect(problems.isEmpty)
        try #require(examples.count == 2)
        // The prompt is what the engine sends for a chat turn; the reply and <end_of_turn> follow it.
        let prompt = ChatTemplate.tokens([.user("red")], tokenizer: tk)
        let reply = tk.encode("rouge", addSpecial: false).map(Int.init)
        #expect(examples[0].tokens == prompt + reply + [ChatTemplate.endOfTurn])  // the closing newline predicts nothing
        #expect(examples[0].targets.last! == nil)
        let learned = examples[0].targets.enumerated().compactMap { i, t in t.map { (i, $0) } }
        #expect(learned.map(\.1) == reply + [ChatTemplate.endOfTurn])
        #expect(learned.first?.0 == prompt.count - 1)
        // The system text is folded into the user turn, as at inference.
        let prompt2 = ChatTemplate.tokens([.system("Translate."), .user("blue")], tokenizer: tk)
        #expect(Array(examples[1].tokens.prefix(prompt2.count)) == prompt2)
        #expect(examples[1].targets.prefix(prompt2.count - 1).allSatisfy { $0 == nil })
        #expect(examples[1].line == 2)
    }

    @Test func badLinesAreReportedByNumber() throws {
        let tk = try Tokenizer(directory: Self.fixture)
        let long = String(repeating: "word ", count: 200)
        let text = """
        {"prompt": "a", "completion": "b"}
        {"prompt": "a", "completion": "b"
        ["not", "an", "object"]
        {"prompt": "a"}
        {"prompt": "a", "completion": "   "}

        {"messages": [{"role": "robot", "content": "x"}]}
        {"messages": [{"role": "user", "content": "only a question"}]}
        {"prompt": "\(long)", "completion": "b"}
        {"messages": [{"role": "user", "content": "q"}, {"role": "model", "content": "a"}]}
        """
        let (examples, problems) = TrainingData.parse(text, tokenizer: tk, maxTokens: 64)
        #expect(examples.map(\.line) == [1, 10])
        #expect(problems.map(\.line) == [2, 3, 4, 5, 7, 8, 9])
        let reasons = problems.map(\.reason)
        #expect(reasons[0].contains("not valid JSON"))
        #expect(reasons[1].contains("JSON object"))
        #expect(reasons[2].contains("completion"))
        #expect(reasons[3].contains("empty reply"))
        #expect(reasons[4].contains("robot"))
        #expect(reasons[5].contains("no reply"))
        #expect(reasons[6].contains("more than the limit of 64"))
    }

    /// The tiny random model learns a fixed mapping of eight words to eight others: AdamW with warm-up, cosine decay,
    /// weight decay and clipping takes the loss on the replies from ~7 (about uniform over 1,024 tokens) to a tenth.
    @Test func fullFineTuningLearnsAMapping() throws {
        let tk = try Tokenizer(directory: Self.fixture)
        let checkpoint = try Checkpoint.open(path: Self.fixture)
        let model = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset)
        let words = [("one", "red"), ("two", "green"), ("three", "blue"), ("four", "black"), ("five", "white"),
                     ("six", "pink"), ("seven", "grey"), ("eight", "brown")]
        let lines = words.map { #"{"prompt": "\#($0.0)", "completion": "\#($0.1)"}"# }.joined(separator: "\n")
        let (examples, problems) = TrainingData.parse(lines, tokenizer: tk, maxTokens: 64)
        #expect(problems.isEmpty && examples.count == 8)
        let trainer = Trainer(model: model, parameters: try checkpoint.trainableParameters(model.layout),
                              schedule: LearningRateSchedule(peak: 1e-2, warmup: 3, total: 40), weightDecay: 0.01)
        let before = try trainer.evaluate(examples)
        var last = before
        for _ in 0..<40 { last = try trainer.step(examples).loss }
        let after = try trainer.evaluate(examples)
        print("full fine-tuning, 40 steps of 8 examples: loss \(before) -> \(after) (last step \(last))")
        #expect(before > 5)
        #expect(after < 0.1 * before)
        #expect(trainer.step == 40 && trainer.optimizer.steps == 40)
        // Written back as a Hugging Face folder, the engine loads it and answers each prompt with its word (greedy,
        // the chat template as `gemma run` uses it).
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("swift-gemma-trained-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try TrainedModel.write(trainer.parameters, layout: model.layout, like: checkpoint, to: out)
        let lm = try LanguageModel.load(path: out)
        var right = 0
        for (q, a) in words {
            let prompt = ChatTemplate.tokens([.user(q)], tokenizer: lm.tokenizer)
            let state = lm.model.makeState(capacity: prompt.count + 9)
            let outcome = try lm.generator.run(prompt: Prompt(tokens: prompt), state: state,
                                               parameters: GenerationParameters(sampling: .greedy, maxTokens: 8),
                                               tokenizer: lm.tokenizer) { _ in }
            if outcome.text == a { right += 1 } else { print("\(q): \(outcome.text) (expected \(a))") }
        }
        #expect(right == words.count)
    }

    /// Recomputing each layer in the backward pass from its saved input gives the same steps, bit for bit (full
    /// fine-tuning and LoRA, three steps each).
    @Test func recomputationGivesTheSameSteps() throws {
        let tk = try Tokenizer(directory: Self.fixture)
        let checkpoint = try Checkpoint.open(path: Self.fixture)
        let lines = ["one red", "two green", "three blue", "four black"].map {
            #"{"prompt": "\#($0.split(separator: " ")[0])", "completion": "\#($0.split(separator: " ")[1])"}"#
        }.joined(separator: "\n")
        let examples = TrainingData.parse(lines, tokenizer: tk, maxTokens: 64).examples
        for lora in [nil, LoRAConfig(rank: 4)] {
            let model = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset, lora: lora)
            var runs: [[Float]] = []
            for recompute in [false, true] {
                let trainer = Trainer(model: model, parameters: try checkpoint.trainableParameters(model.layout),
                                      schedule: LearningRateSchedule(peak: 1e-2, warmup: 0, total: 3))
                trainer.recompute = recompute
                var losses: [Float] = []
                for _ in 0..<3 { losses.append(try trainer.step(examples).loss) }
                runs.append(losses + (lora == nil ? trainer.parameters : trainer.adapters))
            }
            #expect(runs[0] == runs[1], "lora \(lora != nil): recomputation changed the steps")
        }
    }

    /// Accumulating the gradients of two micro-batches takes the step of their union (to rounding: the sums run in
    /// another order): the same loss and gradient norm at each step, the same loss after.
    @Test func accumulatedMicroBatchesTakeTheStepOfTheirUnion() throws {
        let tk = try Tokenizer(directory: Self.fixture)
        let checkpoint = try Checkpoint.open(path: Self.fixture)
        let lines = [("one", "red"), ("two", "green"), ("three", "blue light"), ("four", "black")].map {
            #"{"prompt": "\#($0.0)", "completion": "\#($0.1)"}"#
        }.joined(separator: "\n")
        let examples = TrainingData.parse(lines, tokenizer: tk, maxTokens: 64).examples
        let model = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset)
        let p0 = try checkpoint.trainableParameters(model.layout)
        func trainer() -> Trainer { Trainer(model: model, parameters: p0, schedule: LearningRateSchedule(peak: 1e-2, warmup: 0, total: 2)) }
        let whole = trainer(), parts = trainer()
        for _ in 0..<2 {
            let a = try whole.step(examples), b = try parts.step(accumulating: [Array(examples[0..<1]), Array(examples[1...])])
            #expect(abs(a.loss - b.loss) <= 1e-5 * a.loss && abs(a.gradientNorm - b.gradientNorm) <= 1e-4 * a.gradientNorm)
        }
        // (Not the parameters element by element: AdamW divides by the root of the squared gradient, so an element
        // whose gradient is rounding noise moves by the learning rate either way.)
        let a = try whole.evaluate(examples), b = try parts.evaluate(examples)
        #expect(abs(a - b) <= 1e-3 * a, "after two steps: \(a) vs \(b)")
    }

    @Test func scheduleWarmsUpAndDecays() {
        let s = LearningRateSchedule(peak: 1, warmup: 4, total: 104, floor: 0.1)
        #expect(s.rate(at: 0) == 0.2 && s.rate(at: 3) == 0.8)
        #expect(abs(s.rate(at: 4) - 1) < 1e-6)
        #expect(abs(s.rate(at: 54) - 0.55) < 1e-6)  // half way: floor + (1 - floor) / 2
        #expect(abs(s.rate(at: 104) - 0.1) < 1e-6 && abs(s.rate(at: 500) - 0.1) < 1e-6)
    }
}

/// The same model as a GGUF file: its weights (norms stored as 1 + w) give the Hugging Face folder's loss and
/// gradients, and writing them back gives a GGUF whose tensors are the input's, bit for bit.
@Suite struct TrainedGGUFTests {
    @Test func ggufCheckpointsTrainAndWriteBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swift-gemma-train-gguf-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Converter.convert(input: TrainerTests.fixture, output: dir + "/tiny.gguf", options: ConvertOptions(type: .f32))
        let hf = try Checkpoint.open(path: TrainerTests.fixture), gguf = try Checkpoint.open(path: dir + "/tiny.gguf")
        #expect(gguf.normOffset == 0 && hf.normOffset == 1)
        let tk = try Tokenizer(directory: TrainerTests.fixture)
        let example = try TrainingData.example([.user("one"), .model("red")], tokenizer: tk)
        func lossAndGradient(_ c: Checkpoint) throws -> (Float, [Float], TextModelGradient) {
            let m = TextModelGradient(config: c.config, normOffset: c.normOffset)
            let p = try c.trainableParameters(m.layout)
            var g = [Float](repeating: 0, count: p.count)
            let l = try g.withUnsafeMutableBufferPointer { try m.loss(parameters: p, tokens: example.tokens, targets: example.targets, gradient: $0.baseAddress!) }
            return (l, g, m)
        }
        let (lh, gh, _) = try lossAndGradient(hf)
        let (lg, gg, mg) = try lossAndGradient(gguf)
        #expect(abs(lh - lg) <= 1e-5 * abs(lh))
        var diff = 0.0, norm = 0.0
        for i in gh.indices { diff += Double(gh[i] - gg[i]) * Double(gh[i] - gg[i]); norm += Double(gh[i]) * Double(gh[i]) }
        #expect((diff / norm).squareRoot() < 1e-5)
        // Written back untrained: every tensor as it was.
        let params = try gguf.trainableParameters(mg.layout)
        try TrainedModel.write(params, layout: mg.layout, like: gguf, to: dir + "/out.gguf")
        let a = try GGUFFile(path: dir + "/tiny.gguf"), b = try GGUFFile(path: dir + "/out.gguf")
        #expect(a.tensors.map(\.name) == b.tensors.map(\.name))
        for t in a.tensors {
            let u = try #require(b.tensor(named: t.name))
            #expect(u.dimensions == t.dimensions && u.type == t.type)
            #expect([UInt8](a.data(for: t)) == [UInt8](b.data(for: u)), "\(t.name)")
        }
        #expect(b.metadata["general.architecture"] == a.metadata["general.architecture"])
    }
}

/// A run stopped after its last saved state and resumed from it ends where the uninterrupted run ends, bit for bit
/// (the weights, AdamW's moments, the schedule's step), for full fine-tuning and LoRA alike.
@Suite struct ResumeTests {
    @Test(arguments: [false, true]) func resumingGivesTheUninterruptedResult(_ lora: Bool) throws {
        let fixture = TrainerTests.fixture
        let tk = try Tokenizer(directory: fixture)
        let checkpoint = try Checkpoint.open(path: fixture)
        let model = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset, lora: lora ? LoRAConfig(rank: 4) : nil)
        let (examples, _) = TrainingData.parse(#"{"prompt": "one", "completion": "red"}"# + "\n" + #"{"prompt": "two", "completion": "green"}"#,
                                               tokenizer: tk, maxTokens: 64)
        let base = try checkpoint.trainableParameters(model.layout)
        func trainer() -> Trainer {
            Trainer(model: model, parameters: base, schedule: LearningRateSchedule(peak: 1e-2, warmup: 2, total: 12), weightDecay: 0.01)
        }
        let straight = trainer()
        for _ in 0..<12 { _ = try straight.step(examples) }
        let first = trainer()
        for _ in 0..<5 { _ = try first.step(examples) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swift-gemma-state-\(getpid())-\(lora).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try first.saveState(to: path, extra: ["run": "test"])
        let resumed = trainer()
        #expect(try resumed.restoreState(from: path)["run"] == "test")
        #expect(resumed.step == 5)
        for _ in 5..<12 { _ = try resumed.step(examples) }
        #expect(resumed.parameters == straight.parameters && resumed.adapters == straight.adapters)
        #expect(resumed.optimizer.m == straight.optimizer.m && resumed.optimizer.steps == 12)
        // A state of another mode is refused.
        let other = Trainer(model: TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset, lora: lora ? nil : LoRAConfig(rank: 4)),
                            parameters: base, schedule: LearningRateSchedule(peak: 1e-2, warmup: 2, total: 12))
        #expect(throws: TrainError.self) { try other.restoreState(from: path) }
    }
}
