// `gemma run`: one chat turn in the Gemma 3 template (system text folded into the user turn), the reply streamed
// through the library's async API.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaGenerate

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one chat message (Gemma 3 chat template) and stream the reply.",
        discussion: "The message comes from PROMPT, from --file F, or from stdin when PROMPT is -. The reply ends at <end_of_turn>, a --stop string, or after --max-tokens.")

    @OptionGroup(title: "Model") var model: ModelRunOptions
    @Argument(help: "The message, or - to read it from stdin.") var prompt: String?
    @Option(help: "Read the message from this file.") var file: String?
    @Option(help: "System instructions (folded into the user turn: Gemma has no system role).") var system: String?
    @Option(name: [.customShort("n"), .long], help: "Maximum tokens of the reply.") var maxTokens = 512
    @OptionGroup(title: "Sampling") var sampling: SamplingOptions
    @Flag(help: "Print prompt and generation statistics (tok/s) on stderr.") var stats = false
    @OptionGroup(title: "Images") var imageOptions: ImageOptions

    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be >= 0") }
    }

    func run() async throws {
        let text = try readPrompt(argument: prompt, file: file)
        let lm = try model.load()
        let images = try imageOptions.embed(lm)
        var messages: [ChatMessage] = system.map { [.system($0)] } ?? []
        // Images first, then the text (as the chat template renders a content list of images and text).
        messages.append(images.isEmpty ? .user(text) : ChatMessage(.user, parts: images.map { .image($0) } + [.text(text)]))
        var parameters = GenerationParameters(sampling: try sampling.parameters(seed: sampling.resolvedSeed, defaults: lm.samplingDefaults),
                                              maxTokens: maxTokens, stopStrings: sampling.stopStrings,
                                              constraint: try sampling.constraint(lm))
        try sampling.applySpeculation(to: &parameters, target: lm, options: model.options)
        let events = images.isEmpty ? lm.generate(messages: messages, parameters)
            : lm.generate(prompt: ChatTemplate.prompt(messages, tokenizer: lm.tokenizer, imageTokens: lm.imageTokens!), parameters)
        do {
            for try await event in events {
                switch event {
                case let .prefill(done, total): Progress.prefill(done, total)
                case let .text(piece): writeOut(piece)
                case let .finished(s):
                    writeOut("\n")
                    if stats { writeErr(statsLine(s) + "\n") }
                case .token: break
                }
            }
        } catch {
            throw ExitCodeError(message: "\(error)")
        }
    }
}
