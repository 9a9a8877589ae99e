// The `gemma` command: thin subcommands over the Gemma library.
import ArgumentParser
import Foundation

@main
struct Gemma: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemma",
        abstract: "Run Gemma 3 models on the CPU.",
        discussion: "MODEL defaults to the Gemma 3 270M Q4_K_M GGUF that `make model` fetches into ~/.cache/swift-gemma.",
        subcommands: [Generate.self, Run.self, Chat.self, Serve.self, PerplexityCommand.self, Bench.self, Memory.self, Info.self, Tokenize.self, Convert.self, Quantize.self, Finetune.self, Pull.self, List.self, Remove.self, DumpLogits.self]
    )

    /// Parses and runs the command, `gemma serve`'s options completed from GEMMA_* variables first.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "serve" {
            arguments = Serve.fromEnvironment(arguments, ProcessInfo.processInfo.environment)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
