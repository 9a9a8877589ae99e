// `gemma convert INPUT OUTPUT [--type T]`: a Hugging Face folder to a GGUF file (quantized if asked), a GGUF file to
// a Hugging Face folder (f32/f16/bf16), or either to the other kind again. The work is GemmaConvert's Converter;
// this prints its notes and a progress line per tensor on stderr.
import ArgumentParser
import Foundation
import GemmaConvert
import GemmaFormats

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a Hugging Face model folder to a GGUF file, or a GGUF file to a Hugging Face folder.",
        discussion: """
            OUTPUT is a GGUF file when its name ends in .gguf, else a Hugging Face folder (config.json, \
            generation_config.json, model.safetensors or shards with an index, tokenizer.model, tokenizer_config.json). \
            GGUF files get llama.cpp's metadata and tensor names, norms stored as 1 + w, and matrices at --type (norms \
            stay f32; the tied embedding follows llama-quantize's rule for the output head; rows that are not whole \
            blocks fall back per tensor, and each fallback is reported). Folders hold f32, f16 or bf16 weights with \
            norms stored as w. Without --type nothing is lost: f32, or bf16/f16 when the input is all bf16/f16. \
            Example: gemma convert model.gguf out-folder --type f32
            """)

    @Argument(help: "A Hugging Face model folder or a GGUF file.") var input: String
    @Argument(help: "A .gguf file to write, or a folder to create.") var output: String
    @Option(help: "Weight type: \(ConvertType.allCases.map(\.rawValue).joined(separator: ", ")) (folders: f32, f16, bf16).")
    var type: String?
    @Flag(help: "Replace an existing OUTPUT (a GGUF file, or a folder holding a config.json).") var force = false
    @Option(help: "Largest safetensors shard of a folder, in bytes (K, M, G suffixes: powers of 1000).")
    var maxShardSize = "4G"
    @Option(name: [.customShort("t"), .customLong("threads")], help: "Threads converting rows (default: all cores).")
    var threads: Int?

    func run() throws {
        var options = ConvertOptions(force: force)
        do { options.type = try type.map(ConvertType.named) } catch { throw ValidationError("\(error)") }
        guard let shard = Self.parseSize(maxShardSize), shard > 0 else {
            throw ValidationError("--max-shard-size \(maxShardSize) is not a size in bytes (e.g. 4G, 500M, 1000000)")
        }
        options.maxShardBytes = shard
        if let threads {
            guard threads >= 1 else { throw ValidationError("--threads must be >= 1") }
            options.threads = threads
        }
        let start = Date()
        let report = try Self.convertShowingProgress(input: input, output: output, options: options)
        let seconds = Date().timeIntervalSince(start)
        let kind = report.plan.format == .gguf ? "GGUF file" : "folder (\(report.files.joined(separator: ", ")))"
        writeErr(String(format: "wrote %@ %@: %d tensors, %@ weights, %.2f GB of tensor data in %.1f s\n",
                        kind, report.output, report.plan.tensors.count, report.plan.type.rawValue,
                        Double(report.tensorBytes) / 1e9, seconds))
    }

    /// Runs the converter with its notes and a progress line per tensor on stderr.
    static func convertShowingProgress(input: String, output: String, options: ConvertOptions) throws -> ConvertReport {
        let display = ConversionProgress()
        defer { display.end() }
        do {
            return try Converter.convert(input: input, output: output, options: options, progress: display.show)
        } catch {
            throw ExitCodeError(message: "\(error)")
        }
    }

    /// "4G", "500M", "64K" (powers of 1000) or a number of bytes.
    static func parseSize(_ s: String) -> Int? {
        let units: [Character: Int] = ["K": 1000, "M": 1_000_000, "G": 1_000_000_000, "T": 1_000_000_000_000]
        var text = s.uppercased()
        if text.hasSuffix("B") { text.removeLast() }
        var scale = 1
        if let u = text.last, let m = units[u] { scale = m; text.removeLast() }
        guard let v = Double(text), v.isFinite, v > 0 else { return nil }
        return Int(exactly: (v * Double(scale)).rounded())
    }
}

/// A conversion's notes and a line per tensor on stderr: one line rewritten in place on a terminal, every line in a
/// log (`gemma convert`, `gemma quantize`).
final class ConversionProgress {
    private let interactive = isatty(STDERR_FILENO) == 1
    private var shown = false

    func show(_ event: ConvertEvent) {
        switch event {
        case let .note(text):
            if interactive && shown { writeErr("\n") }
            shown = false
            writeErr("note: \(text)\n")
        case let .tensor(i, n, name, type):
            let line = "[\(i)/\(n)] \(name) \(type)"
            writeErr(interactive ? "\r\u{1B}[K" + line : line + "\n")
            shown = true
        }
    }

    /// Ends the in-place line.
    func end() {
        if interactive && shown { writeErr("\n") }
        shown = false
    }
}
