// Helpers of the CLI commands: prompt input, streamed output, peak memory.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaModel
import GemmaTokenizer

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
