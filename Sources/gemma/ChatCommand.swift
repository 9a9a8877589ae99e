// `gemma chat`: an interactive conversation over one ChatSession (the KV cache is kept between turns, so only the
// new turn is prefilled). Replies stream; Ctrl-C stops a reply and returns to the prompt; /reset, /stats, /exit.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaGenerate
import Synchronization

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat interactively (Gemma 3 chat template), streaming the replies.",
        discussion: """
            Type a message and press Enter. For several lines, end a line with \\ to continue it, or put the text \
            between lines holding only \"\"\". Commands: /reset forgets the conversation, /stats toggles \
            statistics (tok/s) after each reply, /tokens prints the conversation's token ids, /exit (or Ctrl-D) quits. Ctrl-C stops a reply without quitting. \
            When the conversation outgrows --ctx-size, the oldest exchanges are dropped (a note says so).
            """)

    @OptionGroup(title: "Model") var model: ModelRunOptions
    @Option(help: "System instructions (folded into the first user turn).") var system: String?
    @Option(name: [.customShort("n"), .long], help: "Maximum tokens per reply.") var maxTokens = 512
    @Option(name: [.customShort("c"), .customLong("ctx-size")], help: "Context of the conversation in tokens.")
    var ctxSize = 4096
    @OptionGroup(title: "Sampling") var sampling: SamplingOptions
    @Flag(help: "Show statistics (tok/s, prompt tokens reused and prefilled) after each reply.") var stats = false

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be >= 1") }
        guard ctxSize >= 16 else { throw ValidationError("--ctx-size must be >= 16") }
    }

    func run() async throws {
        let lm = try model.load()
        let session = lm.makeChatSession(system: system, contextLength: ctxSize)
        let seed = sampling.resolvedSeed
        let parameters = GenerationParameters(sampling: try sampling.parameters(seed: seed, defaults: lm.samplingDefaults), maxTokens: maxTokens,
                                              stopStrings: sampling.stopStrings)
        var showStats = stats
        writeErr("gemma chat: /reset forgets, /stats toggles tok/s, /tokens shows the ids, /exit quits; end a line with \\ or wrap text in \"\"\" for several lines; Ctrl-C stops a reply\n")

        // Ctrl-C cancels the reply in progress (if any) instead of ending the process.
        let current = Mutex<Task<Void, any Error>?>(nil)
        signal(SIGINT, SIG_IGN)
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        interrupt.setEventHandler {
            let running = current.withLock { task -> Bool in
                guard let task else { return false }
                task.cancel()
                return true
            }
            if !running { writeErr("\n(Ctrl-C: type /exit or press Ctrl-D to quit)\n> ") }
        }
        interrupt.resume()
        defer { interrupt.cancel() }

        while true {
            writeOut("> ")
            guard let input = readMessage() else { writeOut("\n"); break }
            let text = input.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { continue }
            switch text {
            case "/exit", "/quit", "/bye": return
            case "/reset":
                session.reset()
                writeErr("[conversation reset]\n")
                continue
            case "/tokens":
                writeErr("[" + session.tokens.map(String.init).joined(separator: ",") + "]\n")
                continue
            case "/stats":
                showStats.toggle()
                writeErr("[statistics \(showStats ? "on" : "off")]\n")
                continue
            default: break
            }
            let dropped = session.droppedTurns
            let show = showStats
            let task = Task {
                for try await event in session.send(text, parameters) {
                    switch event {
                    case let .prefill(done, total): Progress.prefill(done, total)
                    case let .text(piece): writeOut(piece)
                    case let .finished(s):
                        writeOut("\n")
                        if show { writeErr(statsLine(s) + "\n") }
                    case .token: break
                    }
                }
            }
            current.withLock { $0 = task }
            do {
                try await task.value
            } catch {
                writeErr("\nerror: \(error)\n")
            }
            current.withLock { $0 = nil }
            if task.isCancelled { writeErr("\n[reply stopped]\n") }
            if session.droppedTurns > dropped {
                writeErr("[context full: dropped the \(session.droppedTurns - dropped) oldest exchange(s)]\n")
            }
        }
    }

    /// Reads one message: a line, lines joined while they end with a backslash, or everything between two lines
    /// holding only \"\"\" (continuation lines are prompted with "... "). Nil at end of input.
    private func readMessage() -> String? {
        guard var line = readLine(strippingNewline: true) else { return nil }
        if line.trimmingCharacters(in: .whitespaces) == "\"\"\"" {
            var lines: [String] = []
            while true {
                writeOut("... ")
                guard let next = readLine(strippingNewline: true), next.trimmingCharacters(in: .whitespaces) != "\"\"\"" else { break }
                lines.append(next)
            }
            return lines.joined(separator: "\n")
        }
        var lines: [String] = []
        while line.hasSuffix("\\") {
            lines.append(String(line.dropLast()))
            writeOut("... ")
            guard let next = readLine(strippingNewline: true) else { break }
            line = next
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }
}
