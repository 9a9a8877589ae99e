// `gemma convert` as a library call: open the input (a GGUF file or a Hugging Face folder, through Checkpoint.open,
// with its vocabulary, chat template and sampling defaults), plan the output (ConversionPlan), then stream it to disk
// tensor by tensor. A GGUF output is written under a temporary name and renamed; a folder is built as
// OUTPUT.tmp-XXXXXX and renamed into place, so that OUTPUT never holds a half-written model. An existing OUTPUT is
// replaced only when asked (`force`), and only if it is what the conversion writes (a file, or a model folder).
import Foundation
import GemmaFormats
import GemmaModel
import GemmaTokenizer

/// How to convert.
public struct ConvertOptions: Sendable {
    /// The weight type; nil for no loss (see `ConversionPlan.defaultType`).
    public var type: ConvertType?
    /// Replace an existing output.
    public var force = false
    /// A Hugging Face folder's weights are split into shards of at most this many bytes (4 GB).
    public var maxShardBytes = 4_000_000_000
    /// Threads converting rows.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// GGUF only: the tied embedding's type instead of llama-quantize's rule for it (a release format's choice).
    public var embeddingType: TensorType?
    /// GGUF only: per-tensor types by output name, applied in order after every other rule (`gemma quantize --keep`).
    public var overrides: [TypeOverride] = []

    public init(type: ConvertType? = nil, force: Bool = false) {
        self.type = type
        self.force = force
    }
}

/// What a conversion reports while it runs.
public enum ConvertEvent: Sendable {
    /// A line the user should read (from the plan: fallbacks, skipped tensors, llama.cpp caveats).
    case note(String)
    /// Tensor `index` (from 1) of `count` is being written.
    case tensor(index: Int, count: Int, name: String, type: String)
}

/// What a finished conversion wrote.
public struct ConvertReport: Sendable {
    public let plan: ConversionPlan
    /// The output path (a GGUF file or a folder).
    public let output: String
    /// The files written, relative to the output folder (the file itself for GGUF).
    public let files: [String]
    /// Bytes of tensor data written.
    public let tensorBytes: Int
}

/// The input of a conversion, opened.
public struct ConversionInput: Sendable {
    public let checkpoint: Checkpoint
    public let vocabulary: Vocabulary
    public let chatTemplate: String?
    public let sampling: SamplingDefaults
    /// A name for general.name: the GGUF's own, or the folder's name.
    public let name: String?

    /// Opens a GGUF file, a gemma.cpp .sbs file or a Hugging Face folder; errors name the path and what is wrong.
    public init(path: String) throws(ConvertError) {
        do {
            checkpoint = try Checkpoint.open(path: path)
        } catch {
            throw .input(path: path, reason: Self.reason(error))
        }
        if let sbs = checkpoint.sbs, sbs.tokenizerModel == nil {
            throw .input(path: path, reason: "holds no tokenizer (no tokenizer blob, and no \(SbsFile.legacyTokenizerName) beside it)")
        }
        do {
            if let gguf = checkpoint.gguf {
                vocabulary = try Vocabulary(gguf: gguf.metadata)
                chatTemplate = gguf.metadata["tokenizer.chat_template"]?.string
                sampling = SamplingDefaults(gguf: gguf.metadata)
                name = gguf.metadata["general.name"]?.string
            } else if let sbs = checkpoint.sbs, let spm = sbs.tokenizerModel {
                vocabulary = try Vocabulary(sentencePieceModel: spm)
                chatTemplate = nil
                sampling = SamplingDefaults(checkpoint.generation)
                name = sbs.config.map(\.displayName).flatMap { $0.isEmpty ? nil : $0 }
            } else {
                let dir = checkpoint.path
                vocabulary = try Vocabulary(directory: dir)
                chatTemplate = Self.chatTemplate(folder: dir)
                sampling = SamplingDefaults(checkpoint.generation)
                name = URL(fileURLWithPath: dir).lastPathComponent
            }
        } catch {
            throw .input(path: path, reason: "tokenizer: \(error)")
        }
    }

    /// The chat template of a folder: tokenizer_config.json's "chat_template" string, else chat_template.jinja.
    static func chatTemplate(folder: String) -> String? {
        if let data = FileManager.default.contents(atPath: folder + "/tokenizer_config.json"),
           let json = try? JSONValue.parse([UInt8](data)), case let .string(t)? = json["chat_template"] {
            return t
        }
        return FileManager.default.contents(atPath: folder + "/chat_template.jinja").map { String(decoding: $0, as: UTF8.self) }
    }

    static func reason(_ error: ModelError) -> String {
        if case let .format(.io(_, reason)) = error { return reason }
        return error.description
    }
}

