// `gemma generate`: raw completion (BOS added, no chat template) of a prompt, streamed to stdout. Also the sampling
// flags shared by generate, run and chat (llama.cpp's names and defaults) and the progress lines they print.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaGrammar
import GemmaModel
import GemmaTokenizer
import GemmaVision

/// llama.cpp-style sampling flags. Unset, the first five take the model's defaults: its generation_config.json's
/// sampling values when a Hugging Face folder ships them, else llama.cpp's (`SamplingParameters(defaults:)`).
struct SamplingOptions: ParsableArguments {
    @Option(name: [.customLong("temp"), .customLong("temperature")],
            help: "Temperature; 0 is greedy. (default: the model's generation_config.json, else 0.8)")
    var temp: Float?
    @Option(name: .customLong("top-k"), help: "Keep the K most likely tokens (0 = all). (default: the model's, else 40)")
    var topK: Int?
    @Option(name: .customLong("top-p"),
            help: "Keep the most likely tokens up to this probability mass (1 = all). (default: the model's, else 0.95)")
    var topP: Float?
    @Option(name: .customLong("min-p"),
            help: "Drop tokens below this fraction of the top token's probability (0 = off). (default: the model's, else 0.05)")
    var minP: Float?
    @Option(name: .customLong("repeat-penalty"), help: "Penalty for tokens in the last N (1 = off). (default: the model's, else 1)")
    var repeatPenalty: Float?
    @Option(name: .customLong("repeat-last-n"), help: "Tokens the penalties look back over (0 = off, -1 = all).")
    var repeatLastN = 64
    @Option(name: .customLong("presence-penalty"), help: "Subtracted once from tokens present in the last N (0 = off).")
    var presencePenalty: Float = 0
    @Option(name: .customLong("frequency-penalty"), help: "Subtracted per occurrence in the last N (0 = off).")
    var frequencyPenalty: Float = 0
    @Option(name: [.customShort("l"), .customLong("logit-bias")],
            help: "Bias a token's logit: ID+BIAS or ID-BIAS (llama.cpp's form), or ID=-inf to ban it. Repeatable.")
    var logitBias: [String] = []
    @Option(help: "Seed of the sampling stream (-1 = random).") var seed: Int64 = -1
    @Option(help: "Stop when the text contains this string (\\n and \\t escapes understood). Repeatable.")
    var stop: [String] = []
    @Option(name: .customLong("draft"), help: ArgumentHelp("Speculative decoding: 'ngram' proposes tokens by prompt lookup (the text's last words found earlier in the prompt or the reply), a model (GGUF, .sbs or Hugging Face folder with the same vocabulary, or a cached ORG/REPO) by a draft model decoding ahead; the model checks the proposals in one step: greedy gives the same output as without it, top-k sampling the same distribution (speculative sampling); no bias, penalties or grammar.", valueName: "ngram|MODEL"))
    var draft: String?
    @Option(name: .customLong("draft-max"), help: "Tokens proposed at most per step with --draft (1-6; the length adapts: it halves after a miss and pauses after several).")
    var draftMax = 3
    @Option(name: .customLong("grammar"), help: ArgumentHelp("Constrain the output to a GBNF grammar (llama.cpp's notation) read from this file.", valueName: "file"))
    var grammarFile: String?
    @Option(name: .customLong("json-schema"), help: ArgumentHelp("Constrain the output to JSON valid against the JSON Schema in this file ('{}' alone: any JSON object).", valueName: "file"))
    var jsonSchemaFile: String?

