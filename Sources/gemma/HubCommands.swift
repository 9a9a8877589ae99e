// `gemma pull`, `gemma list`, `gemma rm`: models from the Hugging Face hub in its shared cache (GemmaHub).
import ArgumentParser
import Foundation
import GemmaHub

struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Download a model from the Hugging Face hub into its cache.",
        discussion: """
            REF is ORG/REPO[@REVISION][:FILE|:QUANT]. A repository of GGUF files gives one model file: the \
            quantization named (e.g. :Q8_0), else Q4_K_M, Q4_0, ... in that order of preference, else its first file \
            (all parts of a split file), with the repository's mmproj file (the vision encoder) when it has one. A \
            Hugging Face model folder gives its config, tokenizer, generation config and safetensors files, and \
            nothing else. Files go to the cache huggingface_hub uses ($HF_HUB_CACHE, else $HF_HOME/hub, else \
            ~/.cache/huggingface/hub), shared with transformers and llama.cpp: files already there are used, every \
            file is checked against the hub's sha256 (git blob id for small files) before it is used, and an \
            interrupted download resumes where it stopped; 429, 5xx answers and dropped connections are retried \
            with back-off (GEMMA_PULL_ATTEMPTS, default 6 attempts). HF_ENDPOINT names another hub (a mirror); HF_TOKEN \
            (or the token file `hf auth login` writes) opens gated repositories such as Google's Gemma ones after \
            their licence is accepted on the hub; HF_HUB_OFFLINE=1 uses the cache only. Every command's --model \
            takes the same REF once the model is pulled (or with --pull).
            """)

    @Argument(help: "ORG/REPO[@REVISION][:FILE|:QUANT], e.g. ggml-org/gemma-3-270m-it-GGUF:Q8_0 or google/gemma-3-270m (hf.co/ in front, as ollama takes it, is fine).")
    var reference: String

    func run() throws {
        guard let ref = HubReference(reference) else {
            throw ValidationError("\(reference) is not ORG/REPO[@REVISION][:FILE|:QUANT]")
        }
        let model = try HubAccess.pull(ref)
        print(model.model)
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the models in the Hugging Face hub cache.",
        discussion: "Each repository of the cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub) with its size and what it holds: GGUF files (with their quantization), a Hugging Face folder (text, or with vision), an mmproj file; unfinished downloads are counted apart.")

    @Flag(help: "One JSON object per repository.") var json = false

    func run() throws {
        let cache = HubCache()
        let entries = cache.entries()
        if entries.isEmpty && !json { writeErr("no models in \(cache.root)\n") }
        for e in entries {
            let kinds = Self.describe(e, cache)
            if json {
                let object: [String: Any] = ["repo": e.repo, "bytes": e.bytes, "partial_bytes": e.partialBytes, "refs": e.refs,
                                             "holds": kinds, "path": cache.folder(e.repo)]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                let partial = e.partialBytes > 0 ? String(format: " (+%.2f GB unfinished)", Double(e.partialBytes) / 1e9) : ""
                let name = e.repo.count < 44 ? e.repo + String(repeating: " ", count: 44 - e.repo.count) : e.repo
                print(name + String(format: " %8.2f GB", Double(e.bytes) / 1e9) + partial + "  " + kinds.joined(separator: ", "))
            }
        }
    }

    /// What a cached repository holds, from its newest snapshot's file names (and config.json for vision).
    static func describe(_ e: HubCache.Entry, _ cache: HubCache) -> [String] {
        let commit = e.refs["main"] ?? e.snapshots.keys.sorted().first
        guard let commit, let files = e.snapshots[commit] else { return e.partialBytes > 0 ? ["download unfinished"] : [] }
        var out: [String] = []
        for (path, _) in files where path.lowercased().hasSuffix(".gguf") {
            let name = (path as NSString).lastPathComponent
            out.append(name.lowercased().contains("mmproj") ? "mmproj \(name)" : "GGUF \(name)")
        }
        if files.contains(where: { $0.path == "config.json" }) && files.contains(where: { $0.path.hasSuffix(".safetensors") }) {
            let config = (try? String(contentsOfFile: cache.snapshot(e.repo, commit: commit) + "/config.json", encoding: .utf8)) ?? ""
            out.append(config.contains("\"vision_config\"") ? "HF folder (text and vision)" : "HF folder (text)")
        }
        return out
    }
}

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove a model from the Hugging Face hub cache.",
        discussion: "Removes every revision and file the cache holds of ORG/REPO (other programs using the same cache lose it too).")

    @Argument(help: "ORG/REPO.") var reference: String

    func run() throws {
        guard let ref = HubReference(reference) else { throw ValidationError("\(reference) is not ORG/REPO") }
        let cache = HubCache()
        let size = cache.entry(ref.repo).map { $0.bytes + $0.partialBytes } ?? 0
        guard try cache.remove(ref.repo) else { throw ExitCodeError(message: "\(ref.repo) is not in \(cache.root)") }
        writeErr(String(format: "removed %@ (%.2f GB)\n", ref.repo, Double(size) / 1e9))
    }
}

