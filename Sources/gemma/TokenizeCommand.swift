// `gemma tokenize`: the token ids of a text under the model's tokenizer, like llama.cpp's llama-tokenize.
// A hidden --bench flag times building the tokenizer and encoding the text (kept out of `swift test`).
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaTokenizer

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of TEXT.",
        discussion: """
            Adds BOS (by id) and parses special-token spellings such as <start_of_turn> into their ids, as \
            llama-tokenize does. Without --json, prints one id per line with its vocabulary piece (U+2581 is a space).
            """
    )

    @OptionGroup var model: ModelOption

    @Flag(name: .customLong("no-bos"), help: "Do not add BOS (or any other framing token).")
    var noBOS = false

    @Flag(name: .customLong("no-special"), help: "Treat special-token spellings such as <start_of_turn> as plain text.")
    var noSpecial = false

    @Flag(help: "Print {\"ids\":[...]}.")
    var json = false

    @Option(name: .shortAndLong, help: "Read the text from FILE instead of the argument.")
    var file: String?

    @Flag(help: .hidden)
    var bench = false

    @Argument(help: "The text to tokenize.")
    var text: String?

    func validate() throws {
        if text != nil && file != nil { throw ValidationError("give either TEXT or --file, not both") }
        if text == nil && file == nil { throw ValidationError("give TEXT or --file FILE") }
    }

    func run() throws {
        let path = try model.resolve()
        let input = try readInput()
        if bench {
            try Self.benchmark(modelPath: path, text: input)
            return
        }
        var isDirectory: ObjCBool = false
        let folder = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        let tokenizer = folder ? try Tokenizer(directory: path) : try Tokenizer(modelPath: path)
        let ids = tokenizer.encode(input, addSpecial: !noBOS, parseSpecial: !noSpecial)
        if json {
            print("{\"ids\":[\(ids.map(String.init).joined(separator: ","))]}")
        } else {
            for id in ids {
                let number = String(id)
                let padded = String(repeating: " ", count: max(0, 6 - number.count)) + number
                print("\(padded) -> '\(Self.escape(tokenizer.piece(for: id) ?? "?"))'")
            }
        }
    }

    private func readInput() throws -> String {
        if let text { return text }
        guard let file, let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read \(file ?? "")")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A piece with control characters, backslashes and quotes escaped, so that each prints on one line.
    static func escape(_ piece: String) -> String {
        var out = ""
        for scalar in piece.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// Times loading (GGUF metadata, vocabulary, tokenizer tables) and encoding `text`; prints min and median.
    static func benchmark(modelPath: String, text: String) throws {
        func milliseconds(_ d: Duration) -> Double {
            Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15
        }
        func summary(_ samples: [Duration]) -> String {
            let ms = samples.map(milliseconds).sorted()
            return String(format: "min %.2f ms, median %.2f ms (%d runs)", ms[0], ms[ms.count / 2], ms.count)
        }
        let clock = ContinuousClock()
        var open: [Duration] = [], vocab: [Duration] = [], build: [Duration] = [], total: [Duration] = []
        var tokenizer: Tokenizer?
        for _ in 0..<10 {
            let t0 = clock.now
            let file = try GGUFFile(path: modelPath)
            let t1 = clock.now
            let vocabulary = try Vocabulary(gguf: file.metadata)
            let t2 = clock.now
            tokenizer = try Tokenizer(vocabulary: vocabulary)
            let t3 = clock.now
            open.append(t1 - t0)
            vocab.append(t2 - t1)
            build.append(t3 - t2)
            total.append(t3 - t0)
        }
        guard let tokenizer else { return }
        print("load, GGUF open + metadata parse:      \(summary(open))")
        print("load, Vocabulary(gguf:):               \(summary(vocab))")
        print("load, Tokenizer(vocabulary:) tables:   \(summary(build))")
        print("load, total from file:                 \(summary(total))")

        var encode: [Duration] = []
        var count = 0
        for _ in 0..<30 {
            let t0 = clock.now
            count = tokenizer.encode(text, addSpecial: true, parseSpecial: true).count
            encode.append(clock.now - t0)
        }
        print("encode \(text.utf8.count) bytes -> \(count) tokens:   \(summary(encode))")
    }
}
