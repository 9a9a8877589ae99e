// `gemma chat`: an interactive conversation over one ChatSession (the KV cache is kept between turns, so only the
// new turn is prefilled). Replies stream; Ctrl-C stops a reply and returns to the prompt; /reset, /stats, /exit;
// images with --image (the first message) and /image (the next message), kept in the history as soft tokens.
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
            statistics (tok/s) after each reply, /tokens prints the conversation's token ids, /image PATH|URL attaches an \
            image to the next message (a model with a vision encoder; --image attaches to the first), /exit (or Ctrl-D) \
            quits. Ctrl-C stops a reply without quitting. Images stay in the conversation: later turns reuse their \
            cached positions. When the conversation outgrows --ctx-size, the oldest exchanges are dropped (a note says so).
            """)

    @OptionGroup(title: "Model") var model: ModelRunOptions
    @Option(help: "System instructions (folded into the first user turn).") var system: String?
    @Option(name: [.customShort("n"), .long], help: "Maximum tokens per reply.") var maxTokens = 512
    @Option(name: [.customShort("c"), .customLong("ctx-size")], help: "Context of the conversation in tokens.")
    var ctxSize = 4096
    @OptionGroup(title: "Sampling") var sampling: SamplingOptions
    @Flag(help: "Show statistics (tok/s, prompt tokens reused and prefilled) after each reply.") var stats = false
    @OptionGroup(title: "Images (attached to the first message)") var imageOptions: ImageOptions

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be >= 1") }
        guard ctxSize >= 16 else { throw ValidationError("--ctx-size must be >= 16") }
    }

    func run() async throws {
        let lm = try model.load()
        let session = lm.makeChatSession(system: system, contextLength: ctxSize)
        let seed = sampling.resolvedSeed
        var chosen = GenerationParameters(sampling: try sampling.parameters(seed: seed, defaults: lm.samplingDefaults), maxTokens: maxTokens,
                                          stopStrings: sampling.stopStrings, constraint: try sampling.constraint(lm))
        try sampling.applySpeculation(to: &chosen, target: lm, options: model.options)
        let parameters = chosen
        var showStats = stats
        // Images for the next message: --image for the first, then each /image.
        var attached = try imageOptions.embed(lm)
        writeErr("gemma chat: /reset forgets, /stats toggles tok/s, /tokens shows the ids, \(lm.vision == nil ? "" : "/image PATH|URL attaches an image, ")/exit quits; end a line with \\ or wrap text in \"\"\" for several lines; Ctrl-C stops a reply\n")
        if !attached.isEmpty { writeErr("[\(attached.count) image(s) attached to your first message]\n") }

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
                attached = []
                writeErr("[conversation reset]\n")
                continue
            case "/tokens":
                writeErr("[" + session.tokens.map(String.init).joined(separator: ",") + "]\n")
                continue
            case "/stats":
                showStats.toggle()
                writeErr("[statistics \(showStats ? "on" : "off")]\n")
                continue
            default:
                if text == "/image" || text.hasPrefix("/image ") {
                    let reference = unquote(String(text.dropFirst(6)).trimmingCharacters(in: .whitespaces))
                    if reference.isEmpty { writeErr("[usage: /image PATH|URL]\n"); continue }
                    do {
                        try ImageOptions.requireVision(lm)
                        let image = try imageOptions.embed(lm, reference)
                        attached.append(image)
                        writeErr("[image attached to your next message: \(image.views.count) view(s), \(image.views.reduce(0) { $0 + $1.count }) soft tokens]\n")
                    } catch {
                        writeErr("error: \(error)\n")
                    }
                    continue
                }
            }
            let images = attached
            let dropped = session.droppedTurns
            let show = showStats
            let task = Task {
                let events = images.isEmpty ? session.send(text, parameters)
                    : session.send(parts: images.map { .image($0) } + [.text(text)], parameters)
                for try await event in events {
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
                attached = []
            } catch {
                writeErr("\nerror: \(error)\n")
                if !images.isEmpty && !task.isCancelled { writeErr("[the image(s) stay attached to your next message; /reset drops them]\n") }
            }
            if task.isCancelled { attached = [] }
            current.withLock { $0 = nil }
            if task.isCancelled { writeErr("\n[reply stopped]\n") }
            if session.droppedTurns > dropped {
                writeErr("[context full: dropped the \(session.droppedTurns - dropped) oldest exchange(s)]\n")
            }
        }
    }

    /// A path typed with surrounding quotes, without them.
    private func unquote(_ s: String) -> String {
        for q in ["\"", "'"] where s.count >= 2 && s.hasPrefix(q) && s.hasSuffix(q) { return String(s.dropFirst().dropLast()) }
        return s
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
