// `gemma perplexity`: perplexity of a text file by llama-perplexity's method.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaGenerate

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a text file, by llama-perplexity's method.",
        discussion: "One trailing newline is stripped and the text is tokenized with BOS (special tokens as plain text). The tokens are cut into floor(n / ctx) chunks; each chunk's first token is replaced by BOS and it is evaluated from an empty cache; the predictions at positions ctx/2 ... ctx-2 are scored.")

    @OptionGroup(title: "Model") var model: ModelRunOptions
    @Option(help: "The text file.") var file: String
    @Option(help: "Tokens per chunk.") var ctx = 512
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw ExitCodeError(message: "cannot read \(file)") }
        var text = String(decoding: data, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        let loaded = try model.load(progress: false)
        let ids = loaded.tokenizer.encode(text, addSpecial: true, parseSpecial: false).map(Int.init)
        let start = Date()
        let r: PerplexityResult
        do {
            r = try Perplexity.evaluate(model: loaded.model, tokens: ids, ctx: ctx) { done, total in
                writeErr("\r[perplexity] chunk \(done)/\(total)" + (done == total ? "\n" : ""))
            }
        } catch {
            throw ExitCodeError(message: "\(error)")
        }
        let secs = Date().timeIntervalSince(start)
        if json {
            print("{\"ppl\":\(r.ppl),\"chunks\":\(r.chunks),\"ctx\":\(r.ctx),\"scored\":\(r.scored),\"tokens\":\(ids.count),\"stderr\":\(r.standardError),\"per_chunk\":[\(r.perChunk.map { "\($0)" }.joined(separator: ","))],\"seconds\":\((secs * 100).rounded() / 100)}")
        } else {
            print(String(format: "PPL = %.4f +/- %.5f (%d chunks of %d, %d tokens scored, %d tokens in the text, %.1f s)",
                         r.ppl, r.standardError, r.chunks, r.ctx, r.scored, ids.count, secs))
        }
    }
}
