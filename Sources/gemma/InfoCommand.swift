// `gemma info`: what a GGUF model file holds: architecture, hyperparameters, tensors by type, parameters, size.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaModel
import GemmaServer

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a model's architecture, hyperparameters and tensors.")

    @Argument(help: "GGUF model file (default: the fetched Gemma 3 270M Q4_K_M).")
    var modelPath: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let path = try ModelOption(model: modelPath).resolve()
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch {
            throw ExitCodeError(message: "\(path): \(error)")
        }
        let report = InfoReport(path: path, file: file)
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
    let file: GGUFFile
    let config: Gemma3Config?
    let configError: String?

    init(path: String, file: GGUFFile) {
        self.path = path
        self.file = file
        do { config = try Gemma3Config(gguf: file); configError = nil } catch {
            config = nil
            configError = "\(error)"
        }
    }

    var architecture: String { file.metadata["general.architecture"]?.string ?? "unknown" }
    var parameterCount: Int { file.tensors.reduce(0) { $0 + $1.elementCount } }
    var tensorsByType: [(String, Int)] {
        Dictionary(grouping: file.tensors, by: \.type).map { ("\($0.key)", $0.value.count) }.sorted { $0.0 < $1.0 }
    }

    func fields() -> [(String, Any)] {
        var f: [(String, Any)] = [
            ("path", path), ("file_size", file.fileSize), ("gguf_version", Int(file.version)),
            ("architecture", architecture),
            ("name", file.metadata["general.name"]?.string ?? ""),
            ("tensor_count", file.tensors.count),
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
