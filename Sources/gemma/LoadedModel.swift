// Loading a model and its tokenizer from one GGUF file for the CLI, with errors printed as one clear line.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaModel
import GemmaTokenizer

struct LoadedModel {
    let model: Gemma3Model
    let tokenizer: Tokenizer

    init(path: String, threads: Int = ProcessInfo.processInfo.activeProcessorCount, placement: WeightPlacement = .auto) throws {
        do {
            let file = try GGUFFile(path: path)
            let config = try Gemma3Config(gguf: file)
            model = try Gemma3Model(file: file, config: config, threads: threads, placement: placement)
            tokenizer = try Tokenizer(vocabulary: Vocabulary(gguf: file.metadata))
        } catch {
            throw ExitCodeError(message: "\(path): \(error)")
        }
    }
}

/// Reads a prompt from an argument, a file, or stdin ("-").
func readPrompt(argument: String?, file: String?) throws -> String {
    if let file {
        guard let data = FileManager.default.contents(atPath: file) else { throw ExitCodeError(message: "cannot read \(file)") }
        return String(decoding: data, as: UTF8.self)
    }
    guard let argument else { throw ValidationError("give a PROMPT, --file F, or - to read stdin") }
    if argument == "-" {
        return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    }
    return argument
}

/// Writes to stdout immediately (streamed text).
func writeOut(_ s: String) {
    guard !s.isEmpty else { return }
    FileHandle.standardOutput.write(Data(s.utf8))
}

func writeErr(_ s: String) {
    FileHandle.standardError.write(Data(s.utf8))
}

/// Peak resident set size of this process, in bytes.
func peakRSSBytes() -> Int {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Int(u.ru_maxrss) * 1024
}
