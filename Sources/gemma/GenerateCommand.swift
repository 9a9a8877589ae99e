// `gemma generate`: raw completion (BOS added, no chat template) of a prompt, streamed to stdout.
import ArgumentParser
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaTokenizer

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Complete a prompt (raw completion: BOS added, no chat template), streaming the text.",
        discussion: "The prompt comes from PROMPT, from --file F, or from stdin when PROMPT is -. Generation stops at <eos> (1) or <end_of_turn> (106) unless --ignore-eos is given, or after --max-tokens.")

    @OptionGroup var model: ModelOption
    @Argument(help: "The prompt text, or - to read it from stdin.") var prompt: String?
    @Option(help: "Read the prompt from this file.") var file: String?
    @Option(name: [.customShort("n"), .long], help: "Maximum tokens to generate.") var maxTokens = 128
    @Option(help: "Sampling temperature; 0 means greedy.") var temperature: Float = 0.8
    @Option(help: "Seed of the sampling stream (default: random).") var seed: UInt64?
    @Flag(help: "Do not stop at <eos> or <end_of_turn>.") var ignoreEos = false
    @Option(name: .short, help: "Threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Print one JSON object instead of streaming text.") var json = false

    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be >= 0") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be >= 0") }
        guard threads >= 1 else { throw ValidationError("--threads must be >= 1") }
    }

    func run() throws {
        let text = try readPrompt(argument: prompt, file: file)
        let loaded = try LoadedModel(path: model.resolve(), threads: threads)
        let ids = loaded.tokenizer.encode(text, addSpecial: true, parseSpecial: true).map(Int.init)
        let sampling = SamplingParameters(temperature: temperature, seed: seed ?? UInt64.random(in: 0...UInt64.max))
        var detok = StreamingDetokenizer(tokenizer: loaded.tokenizer)
        let generator = Generator(model: loaded.model)
        let stops = generator.stopTokens
        var out = ""
        let result: GenerationResult
        do {
            result = try generator.generate(prompt: ids, maxTokens: maxTokens, sampling: sampling, ignoreStopTokens: ignoreEos) { id in
                if !ignoreEos && stops.contains(id) { return true }  // the stop token is not text
                let piece = (try? detok.append(TokenID(id))) ?? ""
                if json { out += piece } else { writeOut(piece) }
                return true
            }
        } catch {
            throw ExitCodeError(message: "\(error)")
        }
        let tail = detok.finish()
        if json {
            out += tail
            let fields: [String] = [
                "\"prompt_tokens\":[\(result.promptTokens.map(String.init).joined(separator: ","))]",
                "\"tokens\":[\(result.tokens.map(String.init).joined(separator: ","))]",
                "\"text\":\(jsonString(out))",
                "\"prompt_ms\":\(ms(result.promptNanoseconds))",
                "\"generate_ms\":\(ms(result.generateNanoseconds))",
                "\"stop_reason\":\"\(result.stopReason.rawValue)\"",
                "\"seed\":\(sampling.seed)",
                "\"kv_cache_bytes\":\(result.kvCacheBytes)",
                "\"peak_rss_bytes\":\(peakRSSBytes())",
            ]
            print("{" + fields.joined(separator: ",") + "}")
        } else {
            writeOut(tail + "\n")
            let tps = Double(result.tokens.count) / max(Double(result.generateNanoseconds) / 1e9, 1e-9)
            writeErr(String(format: "[%d prompt tokens in %.0f ms, %d generated at %.1f tok/s, stop: %@]\n",
                            result.promptTokens.count, ms(result.promptNanoseconds), result.tokens.count, tps,
                            result.stopReason.rawValue))
        }
    }

    private func ms(_ ns: UInt64) -> Double { (Double(ns) / 1e4).rounded() / 100 }
}
