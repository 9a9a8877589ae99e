// Server-sent events framing as OpenAI streams it (text/event-stream; one JSON object per event).
import GemmaFormats

/// Server-sent events: `data: <json>\n\n`, closed by `data: [DONE]\n\n` (OpenAI's stream framing).
enum SSE {
    static func event(_ v: JSONValue) -> String { "data: " + v.serialized + "\n\n" }
    static let done = "data: [DONE]\n\n"
}