/// Pulls with a progress line on a terminal (plain lines otherwise), and resolves references from the cache.
enum HubAccess {
    static func client() -> HubClient {
        let cache = HubCache()
        let c = HubClient(cache: cache, options: HubOptions(cache: cache))
        c.note = { writeErr((Progress.enabled ? "\r\u{1B}[K" : "") + $0 + "\n") }
        let meter = Meter()
        c.progress = { meter.show($0) }
        return c
    }

    static func pull(_ ref: HubReference) throws -> PulledModel {
        let c = client()
        do {
            let m = try c.pull(ref)
            writeErr("\(ref.repo) at \(m.commit.prefix(12)): \(m.files.joined(separator: ", "))\n")
            return m
        } catch { throw ExitCodeError(message: "pull \(ref): \(error)") }
    }

    /// The model `ref` names in the cache; with `pull`, fetched first when missing.
    static func resolve(_ ref: HubReference, pull: Bool) throws -> PulledModel {
        if let m = client().cached(ref) { return m }
        if pull { return try Self.pull(ref) }
        throw ValidationError("\(ref) is neither a file or folder here nor in the Hugging Face cache (\(HubCache().root)): `gemma pull \(ref)` first, or add --pull")
    }
}

/// The progress line: file i/n, its bytes, the rate and the time left; one line per file when not a terminal.
final class Meter: @unchecked Sendable {
    private let lock = NSLock()
    private var started = Date()
    private var file = ""
    private var last = Date.distantPast
    /// When the file's last byte arrived (the check of its hash comes after).
    private var lastByte = Date()

    func show(_ p: PullProgress) {
        lock.lock(); defer { lock.unlock() }
        if p.file != file {
            file = p.file
            started = Date()
            if !Progress.enabled, !p.finished {
                writeErr(String(format: "[%d/%d] %@ (%@)\n", p.index + 1, p.count, p.file, p.fileTotal.map(Self.bytes) ?? "size unknown"))
            }
        }
        let now = Date()
        if !p.finished { lastByte = now }
        let elapsed = max(1e-3, (p.finished ? lastByte : now).timeIntervalSince(started))
        if p.finished {
            let line = String(format: "[%d/%d] %@: %@ %@", p.index + 1, p.count, p.file, Self.bytes(p.fileBytes),
                              p.transferred > 0 ? String(format: "in %.1f s (%@/s)", elapsed, Self.bytes(Int64(Double(p.transferred) / elapsed))) : "(in the cache)")
            writeErr((Progress.enabled ? "\r\u{1B}[K" : "") + line + "\n")
            return
        }
        let whole = p.fileTotal.map { p.fileBytes >= $0 } ?? false
        guard Progress.enabled, now.timeIntervalSince(last) >= 0.2 || whole else { return }
        if whole {
            writeErr("\r\u{1B}[K[\(p.index + 1)/\(p.count)] \(p.file): \(Self.bytes(p.fileBytes)), checking its sha256")
            return
        }
        last = now
        let rate = Double(p.transferred) / elapsed
        let left = rate > 0 ? Double(p.total - p.bytes) / rate : 0
        let pct = p.fileTotal.map { $0 > 0 ? 100 * Double(p.fileBytes) / Double($0) : 100 } ?? 0
        writeErr(String(format: "\r\u{1B}[K[%d/%d] %@ %3.0f%%  %@ / %@  %@/s  all %@ / %@  %@ left", p.index + 1, p.count, p.file, pct,
                        Self.bytes(p.fileBytes), p.fileTotal.map(Self.bytes) ?? "?", Self.bytes(Int64(rate)),
                        Self.bytes(p.bytes), Self.bytes(p.total), Self.duration(left)))
    }

    static func bytes(_ n: Int64) -> String {
        let d = Double(n)
        if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
        if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
        if d >= 1e3 { return String(format: "%.0f kB", d / 1e3) }
        return "\(n) B"
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(String(format: "%02d", t % 3600 / 60))m" : "\(t / 60)m\(String(format: "%02d", t % 60))s"
    }
}
