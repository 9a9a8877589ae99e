// `gemma dump-logits` (hidden): every position's logits of one causal sequence, raw float32 positions x vocab,
// for scripts/fidelity-vs-llamacpp.sh and scripts/reference/fidelity.py. Streams each row to the file as it is
// produced, so 1024 x 262144 positions (1 GB) never sit in memory.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaModel

struct DumpLogits: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-logits",
        abstract: "Write the logits of every position of a token sequence as raw float32 (positions x vocab).",
        discussion: "IDS.json is a JSON array of token ids, or an object with \"input_ids\" (or \"ids\"); the ids are used as given (include BOS yourself). They run as one causal sequence from position 0; row i of the output is the logits after ids[0...i], little-endian float32, vocab entries per row.",
        shouldDisplay: false)

    @OptionGroup(title: "Model") var model: ModelRunOptions
    @Option(name: .customLong("ids-file"), help: "JSON array of token ids, or an object with \"input_ids\".") var idsFile: String
    @Option(help: "Output file: positions x vocab float32, row-major, no header.") var out: String
    @Option(help: "Tokens per forward step (prompt chunk size).") var batch = 64

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    func run() throws {
        let ids = try Self.readIDs(idsFile)
        guard !ids.isEmpty else { throw ExitCodeError(message: "\(idsFile): no token ids") }
        let m = try model.load(progress: false).model
        let vocab = m.config.vocabSize
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocab }) {
            throw ExitCodeError(message: "\(idsFile): token id \(bad) is outside the vocabulary (0..<\(vocab))")
        }
        guard ids.count <= m.config.maxPositionEmbeddings else {
            throw ExitCodeError(message: "\(ids.count) ids exceed the model's context of \(m.config.maxPositionEmbeddings)")
        }
        guard FileManager.default.createFile(atPath: out, contents: nil), let handle = FileHandle(forWritingAtPath: out) else {
            throw ExitCodeError(message: "cannot create \(out)")
        }
        defer { try? handle.close() }
        let state = m.makeState(capacity: ids.count, maxBatch: min(batch, ids.count))
        var written = 0
        var writeError: Error?
        let start = DispatchTime.now().uptimeNanoseconds
        try m.forward(ids, state: state, logits: .all) { i, logits in
            guard writeError == nil else { return }
            precondition(i == written && logits.count == vocab, "logits out of order or of the wrong size")
            do { try handle.write(contentsOf: Data(buffer: logits)) } catch { writeError = error }
            written += 1
        }
        if let writeError { throw ExitCodeError(message: "writing \(out): \(writeError)") }
        let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        writeErr(String(format: "dump-logits: %d positions x %d vocab float32 -> %@ (%@ precision, %@ KV, batch %d, %.1f s)\n",
                        written, vocab, out, model.exact ? "exact" : "fast", model.kv.rawValue, batch, secs))
    }

    /// A JSON array of ids, or an object with "input_ids" (or "ids") holding one.
    static func readIDs(_ path: String) throws -> [Int] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ExitCodeError(message: "cannot read \(path)") }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data) } catch {
            throw ExitCodeError(message: "\(path): not JSON (\(error.localizedDescription))")
        }
        let list: Any? = (json as? [Any]) ?? (json as? [String: Any]).flatMap { $0["input_ids"] ?? $0["ids"] }
        guard let array = list as? [Any] else {
            throw ExitCodeError(message: "\(path): expected a JSON array of ids or an object with \"input_ids\"")
        }
        return try array.map { item in
            guard let n = item as? NSNumber, let id = Int(exactly: n.doubleValue) else {
                throw ExitCodeError(message: "\(path): \(item) is not an integer token id")
            }
            return id
        }
    }
}
