// `gemma memory`: weight and KV-cache memory of a Gemma 3 model at a context length, and the reproduction of
// Table 3 of the Gemma 3 Technical Report.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaModel

struct Memory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Plan weight and KV-cache memory for a context length, weight format and KV type.",
        discussion: """
            Counts: weights = the token embedding (vocab x hidden, counted once: the output head is tied), every \
            layer's q, k, v, o, gate, up, down matrices in the weight format, norm vectors (f32 for f32 and GGUF \
            types, else 16-bit), and with --vision the SigLIP vision tower and projector (416,866,032 + \
            1152 x (hidden + 1) parameters; the report's "417M"). With --model, the file's tensors at their stored \
            bytes, unless --weights is given. KV = K and V, kv_heads x head_dim values per position and layer: \
            local layers keep min(window, context) positions (a ring), global layers keep the context; the \
            all-global line is the cache without that saving. int4 = 4 bits + a bf16 scale per output channel; \
            int4-b32 = 4 bits + a 16-bit scale per 32 weights (Q4_0, 4.5 bits); sfp8 = 8 bits; GGUF types at \
            their block size (q8_0 KV = 34 bytes per 32 values).

            Units: GB = 10^9 bytes (what the report's Table 3 uses: 1B at bf16 is 1.0e9 params x 2 bytes = 2.0 GB, \
            1.86 GiB); GiB = 2^30 bytes is shown beside it.

            --report prints Table 3 of the Gemma 3 report beside our count: 32,768 tokens, weights with the \
            embedding and (4B, 12B, 27B) the bf16 vision tower, and "+KV" = a bf16 cache of all 32,768 positions \
            in every layer, which is what the report's numbers match (it does not take the sliding-window saving; \
            its 12B and 27B KV are about 2 GB above any count from the published configs).
            """)

    @Option(help: "Model size: \(Gemma3Size.allCases.map(\.rawValue).joined(separator: ", ")) (default 270m).")
    var size: String?

    @Option(name: .shortAndLong, help: "GGUF model: read its config and its tensors' bytes.")
    var model: String?

    @Option(help: "Context length in tokens.")
    var context = 32_768

    @Option(help: "Weight format: \(WeightFormat.namedFormats.joined(separator: ", ")), or a GGUF type (q4_0, q8_0, q4_k, q6_k, ...). Default bf16 with --size; the file's own with --model.")
    var weights: String?

    @Option(help: "KV storage: \(KVStorage.allCases.map(\.rawValue).joined(separator: ", ")).")
    var kv = "f16"

    @Flag(inversion: .prefixedNo, help: "Count the vision tower (bf16). Default: on for --size 4b, 12b, 27b; off for 270m, 1b and --model.")
    var vision: Bool?

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "Print Table 3 of the Gemma 3 report beside our count, with the difference per cell.")
    var report = false

    func validate() throws {
        if size != nil && model != nil { throw ValidationError("give --size or --model, not both") }
        if let s = size, Gemma3Size(rawValue: s.lowercased()) == nil {
            throw ValidationError("unknown size \(s): use \(Gemma3Size.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard context > 0 else { throw ValidationError("--context must be positive") }
        if let w = weights, WeightFormat(name: w) == nil {
            throw ValidationError("unknown weight format \(w): use \(WeightFormat.namedFormats.joined(separator: ", ")) or a GGUF type such as q4_0, q8_0, q4_k")
        }
        guard KVStorage(rawValue: kv.lowercased()) != nil else {
            throw ValidationError("unknown KV type \(kv): use \(KVStorage.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        if report {
            print(json ? Self.reportJSON() : Self.reportText())
            return
        }
        let storage = KVStorage(rawValue: kv.lowercased())!
        let format = weights.flatMap(WeightFormat.init(name:))
        let plan: MemoryPlan
        let source: String
        if let path = model {
            let file: GGUFFile
            let config: Gemma3Config
            do {
                file = try GGUFFile(path: path)
                config = try Gemma3Config(gguf: file)
            } catch {
                throw ExitCodeError(message: "\(path): \(error)")
            }
            let withVision = vision ?? false
            if let format {
                plan = MemoryPlan(config: config, context: context, weights: format, kv: storage, includeVision: withVision)
            } else {
                plan = MemoryPlan(config: config, file: file, context: context, kv: storage, includeVision: withVision)
            }
            source = path
        } else {
            let s = Gemma3Size(rawValue: (size ?? "270m").lowercased())!
            plan = MemoryPlan(size: s, context: context, weights: format ?? .bf16, kv: storage,
                              includeVision: vision ?? (s != .m270 && s != .b1))
            source = "size \(s.rawValue)"
        }
        print(json ? Self.json(plan, source: source) : Self.text(plan, source: source))
        if plan.exceedsContextLength && !json {
            FileHandle.standardError.write(Data("warning: context \(plan.context) exceeds the model's \(plan.config.maxPositionEmbeddings)\n".utf8))
        }
    }

    // MARK: Plan output

    static func lines(_ p: MemoryPlan) -> [(label: String, bytes: Int)] {
        let k = p.kv
        var l: [(String, Int)] = [
            ("weights: embedding", p.weights.embedding),
            ("weights: layers", p.weights.layers),
        ]
        if p.parameters.vision > 0 { l.append(("weights: vision", p.weights.vision)) }
        l += [
            ("weights total", p.weights.total),
            ("KV local  (\(k.localLayers) x \(k.localPositions) pos)", k.localBytes),
            ("KV global (\(k.globalLayers) x \(k.globalPositions) pos)", k.globalBytes),
            ("KV total", k.total),
            ("total", p.total),
            ("KV all-global (\(p.config.numHiddenLayers) x \(p.context) pos)", p.allGlobalKV),
            ("total, all-global KV", p.allGlobalTotal),
        ]
        return l
    }

    static func text(_ p: MemoryPlan, source: String) -> String {
        let name = p.config.knownSize.map { "Gemma 3 \($0.rawValue.uppercased())" } ?? "Gemma 3"
        let w = p.weightFormat.map(\.description) ?? "as stored in the file"
        var out = ["\(name) (\(source)): context \(p.context), weights \(w)"
            + (p.parameters.vision > 0 ? " + vision tower \(p.visionFormat)" : "") + ", KV \(p.kvStorage.rawValue)",
            "parameters: embedding \(group(p.parameters.embedding)), layers \(group(p.parameters.layers))"
            + (p.parameters.vision > 0 ? ", vision \(group(p.parameters.vision))" : "")
            + ", total \(group(p.parameters.total))",
            "",
            pad("", 36) + lpad("bytes", 18) + lpad("GB", 10) + lpad("GiB", 10)]
        for (label, bytes) in lines(p) {
            out.append(pad(label, 36) + lpad(group(bytes), 18) + lpad(String(format: "%.3f", Double(bytes) / 1e9), 10)
                       + lpad(String(format: "%.3f", Double(bytes) / 1_073_741_824), 10))
        }
        if p.kv.total > 0 {
            out.append("")
            out.append(String(format: "all-global KV / KV = %.2fx", Double(p.allGlobalKV) / Double(p.kv.total)))
        }
        out.append("GB = 10^9 bytes, GiB = 2^30 bytes.")
        return out.joined(separator: "\n")
    }

    static func json(_ p: MemoryPlan, source: String) -> String {
        var f: [String] = [
            "\"source\":\(jsonString(source))",
            "\"size\":" + (p.config.knownSize.map { jsonString($0.rawValue) } ?? "null"),
            "\"context\":\(p.context)",
            "\"weights_format\":" + (p.weightFormat.map { jsonString($0.description) } ?? "\"file\""),
            "\"kv_type\":\(jsonString(p.kvStorage.rawValue))",
            "\"vision\":\(p.parameters.vision > 0)",
            "\"parameters\":{\"embedding\":\(p.parameters.embedding),\"layers\":\(p.parameters.layers),\"vision\":\(p.parameters.vision),\"total\":\(p.parameters.total)}",
            "\"weights_bytes\":{\"embedding\":\(p.weights.embedding),\"layers\":\(p.weights.layers),\"vision\":\(p.weights.vision),\"total\":\(p.weights.total)}",
            "\"kv_bytes\":{\"local\":\(p.kv.localBytes),\"global\":\(p.kv.globalBytes),\"total\":\(p.kv.total),\"local_layers\":\(p.kv.localLayers),\"local_positions\":\(p.kv.localPositions),\"global_layers\":\(p.kv.globalLayers),\"global_positions\":\(p.kv.globalPositions)}",
            "\"total_bytes\":\(p.total)",
            "\"all_global_kv_bytes\":\(p.allGlobalKV)",
            "\"all_global_total_bytes\":\(p.allGlobalTotal)",
            "\"unit_note\":\"bytes; GB = 1e9 bytes\"",
        ]
        if p.exceedsContextLength { f.append("\"exceeds_context_length\":true") }
        return "{" + f.joined(separator: ",") + "}"
    }

    // MARK: Table 3

    static func reportText() -> String {
        var out = [
            "Table 3 of the Gemma 3 Technical Report (arXiv:2503.19786) beside our count.",
            "GB = 10^9 bytes; 32,768 tokens; weights include the 262,144 x hidden embedding and, for 4B/12B/27B, the bf16",
            "vision tower (417M); +KV = bf16 K and V for all 32,768 positions in every layer (no sliding-window saving).",
            "",
            pad("size", 6) + pad("column", 16) + lpad("report", 8) + lpad("ours", 9) + lpad("diff", 9)
                + lpad("+KV report", 12) + lpad("ours", 9) + lpad("diff", 9),
        ]
        let cells = GemmaReportTable3.reproduction()
        for size in GemmaReportTable3.sizes {
            for column in GemmaReportTable3.Column.allCases {
                let w = cells.first { $0.size == size && $0.column == column && !$0.withKV }!
                let k = cells.first { $0.size == size && $0.column == column && $0.withKV }!
                out.append(pad(size.rawValue.uppercased(), 6) + pad(column.header, 16)
                           + lpad(String(format: "%.1f", w.reportedGB), 8) + lpad(String(format: "%.2f", w.gb), 9)
                           + lpad(String(format: "%+.1f%%", 100 * w.relativeDifference), 9)
                           + lpad(String(format: "%.1f", k.reportedGB), 12) + lpad(String(format: "%.2f", k.gb), 9)
                           + lpad(String(format: "%+.1f%%", 100 * k.relativeDifference), 9))
            }
        }
        out.append("")
        out.append("KV at 32,768 tokens, bf16 (GB): all-global (table) vs sliding-window ring (what the engine allocates)")
        for size in GemmaReportTable3.sizes {
            let p = GemmaReportTable3.plan(size, .bf16)
            let reportKV = GemmaReportTable3.reported[size]![.bf16]!
            out.append(pad(size.rawValue.uppercased(), 6)
                       + String(format: "report %.1f   all-global %.2f   ring %.2f (local %.3f + global %.2f)   %.1fx",
                                reportKV.withKV - reportKV.weights, Double(p.allGlobalKV) / 1e9, Double(p.kv.total) / 1e9,
                                Double(p.kv.localBytes) / 1e9, Double(p.kv.globalBytes) / 1e9,
                                Double(p.allGlobalKV) / Double(p.kv.total)))
        }
        return out.joined(separator: "\n")
    }

    static func reportJSON() -> String {
        let cells = GemmaReportTable3.reproduction().map { c in
            "{\"size\":\(jsonString(c.size.rawValue)),\"column\":\(jsonString(c.column.rawValue)),\"with_kv\":\(c.withKV),"
                + "\"report_gb\":\(c.reportedGB),\"ours_bytes\":\(c.bytes),\"ours_gb\":\(round3(c.gb)),"
                + "\"diff_percent\":\(round3(100 * c.relativeDifference))}"
        }
        return "{\"context\":\(GemmaReportTable3.context),\"unit\":\"GB = 1e9 bytes\",\"kv\":\"bf16, all layers at full context\",\"cells\":["
            + cells.joined(separator: ",") + "]}"
    }

    // MARK: Formatting

    static func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
    static func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
    static func group(_ n: Int) -> String {
        let s = String(n.magnitude)
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }
}