    func validate() throws {
        if let temp { guard temp >= 0, temp.isFinite else { throw ValidationError("--temp must be >= 0") } }
        if let topK { guard topK >= 0 else { throw ValidationError("--top-k must be >= 0") } }
        if let topP { guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") } }
        if let minP { guard minP >= 0, minP <= 1 else { throw ValidationError("--min-p must be in [0, 1]") } }
        if let repeatPenalty { guard repeatPenalty > 0 else { throw ValidationError("--repeat-penalty must be > 0") } }
        guard repeatLastN >= -1 else { throw ValidationError("--repeat-last-n must be >= -1") }
        if grammarFile != nil && jsonSchemaFile != nil { throw ValidationError("--grammar and --json-schema cannot be used together") }
        if let draft, draft != "ngram", !FileManager.default.fileExists(atPath: draft) {
            throw ValidationError("--draft \(draft): neither 'ngram' nor a model file or folder")
        }
        guard (1...6).contains(draftMax) else { throw ValidationError("--draft-max must be between 1 and 6") }
        _ = try biases()
    }

    /// Sets speculative decoding from --draft and --draft-max: prompt lookup, or the draft model loaded (with the
    /// target's load options) and checked against the target's vocabulary.
    func applySpeculation(to p: inout GenerationParameters, target: LanguageModel, options: ModelOptions) throws {
        guard let draft else { return }
        p.draftMax = draftMax
        guard draft != "ngram" else { return }
        do {
            p.draftModel = try DraftModel(LanguageModel.load(path: ModelOption.resolve(draft).path, options: options), for: target)
        } catch {
            throw ExitCodeError(message: "--draft \(draft): \(error)")
        }
    }

    /// The grammar of --grammar or --json-schema bound to the model's vocabulary (nil without either).
    func constraint(_ lm: LanguageModel) throws -> TokenConstraint? {
        func read(_ path: String, _ flag: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw ExitCodeError(message: "\(flag) \(path): cannot read the file")
            }
            return text
        }
        do {
            if let path = grammarFile { return lm.constraint(try Grammar(gbnf: read(path, "--grammar"))) }
            if let path = jsonSchemaFile {
                let text = try read(path, "--json-schema")
                let schema: JSONValue
                do { schema = try JSONValue.parse(Array(text.utf8)) } catch {
                    throw ExitCodeError(message: "--json-schema \(path): not JSON: \(error)")
                }
                if schema == .object([]) { return lm.constraint(try Grammar(gbnf: JSONSchemaGrammar.anyJSON(objectOnly: true))) }
                return lm.constraint(try JSONSchemaGrammar.grammar(schema: schema))
            }
        } catch let e as GrammarError {
            throw ExitCodeError(message: "\(grammarFile.map { "--grammar \($0)" } ?? "--json-schema \(jsonSchemaFile!)"): \(e.message)")
        }
        return nil
    }

    /// The seed actually used (a random one when -1).
    var resolvedSeed: UInt64 { seed < 0 ? UInt64.random(in: 0...UInt64.max) : UInt64(seed) }

    /// The flags over `defaults` (the model's `samplingDefaults`).
    func parameters(seed: UInt64, defaults: SamplingParameters) throws -> SamplingParameters {
        var p = defaults
        p.temperature = temp ?? defaults.temperature
        p.topK = topK ?? defaults.topK
        p.topP = topP ?? defaults.topP
        p.minP = minP ?? defaults.minP
        p.repeatPenalty = repeatPenalty ?? defaults.repeatPenalty
        p.repeatLastN = repeatLastN
        p.presencePenalty = presencePenalty
        p.frequencyPenalty = frequencyPenalty
        p.logitBias = try biases()
        p.seed = seed
        return p
    }

    /// Stop strings with \n, \t, \r and \\ unescaped.
    var stopStrings: [String] {
        stop.map { s in
            var out = "", escaped = false
            for c in s {
                if escaped {
                    switch c {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "r": out.append("\r")
                    default: out.append(c)
                    }
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else {
                    out.append(c)
                }
            }
            if escaped { out.append("\\") }
            return out
        }
    }

    private func biases() throws -> [Int: Float] {
        var out: [Int: Float] = [:]
        for item in logitBias {
            let digits = item.prefix { $0.isNumber }
            var rest = item.dropFirst(digits.count)
            if rest.first == "=" { rest = rest.dropFirst() }
            guard let id = Int(digits), !rest.isEmpty else {
                throw ValidationError("--logit-bias \(item): expected ID+BIAS, ID-BIAS or ID=BIAS")
            }
            let value: Float? = rest == "-inf" ? -.infinity : rest == "+inf" || rest == "inf" ? .infinity : Float(rest)
            guard let value else { throw ValidationError("--logit-bias \(item): \(rest) is not a number") }
            out[id] = value
        }
        return out
    }
}

/// Progress lines on stderr, only when it is a terminal.
enum Progress {
    static let enabled = isatty(2) != 0

