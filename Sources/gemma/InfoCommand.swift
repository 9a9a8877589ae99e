// `gemma info`: what a GGUF model file, a gemma.cpp .sbs file or a Hugging Face folder holds: architecture, hyperparameters, tensors by type, parameters, size.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaModel
import GemmaServer

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a model's architecture, hyperparameters and tensors.")

    @Argument(help: "GGUF model file, gemma.cpp .sbs file or Hugging Face folder (default: the fetched Gemma 3 270M Q4_K_M).")
    var modelPath: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let path = try ModelOption.resolve(modelPath).path
        let report: InfoReport
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue
            || path.hasSuffix(".safetensors") || path.hasSuffix("config.json") || path.hasSuffix(".safetensors.index.json") {
            // A Hugging Face folder: its config must read (there is no other source of the hyperparameters).
            do { report = InfoReport(path: path, checkpoint: try Checkpoint.open(path: path)) } catch {
                throw ExitCodeError(message: "\(path): \(error)")
            }
        } else if path.hasSuffix(".sbs") || SbsFile.hasMagic(path: path) {
            // A gemma.cpp .sbs file: shown even when its config is none this engine runs (printed as a warning).
            do { report = InfoReport(path: path, sbs: try SbsFile(path: path)) } catch {
                throw ExitCodeError(message: "\(path): \(error)")
            }
        } else {
            // A GGUF file: shown even when it is no Gemma 3 (the config error is printed as a warning).
            let file: GGUFFile
            do { file = try GGUFFile(path: path) } catch {
                throw ExitCodeError(message: "\(path): \(error)")
            }
            report = InfoReport(path: path, file: file)
        }
        print(json ? report.json() : report.text())
        if let e = report.configError, !json { FileHandle.standardError.write(Data("warning: \(e)\n".utf8)) }
    }
}

extension ModelOption {
    init(model: String?) {
        self.init()
        self.model = model
    }
}

/// An error that ArgumentParser prints as "Error: message" and exits 1 with, without a usage banner.
struct ExitCodeError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The facts `gemma info` shows, gathered once for both output forms.
struct InfoReport {
    let path: String
    /// "gguf", "safetensors" or "sbs".
    let format: String
    /// Bytes on disk: the GGUF file, or the folder's weight files.
    let fileSize: Int
    let ggufVersion: Int?
    let architecture: String
    let name: String
    /// Every tensor: its stored type and element count.
    let tensors: [(type: String, elements: Int)]
    let config: Gemma3Config?
    let configError: String?
    /// Format-specific facts shown after the name (.sbs: layout, gemma.cpp model, wrapping, tokenizer).
    var extra: [(String, Any)] = []

    init(path: String, file: GGUFFile) {
        self.path = path
        format = "gguf"
        fileSize = file.fileSize
        ggufVersion = Int(file.version)
        architecture = file.metadata["general.architecture"]?.string ?? "unknown"
        name = file.metadata["general.name"]?.string ?? ""
        tensors = file.tensors.map { ("\($0.type)", $0.elementCount) }
        do { config = try Gemma3Config(gguf: file); configError = nil } catch {
            config = nil
            configError = "\(error)"
        }
    }

    /// A Hugging Face folder, opened.
    init(path: String, checkpoint c: Checkpoint) {
        self.path = path
        format = "safetensors"
        let folder = c.directory ?? path
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        fileSize = files.filter { $0.hasSuffix(".safetensors") }.reduce(0) { total, f in
            total + ((try? FileManager.default.attributesOfItem(atPath: folder + "/" + f)[.size] as? Int) ?? 0)
        }
        ggufVersion = nil
        var arch = "unknown"
        if let data = FileManager.default.contents(atPath: folder + "/config.json"), let j = try? JSONValue.parse([UInt8](data)) {
            if case let .array(a)? = j["architectures"], case let .string(first)? = a.first { arch = first }
            else if case let .string(t)? = j["model_type"] { arch = t }
        }
        architecture = arch
        name = URL(fileURLWithPath: folder).standardizedFileURL.lastPathComponent
        tensors = c.source.tensorNames.compactMap { n in
            c.source.sourceTensor(named: n).map { ($0.storedType, $0.shape.reduce(1, *)) }
        }
        config = c.config
        configError = nil
    }

