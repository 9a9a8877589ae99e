// The --model option shared by every subcommand, defaulting to the model that scripts/fetch-model.sh caches.
import ArgumentParser
import Foundation
import GemmaFormats

struct ModelOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "Path to a GGUF model (default: the fetched Gemma 3 270M Q4_K_M).")
    var model: String?

    @Flag(help: "Read the weights in place from the file mapping (default: a private copy on transparent huge pages when the kernel offers them and they fit in half the memory; decoding streams it faster, same resident memory).")
    var mmap = false

    /// Where the weights live (--mmap: in the file mapping).
    var placement: WeightPlacement { mmap ? .mapped : .auto }

    /// The model path: --model, else $GEMMA_MODEL, else the default model in the cache. Throws if it does not exist.
    func resolve() throws -> String {
        let path = model ?? ProcessInfo.processInfo.environment["GEMMA_MODEL"] ?? Self.defaultModelPath
        guard FileManager.default.fileExists(atPath: path) else {
            if model == nil {
                throw ValidationError("no model at \(path): run `make model` (or scripts/fetch-model.sh) to fetch the default model, or pass --model")
            }
            throw ValidationError("no model file at \(path)")
        }
        return path
    }

    /// Where scripts/fetch-model.sh puts the default model: $GEMMA_CACHE, else $XDG_CACHE_HOME/swift-gemma, else ~/.cache/swift-gemma.
    static var defaultModelPath: String {
        let env = ProcessInfo.processInfo.environment
        let cache = env["GEMMA_CACHE"]
            ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/swift-gemma")
        return cache + "/gemma-3-270m-q4_k_m.gguf"
    }
}