    static func loading(_ path: String) { if enabled { writeErr("loading \((path as NSString).lastPathComponent) ...") } }

    static func loaded(seconds: Double) { if enabled { writeErr(String(format: "\r\u{1B}[Kloaded in %.1f s\n", seconds)) } }

    /// Encoding progress of image `i` of `n` (per encoder layer of each view).
    static func image(_ i: Int, _ n: Int, _ p: VisionEncodeProgress) {
        if enabled {
            let views = p.images > 1 ? " (view \(p.image + 1)/\(p.images))" : ""
            writeErr("\r\u{1B}[Kencoding image \(i)/\(n)\(views): layer \(p.layer)/\(p.layers)")
        }
    }
    static func imageDone(_ i: Int, views: Int, seconds: Double) {
        if enabled { writeErr(String(format: "\r\u{1B}[Kencoded image %d (%d view%@) in %.1f s\n", i, views, views == 1 ? "" : "s", seconds)) }
    }

    /// When the running prefill's first report came, and how many tokens it had done then.
    nonisolated(unsafe) private static var prefillStart: (nanoseconds: UInt64, done: Int)?

    /// Prefill progress (reported between chunks): tokens done, speed since the first report, time left.
    static func prefill(_ done: Int, _ total: Int) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard done < total else {
            prefillStart = nil
            writeErr("\r\u{1B}[K")
            return
        }
        guard let start = prefillStart, done > start.done, now > start.nanoseconds else {
            prefillStart = (now, done)
            writeErr("\r\u{1B}[Kprefill \(done)/\(total) tokens")
            return
        }
        let rate = Double(done - start.done) / (Double(now - start.nanoseconds) / 1e9)
        let left = Int((Double(total - done) / rate).rounded(.up))
        let eta = left >= 60 ? String(format: "%d min %02d s", left / 60, left % 60) : "\(left) s"
        writeErr(String(format: "\r\u{1B}[Kprefill %d/%d tokens, %.0f tok/s, %@ left", done, total, rate, eta))
    }
}