    /// A gemma.cpp .sbs file: its stored (or deduced) config, tensors as gemma.cpp stores them (sfp, bf16, f32).
    init(path: String, sbs file: SbsFile) {
        self.path = path
        format = "sbs"
        fileSize = file.storage.count
        ggufVersion = nil
        let stored = file.config
        architecture = "gemma.cpp " + (stored?.modelName ?? "unknown")
        name = stored?.displayName ?? ""
        tensors = file.tensors.map { ("\($0.type)", $0.rows * $0.cols) }
        if let stored {
            do { config = try Gemma3Config(sbs: stored); configError = nil } catch {
                config = nil
                configError = "\(error)"
            }
        } else {
            config = nil
            configError = "a pre-2025 file without a config blob, of no Gemma 3 size gemma.cpp knows"
        }
        extra = [("sbs_layout", file.store.layout.rawValue + (file.isLegacy ? " (pre-2025 keys)" : "")),
                 ("blobs", file.store.blobs.count),
                 ("sbs_config", stored == nil ? "none" : file.configIsDeduced ? "deduced from the layer count" : "stored"),
                 ("prompt_wrapping", stored?.wrappingName ?? "unknown"),
                 ("weight_type", stored.flatMap { SbsType(rawValue: $0.weight) }.map { "\($0)" } ?? "unknown"),
                 ("tokenizer", file.tokenizerOrigin.map { $0 == "blob" ? "tokenizer blob, \(file.tokenizerModel?.count ?? 0) bytes" : $0 } ?? "none")]
        let scaled = file.tensors.filter { $0.scale != 1 }.map(\.scale)
        if let lo = scaled.min(), let hi = scaled.max() {
            extra.append(("sfp_scales", "\(scaled.count) tensors, \(lo) ... \(hi)"))
        }
    }

    var parameterCount: Int { tensors.reduce(0) { $0 + $1.elements } }
    var tensorsByType: [(String, Int)] {
        Dictionary(grouping: tensors, by: \.type).map { ($0.key, $0.value.count) }.sorted { $0.0 < $1.0 }
    }

    func fields() -> [(String, Any)] {
        var f: [(String, Any)] = [("path", path), ("format", format), ("file_size", fileSize)]
        if let v = ggufVersion { f.append(("gguf_version", v)) }
        f += [
            ("architecture", architecture),
            ("name", name),
        ]
        f += extra
        f += [
            ("tensor_count", tensors.count),
            ("tensors_by_type", tensorsByType),
            ("parameter_count", parameterCount),
        ]
        if let c = config {
            let globals = c.layers.enumerated().filter { $0.element.isGlobal }.map(\.offset)
            f += [
                ("vocab_size", c.vocabSize), ("context_length", c.maxPositionEmbeddings),
                ("embedding_length", c.hiddenSize), ("block_count", c.numHiddenLayers),
                ("feed_forward_length", c.intermediateSize), ("head_count", c.numAttentionHeads),
                ("head_count_kv", c.numKeyValueHeads), ("key_length", c.headDim), ("value_length", c.headDim),
                ("sliding_window", c.slidingWindow), ("global_layers", globals),
                ("rope_freq_base", Double(c.ropeTheta)), ("rope_freq_base_local", Double(c.ropeLocalBaseFreq)),
                ("rope_scaling_global", c.ropeScalingFactor.map { ["type": "linear", "factor": Double($0)] as [String: Any] } ?? NSNull()),
                ("rms_norm_eps", Double(c.rmsNormEps)), ("query_pre_attn_scalar", Double(c.queryPreAttnScalar)),
                ("size", c.knownSize?.rawValue ?? "unknown"),
            ]
        } else if let e = configError {
            f.append(("config_error", e))
        }
        return f
    }

    func json() -> String {
        func render(_ v: Any) -> String {
            switch v {
            case let s as String: return jsonString(s)
            case let i as Int: return "\(i)"
            case let d as Double: return d == d.rounded() && abs(d) < 1e15 ? "\(Int(d))" : "\(d)"
            case let a as [Int]: return "[" + a.map(String.init).joined(separator: ",") + "]"
            case let pairs as [(String, Int)]: return "{" + pairs.map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ",") + "}"
            case let d as [String: Any]: return "{" + d.keys.sorted().map { "\(jsonString($0)):\(render(d[$0]!))" }.joined(separator: ",") + "}"
            case is NSNull: return "null"
            default: return jsonString("\(v)")
            }
        }
        return "{" + fields().map { "\(jsonString($0.0)):\(render($0.1))" }.joined(separator: ",") + "}"
    }

    func text() -> String {
        var lines: [String] = []
        for (k, v) in fields() {
            let value: String
            switch v {
            case let pairs as [(String, Int)]: value = pairs.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
            case let a as [Int]: value = a.map(String.init).joined(separator: ", ")
            case let d as [String: Any]: value = d.keys.sorted().map { "\($0) \(d[$0]!)" }.joined(separator: ", ")
            case is NSNull: value = "none"
            default: value = "\(v)"
            }
            lines.append(k.padding(toLength: 24, withPad: " ", startingAt: 0) + value)
        }
        return lines.joined(separator: "\n")
    }
}

/// A JSON string literal (the server's serializer, so the CLI and the API escape alike).
func jsonString(_ s: String) -> String { JSONValue.string(s).serialized }
