// Fine-tuning data: JSON Lines of chat conversations (`{"messages": [{"role": ..., "content": ...}, ...]}`) or
// prompt/completion pairs (`{"prompt": ..., "completion": ...}`, one user turn and the model's reply), rendered in
// Gemma 3's chat template as the engine renders a prompt, with the loss on the model's replies only: each reply's
// tokens and its <end_of_turn>, exactly the tokens the model produces after `<start_of_turn>model\n` at inference.
// Lines that cannot be used are reported by number; the caller skips them or refuses the file.
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaTokenizer

/// One training sequence: token ids and, per position, the token that should follow it (nil: no loss there).
public struct TrainingExample: Sendable, Equatable {
    public var tokens: [Int]
    public var targets: [Int?]
    /// The JSONL line it came from (from 1).
    public var line: Int
    /// Distillation: the teacher's distribution at the positions with a target (see `Distillation`), learned
    /// instead of the tokens.
    public var soft: [SoftTarget?]? = nil

    public init(tokens: [Int], targets: [Int?], line: Int = 0) {
        self.tokens = tokens
        self.targets = targets
        self.line = line
    }

    /// Positions that carry a loss.
    public var targetCount: Int { targets.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }
}

/// A line of the data file that was not used, and why.
public struct DataProblem: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public var description: String { "line \(line): \(reason)" }
}

public enum TrainingData {
    /// The examples of a JSONL text, and the lines left out. Blank lines are ignored.
    ///
    /// - Parameter maxTokens: Longer examples are left out (reported), not cut: a cut reply teaches stopping early.
    public static func parse(_ text: String, tokenizer: Tokenizer, maxTokens: Int) -> (examples: [TrainingExample], problems: [DataProblem]) {
        var examples: [TrainingExample] = [], problems: [DataProblem] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            do {
                let messages = try Self.messages(line)
                let example = try Self.example(messages, tokenizer: tokenizer, line: i + 1)
                guard example.tokens.count <= maxTokens else {
                    throw DataProblem(line: i + 1, reason: "\(example.tokens.count) tokens, more than the limit of \(maxTokens)")
                }
                examples.append(example)
            } catch let p as DataProblem {
                problems.append(DataProblem(line: i + 1, reason: p.reason))
            } catch {
                problems.append(DataProblem(line: i + 1, reason: "\(error)"))
            }
        }
        return (examples, problems)
    }

    /// The conversation of one JSONL line.
    static func messages(_ line: String) throws -> [ChatMessage] {
        let json: JSONValue
        do { json = try JSONValue.parse(Array(line.utf8)) } catch {
            throw DataProblem(line: 0, reason: "not valid JSON (\(error))")
        }
        guard case .object = json else { throw DataProblem(line: 0, reason: "a JSON object is expected, not \(json.typeName)") }
        if let list = json["messages"] {
            guard case let .array(items) = list, !items.isEmpty else { throw DataProblem(line: 0, reason: "\"messages\" must be a non-empty array") }
            return try items.enumerated().map { k, item in
                guard case let .string(role)? = item["role"], case let .string(content)? = item["content"] else {
                    throw DataProblem(line: 0, reason: "message \(k + 1) needs string \"role\" and \"content\"")
                }
                let r: ChatMessage.Role? = switch role {
                case "assistant", "model": .model
                case "user": .user
                case "system", "developer": .system
                default: nil
                }
                guard let r else { throw DataProblem(line: 0, reason: "message \(k + 1) has role \"\(role)\" (system, user, assistant or model)") }
                return ChatMessage(r, content)
            }
        }
        guard case let .string(prompt)? = json["prompt"], case let .string(completion)? = json["completion"] else {
            throw DataProblem(line: 0, reason: "needs \"messages\", or string \"prompt\" and \"completion\"")
        }
        return [.user(prompt), .model(completion)]
    }

    /// Token ids and targets of a conversation: the loss on each model turn's text and its <end_of_turn>.
    public static func example(_ messages: [ChatMessage], tokenizer: Tokenizer, line: Int = 0) throws -> TrainingExample {
        var tokens = [Int(tokenizer.vocabulary.bosID ?? 2)]
        var learn: [Bool] = [false]  // learn[i]: token i is predicted with a loss
        var replies = 0
        for (role, content) in ChatTemplate.turns(messages) {
            if role == .model {
                guard !content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw DataProblem(line: line, reason: "an empty reply of the model")
                }
                let head = ChatTemplate.generationPrompt(tokenizer: tokenizer)
                let body = tokenizer.encode(content, addSpecial: false, parseSpecial: false).map(Int.init)
                let close = ChatTemplate.closingTokens(tokenizer: tokenizer)
                tokens += head + body + close
                learn += [Bool](repeating: false, count: head.count) + [Bool](repeating: true, count: body.count + 1)
                    + [Bool](repeating: false, count: close.count - 1)
                replies += 1
            } else {
                let turn = ChatTemplate.turnTokens(role: role, content: content, tokenizer: tokenizer)
                tokens += turn
                learn += [Bool](repeating: false, count: turn.count)
            }
        }
        guard replies > 0 else { throw DataProblem(line: line, reason: "no reply of the model to learn") }
        // targets[t] = tokens[t + 1] where that token is learned.
        var targets = [Int?](repeating: nil, count: tokens.count)
        for t in 0..<(tokens.count - 1) where learn[t + 1] { targets[t] = tokens[t + 1] }
        // The last token (the closing newline) predicts nothing: drop it.
        tokens.removeLast()
        targets.removeLast()
        return TrainingExample(tokens: tokens, targets: targets, line: line)
    }
}

extension DataProblem: Error {}