public enum Converter {
    /// Converts `input` (a GGUF file or a Hugging Face folder) to `output`: a GGUF file when its name ends in
    /// ".gguf", else a Hugging Face folder.
    ///
    /// - Parameters:
    ///   - progress: Called with the plan's notes first, then before each tensor.
    /// - Throws: `ConvertError` naming the input, the output, the tensor or the option that stops it; nothing is left
    ///   under `output` then (and a replaced output is still there).
    @discardableResult
    public static func convert(input: String, output: String, options: ConvertOptions = ConvertOptions(),
                               progress: (ConvertEvent) -> Void = { _ in }) throws(ConvertError) -> ConvertReport {
        let output = output.count > 1 && output.hasSuffix("/") ? String(output.dropLast()) : output
        let format = ConvertFormat(outputPath: output)
        if let type = options.type, !format.accepts(type) { throw .typeNotForFormat(type: type, format: format) }
        let replacing = try checkOutput(output, format: format, input: input, force: options.force)
        let source = try ConversionInput(path: input)
        let plan = try ConversionPlan(checkpoint: source.checkpoint, vocabulary: source.vocabulary, format: format,
                                      type: options.type, embeddingType: options.embeddingType, overrides: options.overrides)
        for note in plan.notes { progress(.note(note)) }
        switch format {
        case .gguf:
            return try writeGGUF(plan, source: source, to: output, options: options, progress: progress)
        case .huggingFace:
            return try writeFolder(plan, source: source, to: output, replacing: replacing, options: options, progress: progress)
        }
    }

    // MARK: - The output path

