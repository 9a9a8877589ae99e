// The Gemma 3 chat template (docs/gemma3-semantics.md item 15; llama.cpp LLM_CHAT_TEMPLATE_GEMMA; the HF chat_template):
//   <bos><start_of_turn>user\n{system}\n\n{content}<end_of_turn>\n<start_of_turn>model\n{reply}<end_of_turn>\n...
// There is no system role: system text is folded into the next user turn. The assistant role is `model`. BOS is
// added exactly once. Control tokens are inserted by id and message text is encoded without parsing special
// tokens, so a message that spells `<end_of_turn>` cannot end its turn.
import GemmaModel
import GemmaTokenizer

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable, Hashable {
    public enum Role: String, Sendable, Equatable, Hashable {
        /// Instructions; Gemma has no system turn, so the text is put at the start of the next user turn.
        case system
        case user
        /// The assistant (Gemma's name for it; "assistant" parses to this too).
        case model

        /// Accepts "system", "user", "model" and "assistant".
        public init?(name: String) {
            switch name {
            case "system": self = .system
            case "user": self = .user
            case "model", "assistant": self = .model
            default: return nil
            }
        }
    }

    public var role: Role
    /// The message's text (with images: the text parts joined).
    public var content: String
    /// Text and images in order, for a message with images; nil for a text message (then `content` is all of it).
    public var parts: [ChatContent]?

    public init(_ role: Role, _ content: String) {
        self.role = role
        self.content = content
    }

    /// A message of text and images in order (rendered as the chat template renders content lists: each image where
    /// it stands, as its full image sequence, the text around it as written).
    public init(_ role: Role, parts: [ChatContent]) {
        self.role = role
        self.content = parts.compactMap { if case let .text(t) = $0 { t } else { nil } }.joined()
        self.parts = parts
    }

    /// Images of the message, in order.
    public var images: [PromptImage] { (parts ?? []).compactMap { if case let .image(i) = $0 { i } else { nil } } }

    public static func system(_ text: String) -> ChatMessage { ChatMessage(.system, text) }
    public static func user(_ text: String) -> ChatMessage { ChatMessage(.user, text) }
    public static func model(_ text: String) -> ChatMessage { ChatMessage(.model, text) }
}

/// A piece of a chat message: text, or an image (its soft tokens from the vision encoder).
public enum ChatContent: Sendable, Hashable {
    case text(String)
    case image(PromptImage)
}

/// Renders conversations in Gemma 3's format, as text or as token ids.
public enum ChatTemplate {
    public static let startOfTurn = 105
    public static let endOfTurn = 106

    /// The conversation as text, `<bos>` first; with `addGenerationPrompt`, ends with `<start_of_turn>model\n`.
    public static func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        var out = "<bos>"
        for (role, content) in turns(messages) {
            out += "<start_of_turn>\(role.rawValue)\n\(content)<end_of_turn>\n"
        }
        if addGenerationPrompt { out += "<start_of_turn>model\n" }
        return out
    }

    /// The conversation as token ids: the same as encoding `render(...)` with special tokens parsed, except that
    /// message text never turns into control tokens.
    public static func tokens(_ messages: [ChatMessage], tokenizer: Tokenizer, addGenerationPrompt: Bool = true) -> [Int] {
        var ids = [Int(tokenizer.vocabulary.bosID ?? 2)]
        for (role, content) in turns(messages) { ids += turnTokens(role: role, content: content, tokenizer: tokenizer) }
        if addGenerationPrompt { ids += generationPrompt(tokenizer: tokenizer) }
        return ids
    }

    /// One closed turn: `<start_of_turn>{role}\n{content}<end_of_turn>\n`.
    public static func turnTokens(role: ChatMessage.Role, content: String, tokenizer: Tokenizer) -> [Int] {
        [startOfTurn] + encode("\(role.rawValue)\n\(content)", tokenizer) + [endOfTurn] + encode("\n", tokenizer)
    }

    /// The end of a model turn whose reply tokens are already known: `<end_of_turn>\n`.
    public static func closingTokens(tokenizer: Tokenizer) -> [Int] { [endOfTurn] + encode("\n", tokenizer) }

    /// `<start_of_turn>model\n`: what the model continues from.
    public static func generationPrompt(tokenizer: Tokenizer) -> [Int] { [startOfTurn] + encode("model\n", tokenizer) }

    /// Folds system messages into the following user turn (`{system}\n\n{user}`); a system message with no user turn
    /// after it becomes a user turn of its own.
    public static func turns(_ messages: [ChatMessage]) -> [(role: ChatMessage.Role, content: String)] {
        var out: [(role: ChatMessage.Role, content: String)] = []
        var system: String? = nil
        for m in messages {
            switch m.role {
            case .system: system = system.map { $0 + "\n\n" + m.content } ?? m.content
            case .user:
                out.append((.user, system.map { $0 + "\n\n" + m.content } ?? m.content))
                system = nil
            case .model: out.append((.model, m.content))
            }
        }
        if let system { out.append((.user, system)) }
        return out
    }

    /// The conversation as a prompt whose messages may hold images (`ChatMessage(_:parts:)`): the same ids as
    /// `tokens` for text, each image as its full image sequence (see PromptBuilder). With
    /// `addGenerationPrompt`, ends with `<start_of_turn>model\n`.
    public static func prompt(_ messages: [ChatMessage], tokenizer: Tokenizer, imageTokens: ImageTokens = ImageTokens(),
                              addGenerationPrompt: Bool = true) -> Prompt {
        var b = PromptBuilder(tokenizer: tokenizer, imageTokens: imageTokens)
        b.append(tokens: [Int(tokenizer.vocabulary.bosID ?? 2)])
        for (role, parts) in turnParts(messages) { appendTurn(role: role, parts: parts, to: &b) }
        if addGenerationPrompt { b.append(tokens: generationPrompt(tokenizer: tokenizer)) }
        return b.build()
    }

    /// One closed turn with images: `<start_of_turn>{role}\n{parts}<end_of_turn>\n`.
    public static func appendTurn(role: ChatMessage.Role, parts: [ChatContent], to b: inout PromptBuilder) {
        b.append(tokens: [startOfTurn])
        b.append(text: "\(role.rawValue)\n")
        for part in parts {
            switch part {
            case let .text(t): b.append(text: t)
            case let .image(i): b.append(image: i)
            }
        }
        b.append(tokens: [endOfTurn])
        b.append(text: "\n")
    }

    /// `turns` with the messages' parts: system text folded into the next user turn as a text part
    /// (`{system}\n\n` before the user's parts).
    public static func turnParts(_ messages: [ChatMessage]) -> [(role: ChatMessage.Role, parts: [ChatContent])] {
        var out: [(role: ChatMessage.Role, parts: [ChatContent])] = []
        var system: String? = nil
        for m in messages {
            let parts = m.parts ?? [.text(m.content)]
            switch m.role {
            case .system: system = system.map { $0 + "\n\n" + m.content } ?? m.content
            case .user:
                out.append((.user, (system.map { [.text($0 + "\n\n")] } ?? []) + parts))
                system = nil
            case .model: out.append((.model, parts))
            }
        }
        if let system { out.append((.user, [.text(system)])) }
        return out
    }

    static func encode(_ text: String, _ tokenizer: Tokenizer) -> [Int] {
        tokenizer.encode(text, addSpecial: false, parseSpecial: false).map(Int.init)
    }
}
