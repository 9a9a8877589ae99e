// `gemma quantize INPUT OUTPUT --to FORMAT [--keep NAME=TYPE ...]`: any model we read (GGUF, Hugging Face folder) to a
// release format with its per-tensor policy (QuantizeFormat), through the converter: progress per tensor, the output
// written under a temporary name and renamed.
import ArgumentParser
import Foundation
import GemmaConvert
import GemmaFormats
import GemmaModel

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a model to one of the Gemma 3 report's release formats or a GGUF type.",
        discussion: """
            FORMAT: \(QuantizeFormat.allCases.map(\.rawValue).joined(separator: ", ")). int4-block is llama.cpp's \
            q4_0 (4 bits + an f16 scale per 32 weights) with the embedding kept f16, as Google's QAT GGUFs store it; \
            q4_0, q8_0, q4_k, q6_k follow llama-quantize (the tied embedding by its rule for the output head); \
            bf16, f16, f32 are plain. Norms stay f32. --keep NAME=TYPE stores the weight matrices whose GGUF name \
            matches NAME (* matches anything) as TYPE, e.g. --keep token_embd.weight=q8_0 --keep 'blk.*.ffn_down.weight=q6_K'. \
            int4-channel is the report's per-channel int4 (4 bits, one scale per row; dm/gemma's quantizer, the \
            embedding bf16) in a GGUF under a tensor type id outside ggml's range that llama.cpp refuses; sfp8 is \
            gemma.cpp's switched fp8 (8 bits, one scale per tensor, the embedding and norms bf16) in gemma.cpp's \
            .sbs container. \
            Example: gemma quantize model.gguf model-q4_0.gguf --to int4-block
            """)

    @Argument(help: "A GGUF file or a Hugging Face model folder.") var input: String
    @Argument(help: "The file to write (.sbs for sfp8, else .gguf).") var output: String
    @Option(name: .customLong("to"), help: "The format: \(QuantizeFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: String
    @Option(help: "NAME=TYPE: store the tensors named NAME (GGUF names, * matches anything) as TYPE. Repeatable.")
    var keep: [String] = []
    @Flag(help: "Replace an existing OUTPUT.") var force = false
    @Option(name: [.customShort("t"), .customLong("threads")], help: "Threads quantizing rows (default: all cores).")
    var threads: Int?

    func run() throws {
        let target: QuantizeFormat
        var options = ConvertOptions(force: force)
        do {
            target = try QuantizeFormat.named(format)
            options.overrides = try keep.map { (k) throws(ConvertError) in try TypeOverride(parsing: k) }
        } catch { throw ValidationError("\(error)") }
        if let threads {
            guard threads >= 1 else { throw ValidationError("--threads must be >= 1") }
            options.threads = threads
        }
        guard output.lowercased().hasSuffix(target.container) else {
            throw ValidationError("\(target.rawValue) is written as a \(target.container) file: name OUTPUT ...\(target.container)")
        }
        guard let type = target.ggufType else { return try writeSFP8(start: Date()) }
        options.type = type
        options.embeddingType = target.embeddingType
        writeErr("policy: \(target.policy)\n")
        let start = Date()
        let report = try Convert.convertShowingProgress(input: input, output: output, options: options)
        var counts: [String: Int] = [:]
        for t in report.plan.tensors { counts[t.type.description.lowercased(), default: 0] += 1 }
        let mix = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        writeErr(String(format: "wrote %@: %d tensors (%@), %.3f GB of tensor data in %.1f s\n", report.output,
                        report.plan.tensors.count, mix, Double(report.tensorBytes) / 1e9, Date().timeIntervalSince(start)))
        printComparison()
    }

    /// sfp8: the .sbs writer, with the same progress display and weight comparison.
    func writeSFP8(start: Date) throws {
        guard keep.isEmpty else {
            throw ValidationError("--keep is for GGUF outputs: an .sbs stores every matrix as SFP8, the embedding and norms bf16")
        }
        writeErr("policy: \(QuantizeFormat.sfp8.policy)\n")
        let display = ConversionProgress()
        let written: [SbsExport.Written]
        do {
            defer { display.end() }
            written = try Converter.writeSFP8(input: input, output: output, force: force, progress: display.show)
        } catch {
            throw ExitCodeError(message: "\(error)")
        }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        writeErr(String(format: "wrote %@: %d tensors (%d sfp8), %.3f GB in %.1f s\n", output, written.count,
                        written.filter { $0.type == .sfp }.count, Double(bytes) / 1e9, Date().timeIntervalSince(start)))
        printComparison()
    }

    /// The output's relative RMSE per tensor kind against the input's weights, on stdout.
    func printComparison() {
        do {
            let comparison = try WeightComparison(candidate: Checkpoint.open(path: output), reference: Checkpoint.open(path: input))
            let figures = comparison.relativeRMSE.map { String(format: "%@ %.3e", $0.kind, $0.value) }.joined(separator: ", ")
            print("relative RMSE against the input's weights: \(figures)")
        } catch {
            writeErr("note: could not compare the output's weights with the input's: \(error)\n")
        }
    }
}