    /// Checks that `output` may be written; returns true when it exists and will be replaced.
    static func checkOutput(_ output: String, format: ConvertFormat, input: String, force: Bool) throws(ConvertError) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) else {
            let parent = (output as NSString).deletingLastPathComponent
            guard parent.isEmpty || FileManager.default.fileExists(atPath: parent) else {
                throw .output(path: output, reason: "its folder \(parent) does not exist")
            }
            return false
        }
        let a = URL(fileURLWithPath: output).resolvingSymlinksInPath().path
        let b = URL(fileURLWithPath: input).resolvingSymlinksInPath().path
        guard a != b else { throw .cannotReplace(path: output, reason: "it is the input") }
        guard force else { throw .outputExists(output) }
        switch (format, isDirectory.boolValue) {
        case (.gguf, true): throw .cannotReplace(path: output, reason: "it is a folder, and the output is a GGUF file")
        case (.huggingFace, false): throw .cannotReplace(path: output, reason: "it is a file, and the output is a folder")
        case (.huggingFace, true):
            guard FileManager.default.fileExists(atPath: output + "/config.json") else {
                throw .cannotReplace(path: output, reason: "it is not a model folder (it has no config.json)")
            }
        case (.gguf, false): break
        }
        return true
    }

    // MARK: - GGUF

    static func writeGGUF(_ plan: ConversionPlan, source: ConversionInput, to output: String, options: ConvertOptions,
                          progress: (ConvertEvent) -> Void) throws(ConvertError) -> ConvertReport {
        let metadata = GGUFExport.metadata(config: plan.checkpoint.config, vocabulary: plan.vocabulary, type: plan.type,
                                           name: source.name, chatTemplate: source.chatTemplate, sampling: source.sampling)
        let declared = plan.tensors.map { GGUFStreamWriter.Tensor(name: $0.name, type: $0.type, dimensions: $0.shape.reversed()) }
        let writer: GGUFStreamWriter
        do { writer = try GGUFStreamWriter(path: output, metadata: metadata, tensors: declared) } catch {
            throw .output(path: output, reason: error.description)
        }
        let bytes = try writeTensors(plan.tensors, plan: plan, options: options, first: 0, progress: progress) {
            (b) throws(FormatError) in try writer.write(b)
        }
        do { try writer.finish() } catch { throw .output(path: output, reason: error.description) }
        return ConvertReport(plan: plan, output: output, files: [(output as NSString).lastPathComponent], tensorBytes: bytes)
    }

    // MARK: - Hugging Face folder

    static func writeFolder(_ plan: ConversionPlan, source: ConversionInput, to output: String, replacing: Bool,
                            options: ConvertOptions, progress: (ConvertEvent) -> Void) throws(ConvertError) -> ConvertReport {
        let tmp = try makeTemporaryFolder(beside: output)
        var committed = false
        defer { if !committed { try? FileManager.default.removeItem(atPath: tmp) } }

        let c = plan.checkpoint.config
        let pad = plan.vocabulary.paddingID.map(Int.init)
        var files: [String] = []
        func put(_ name: String, _ bytes: [UInt8]) throws(ConvertError) {
            guard FileManager.default.createFile(atPath: tmp + "/" + name, contents: Data(bytes)) else {
                throw .output(path: tmp + "/" + name, reason: "cannot be written")
            }
            files.append(name)
        }
        func putJSON(_ name: String, _ json: JSONValue) throws(ConvertError) { try put(name, Array((json.pretty() + "\n").utf8)) }

        try putJSON("config.json", HuggingFaceExport.config(c, dtype: plan.type, paddingID: pad))
        try putJSON("generation_config.json", HuggingFaceExport.generationConfig(c, paddingID: pad, sampling: source.sampling))
        try put("tokenizer.model", plan.vocabulary.sentencePieceModel())
        var tokenizerConfig = plan.vocabulary.huggingFaceTokenizerConfig()
        if let template = source.chatTemplate, case var .object(pairs) = tokenizerConfig {
            pairs.append(("chat_template", .string(template)))
            tokenizerConfig = .object(pairs)
        }
        try putJSON("tokenizer_config.json", tokenizerConfig)

        let shards = HuggingFaceExport.shards(plan.tensors, maxShardBytes: options.maxShardBytes)
        var bytes = 0, index = 0
        for (i, shard) in shards.enumerated() {
            let name = HuggingFaceExport.shardName(i, of: shards.count)
            // Within a file, the safetensors library's order (dtype, then name).
            let ordered = shard.sorted { SafetensorsWriter.precedesLikeReference(($0.name, dtype(of: $0)), ($1.name, dtype(of: $1))) }
            let writer: SafetensorsStreamWriter
            do {
                writer = try SafetensorsStreamWriter(
                    path: tmp + "/" + name, metadata: [("format", "pt")],
                    tensors: ordered.map { .init(name: $0.name, dtype: dtype(of: $0), shape: $0.shape) })
            } catch {
                throw .output(path: tmp + "/" + name, reason: error.description)
            }
            bytes += try writeTensors(ordered, plan: plan, options: options, first: index, progress: progress) {
                (b) throws(FormatError) in try writer.write(b)
            }
            index += ordered.count
            do { try writer.finish() } catch { throw .output(path: tmp + "/" + name, reason: error.description) }
            files.append(name)
        }
        if shards.count > 1 { try putJSON(SafetensorsCheckpoint.indexFileName, HuggingFaceExport.index(shards)) }

        try moveIntoPlace(tmp, output, replacing: replacing)
        committed = true
        return ConvertReport(plan: plan, output: output, files: files, tensorBytes: bytes)
    }

    static func dtype(of t: PlannedTensor) -> SafetensorsDType {
        ConvertType(t.type)?.safetensorsDType ?? .F32  // the plan gives a folder only f32, f16 or bf16
    }

    /// A new empty folder OUTPUT.tmp-XXXXXX beside `output`.
    static func makeTemporaryFolder(beside output: String) throws(ConvertError) -> String {
        var template = Array((output + ".tmp-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw .output(path: output, reason: "cannot create a temporary folder beside it: \(String(cString: strerror(errno)))")
        }
        // mkdtemp makes it private (0700); the model folder gets the permissions a new folder would have.
        let mask = umask(0)
        umask(mask)
        chmod(made, 0o777 & ~mask)
        return String(cString: made)
    }

    /// Renames the finished folder `tmp` to `output`; an existing `output` is moved aside first and deleted once the
    /// new one is in place (put back if the rename fails).
    static func moveIntoPlace(_ tmp: String, _ output: String, replacing: Bool) throws(ConvertError) {
        var old: String?
        if replacing {
            let aside = tmp + ".old"
            guard rename(output, aside) == 0 else {
                throw .output(path: output, reason: "cannot move the existing folder aside: \(String(cString: strerror(errno)))")
            }
            old = aside
        }
        guard rename(tmp, output) == 0 else {
            let reason = String(cString: strerror(errno))
            if let old { rename(old, output) }
            throw .output(path: output, reason: "cannot rename \(tmp) to it: \(reason)")
        }
        if let old { try? FileManager.default.removeItem(atPath: old) }
    }

    // MARK: - Tensors

    /// Writes `tensors` through `write` in order, reporting progress; returns the bytes written.
    static func writeTensors(_ tensors: [PlannedTensor], plan: ConversionPlan, options: ConvertOptions, first: Int,
                             progress: (ConvertEvent) -> Void,
                             write: (UnsafeRawBufferPointer) throws(FormatError) -> Void) throws(ConvertError) -> Int {
        var bytes = 0
        for (i, t) in tensors.enumerated() {
            progress(.tensor(index: first + i + 1, count: plan.tensors.count, name: t.name, type: t.type.description))
            guard let source = plan.checkpoint.source.sourceTensor(named: t.sourceName) else {
                throw .input(path: plan.checkpoint.path, reason: "weight \(t.sourceName) is missing")
            }
            try TensorProducer.produce(t, from: source, threads: options.threads) { (b) throws(ConvertError) in
                do throws(FormatError) { try write(b) } catch { throw .output(path: "tensor \(t.name)", reason: error.description) }
                bytes += b.count
            }
        }
        return bytes
    }
}