/// One line of statistics: prompt tokens reused and prefilled, generation speed, why it stopped.
func statsLine(_ s: GenerationStats) -> String {
    let grammar = s.constraintNanoseconds == 0 ? ""
        : String(format: " (grammar %.2f ms/token)", Double(s.constraintNanoseconds) / 1e6 / Double(max(s.generatedTokens, 1)))
    let draft = s.draftProposed == 0 ? ""
        : String(format: " (draft: %d of %d proposed tokens accepted)", s.draftAccepted, s.draftProposed)
    return String(format: "[prompt %d tokens: %d reused, %d prefilled in %.0f ms (%.1f tok/s) | %d generated at %.1f tok/s%@ | stop: %@]",
                  s.promptTokens, s.reusedPromptTokens, s.prefilledTokens, Double(s.promptNanoseconds) / 1e6,
                  s.promptTokensPerSecond, s.generatedTokens, s.generatedTokensPerSecond, grammar + draft,
                  s.stopReason.rawValue + (s.stopString.map { " \(jsonString($0))" } ?? ""))
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Complete a prompt (raw completion: BOS added, no chat template), streaming the text.",
        discussion: "The prompt comes from PROMPT, from --file F, or from stdin when PROMPT is -. Generation stops at <eos> (1) or <end_of_turn> (106) unless --ignore-eos is given, at a --stop string, or after --max-tokens.")

    @OptionGroup(title: "Model") var model: ModelRunOptions
    @Argument(help: "The prompt text, or - to read it from stdin.") var prompt: String?
    @Option(help: "Read the prompt from this file.") var file: String?
    @Option(help: "The prompt as comma-separated token ids, BOS included (instead of text).") var ids: String?
    @Option(name: [.customShort("n"), .long], help: "Maximum tokens to generate.") var maxTokens = 128
    @OptionGroup(title: "Sampling") var sampling: SamplingOptions
    @Flag(help: "Do not stop at <eos> or <end_of_turn>.") var ignoreEos = false
    @Flag(help: "Print one JSON object instead of streaming text.") var json = false
    @OptionGroup(title: "Images") var imageOptions: ImageOptions

    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be >= 0") }
        if ids != nil && !imageOptions.images.isEmpty { throw ValidationError("--image needs a text prompt (each image goes at a <start_of_image> in it, else before it), not --ids") }
    }

    func run() throws {
        let text = self.ids == nil ? try readPrompt(argument: prompt, file: file) : ""
        let loaded = try model.load()
        let images = try imageOptions.embed(loaded)
        let prompt: Prompt
        if let list = self.ids {
            prompt = Prompt(tokens: try list.split(separator: ",").map { item in
                guard let id = Int(item.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--ids: \(item) is not a token id") }
                return id
            })
        } else if images.isEmpty {
            prompt = Prompt(tokens: loaded.tokenizer.encode(text, addSpecial: true, parseSpecial: true).map(Int.init))
        } else {
            prompt = Prompt.raw(text, images: images, tokenizer: loaded.tokenizer, imageTokens: loaded.imageTokens!)
        }
        let ids = prompt.tokenIDs
        let seed = sampling.resolvedSeed
        var parameters = GenerationParameters(sampling: try sampling.parameters(seed: seed, defaults: loaded.samplingDefaults), maxTokens: maxTokens,
                                              stopStrings: sampling.stopStrings, ignoreStopTokens: ignoreEos,
                                              constraint: try sampling.constraint(loaded))
        try sampling.applySpeculation(to: &parameters, target: loaded, options: model.options)
        guard ids.count + maxTokens <= loaded.model.config.maxPositionEmbeddings else {
            throw ExitCodeError(message: "prompt (\(ids.count) tokens) + max tokens (\(maxTokens)) exceeds the model's context of \(loaded.model.config.maxPositionEmbeddings)")
        }
        let state = loaded.makeState(capacity: ids.count + maxTokens + 1, for: prompt)
        let outcome: GenerationOutcome
        do {
            outcome = try loaded.generator.run(prompt: prompt, state: state, parameters: parameters,
                                               tokenizer: loaded.tokenizer) { event in
                switch event {
                case let .prefill(done, total): Progress.prefill(done, total)
                case let .text(piece): if !json { writeOut(piece) }
                case .token, .finished: break
                }
            }
        } catch {
            throw ExitCodeError(message: "\(error)")
        }
        let stats = outcome.stats
        if json {
            let fields: [String] = [
                "\"prompt_tokens\":[\(ids.map(String.init).joined(separator: ","))]",
                "\"tokens\":[\(outcome.tokens.map(String.init).joined(separator: ","))]",
                "\"text\":\(jsonString(outcome.text))",
                "\"prompt_ms\":\(ms(stats.promptNanoseconds))",
                "\"generate_ms\":\(ms(stats.generateNanoseconds))",
                "\"stop_reason\":\"\(stats.stopReason.rawValue)\"",
                "\"seed\":\(seed)",
                "\"kv_cache_bytes\":\(state.cache.bytes)",
                "\"peak_rss_bytes\":\(peakRSSBytes())",
                "\"draft_proposed\":\(stats.draftProposed)",
                "\"draft_accepted\":\(stats.draftAccepted)",
            ]
            print("{" + fields.joined(separator: ",") + "}")
        } else {
            writeOut("\n")
            writeErr(String(format: "[%d prompt tokens in %.0f ms, %d generated at %.1f tok/s%@, stop: %@]\n",
                            stats.promptTokens, ms(stats.promptNanoseconds), stats.generatedTokens,
                            stats.generatedTokensPerSecond,
                            stats.draftProposed == 0 ? "" : ", draft \(stats.draftAccepted)/\(stats.draftProposed) accepted",
                            stats.stopReason.rawValue))
        }
    }

    private func ms(_ ns: UInt64) -> Double { (Double(ns) / 1e4).rounded() / 100 }
}
