// Prompts with images, as transformers' Gemma3Processor builds them (processing_gemma3.py; the project's
// reference/vision.md §a, §d): each image becomes its full sequence
//     "\n\n" <start_of_image> N x <image_soft_token> <end_of_image> "\n\n"
// with the N soft-token positions holding the vision encoder's rows (one bidirectional span per image), and with Pan
// & Scan crops
//     "Here is the original image " S(whole) " and here are some crops to help you see better " S(crop 1) " " S(crop 2) ...
// The processor does this on the text, then tokenizes it: the tokenizer splits at control tokens and encodes the text
// between them as one piece, so "user\n" + "\n\n" is encoded together here too (the same ids as the fixture's).

import Foundation
import GemmaModel
import GemmaTokenizer

/// The soft tokens of one view of an image (the whole image or one Pan & Scan crop): `count` rows of the text model's
/// width, from the vision encoder and projector.
public struct ImageEmbedding: Sendable, Hashable {
    /// `count * width` floats, row-major, used as they are (not scaled by sqrt(width)).
    public let rows: [Float]
    public let count: Int
    /// Content key of the view (e.g. "sha256:<image bytes>#crop1"): prompt positions with equal keys are reused from
    /// the cache without re-running them.
    public let digest: String

    public init(rows: [Float], count: Int, digest: String) {
        precondition(count > 0 && rows.count % count == 0, "image embedding rows must be count x width floats")
        self.rows = rows
        self.count = count
        self.digest = digest
    }

    public static func == (a: ImageEmbedding, b: ImageEmbedding) -> Bool { a.digest == b.digest && a.count == b.count }
    public func hash(into h: inout Hasher) { h.combine(digest); h.combine(count) }
}

/// An image as a prompt holds it: the whole image's soft tokens, then those of its Pan & Scan crops (none unless Pan
/// & Scan was asked for and the image is wide or tall enough).
public struct PromptImage: Sendable, Hashable {
    public var views: [ImageEmbedding]
    public init(views: [ImageEmbedding]) {
        precondition(!views.isEmpty, "an image has at least its whole view")
        self.views = views
    }
    /// Crops beside the whole image.
    public var crops: Int { views.count - 1 }
}

/// The control tokens around an image's soft tokens (config.json's boi_token_index, eoi_token_index,
/// image_token_index; the released models': 255999, 256000, 262144).
public struct ImageTokens: Sendable, Hashable {
    public var startOfImage: Int
    public var endOfImage: Int
    public var softToken: Int
    public init(startOfImage: Int = 255_999, endOfImage: Int = 256_000, softToken: Int = 262_144) {
        self.startOfImage = startOfImage
        self.endOfImage = endOfImage
        self.softToken = softToken
    }
}

/// A prompt being assembled from text, control tokens and images.
public struct PromptBuilder: Sendable {
    public let tokenizer: Tokenizer
    public let imageTokens: ImageTokens
    private var parts: [PromptPart] = []
    private var ids: [Int] = []
    private var text = ""
    private var textParsesControlTokens = false

    public init(tokenizer: Tokenizer, imageTokens: ImageTokens = ImageTokens()) {
        self.tokenizer = tokenizer
        self.imageTokens = imageTokens
    }

    /// Appends text. Consecutive text is encoded as one piece (as the processor's tokenizer does between control
    /// tokens). With `parseControlTokens`, control tokens spelled in the text (`<start_of_turn>`) are recognised (raw
    /// prompts); without, they are plain text (chat messages).
    public mutating func append(text t: String, parseControlTokens: Bool = false) {
        if !text.isEmpty && parseControlTokens != textParsesControlTokens { flushText() }
        textParsesControlTokens = parseControlTokens
        text += t
    }

    /// Appends token ids as they are.
    public mutating func append(tokens t: [Int]) {
        flushText()
        ids += t
    }

    /// Appends an image: its full sequence, and with crops the processor's sentence around the views.
    public mutating func append(image: PromptImage) {
        if image.views.count == 1 {
            appendView(image.views[0])
            return
        }
        appendPlain("Here is the original image ")
        appendView(image.views[0])
        appendPlain(" and here are some crops to help you see better ")
        for (i, view) in image.views.dropFirst().enumerated() {
            if i > 0 { appendPlain(" ") }
            appendView(view)
        }
    }

    /// Text with no control tokens in it, joined to the text before it whatever that text's mode.
    private mutating func appendPlain(_ t: String) { text += t }

    private mutating func appendView(_ v: ImageEmbedding) {
        appendPlain("\n\n")
        append(tokens: [imageTokens.startOfImage])
        flushIDs()
        parts.append(.embeddings(EmbeddingSpan(rows: v.rows, count: v.count, digest: v.digest, bidirectional: true,
                                               placeholder: imageTokens.softToken)))
        append(tokens: [imageTokens.endOfImage])
        appendPlain("\n\n")
    }

    private mutating func flushText() {
        guard !text.isEmpty else { return }
        ids += tokenizer.encode(text, addSpecial: false, parseSpecial: textParsesControlTokens).map(Int.init)
        text = ""
    }

    private mutating func flushIDs() {
        flushText()
        if !ids.isEmpty { parts.append(.tokens(ids)) }
        ids = []
    }

    /// The prompt so far.
    public func build() -> Prompt {
        var b = self
        b.flushIDs()
        return Prompt(b.parts)
    }
}

extension Prompt {
    /// A raw prompt with images (`gemma generate --image`): BOS, then `text` with control tokens recognised; image i
    /// goes where the text has its i-th `<start_of_image>`, and images beyond those placeholders go before the text.
    public static func raw(_ text: String, images: [PromptImage], tokenizer: Tokenizer, imageTokens: ImageTokens = ImageTokens()) -> Prompt {
        var b = PromptBuilder(tokenizer: tokenizer, imageTokens: imageTokens)
        b.append(tokens: [Int(tokenizer.vocabulary.bosID ?? 2)])
        let marker = "<start_of_image>"
        var pieces = text.components(separatedBy: marker)
        let placed = min(images.count, pieces.count - 1)
        for image in images[placed...] { b.append(image: image) }
        b.append(text: pieces.removeFirst(), parseControlTokens: true)
        for (i, piece) in pieces.enumerated() {
            if i < placed { b.append(image: images[i]) } else { b.append(text: marker, parseControlTokens: true) }
            b.append(text: piece, parseControlTokens: true)
        }
        return b.build()
    }
}
