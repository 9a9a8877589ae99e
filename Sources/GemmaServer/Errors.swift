// Errors in OpenAI's JSON shape: {"error": {"message", "type", "param", "code"}}, with the HTTP status that goes
// with them, and the middleware that turns every error a handler throws (ours, Hummingbird's, or anything else)
// into one. Nothing a client sends can crash the server or leave its connection without an answer.
import Foundation
import GemmaFormats
import Hummingbird

/// An error answered to the client.
public struct APIError: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var message: String
    /// OpenAI's `type`: invalid_request_error, authentication_error, not_found_error, server_error, ...
    public var type: String
    public var param: String?
    public var code: String?

    public init(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error",
                param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// 400: the request is malformed or a value is out of range.
    public static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(.badRequest, message, param: param, code: code)
    }

    public static let unauthorized = APIError(.unauthorized, "Invalid or missing API key. Pass it as 'Authorization: Bearer KEY'.",
                                              type: "authentication_error", code: "invalid_api_key")
    public static let loading = APIError(.serviceUnavailable, "The model is loading.", type: "unavailable_error", code: "loading")
    public static let busy = APIError(.tooManyRequests, "The server is busy: every slot and the queue are full. Retry later.",
                                      type: "server_overloaded", code: "queue_full")
    public static let shuttingDown = APIError(.serviceUnavailable, "The server is shutting down.", type: "unavailable_error",
                                              code: "shutting_down")

    /// `error` itself when it is an APIError, else a 500 naming it.
    static func of(_ error: any Error) -> APIError {
        error as? APIError ?? APIError(.internalServerError, "\(error)", type: "server_error")
    }

    /// The body as JSON.
    public var json: JSONValue {
        ["error": [
            "message": .string(message),
            "type": .string(type),
            "param": param.map { .string($0) } ?? .null,
            "code": code.map { .string($0) } ?? .null,
        ]]
    }

    public var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if status == .tooManyRequests || status == .serviceUnavailable { headers[.retryAfter] = "1" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: json.serialized + "\n")))
    }
}

/// Turns whatever a handler throws into an OpenAI-shaped error response, and records the status in the metrics.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: Metrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = error.response
        } catch let error as HTTPError {
            response = Self.map(error, request).response
        } catch let error as any HTTPResponseError {
            response = APIError(error.status, "\(error)", type: error.status.code >= 500 ? "server_error" : "invalid_request_error").response
        } catch {
            context.logger.error("unexpected error: \(error)")
            response = APIError(.internalServerError, "Internal error: \(error)", type: "server_error").response
        }
        metrics.countRequest(path: request.uri.path, status: response.status.code)
        return response
    }

    static func map(_ error: HTTPError, _ request: Request) -> APIError {
        switch error.status {
        case .notFound:
            APIError(.notFound, "Unknown route: \(request.method) \(request.uri.path)", type: "not_found_error", code: "unknown_route")
        case .methodNotAllowed:
            APIError(.methodNotAllowed, "Method \(request.method) is not allowed on \(request.uri.path)", code: "method_not_allowed")
        case .contentTooLarge:
            APIError(.contentTooLarge, "The request body is larger than the server accepts.", code: "request_too_large")
        default:
            APIError(error.status, error.body ?? error.status.reasonPhrase,
                     type: error.status.code >= 500 ? "server_error" : "invalid_request_error")
        }
    }
}

/// When an API key is configured, every route except /health, /metrics and the chat page (GET /, which asks for the
/// key itself) needs `Authorization: Bearer KEY`.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/health" || path == "/metrics" || (request.method == .get && ChatPage.paths.contains(path)) {
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
              constantTimeEqual(Array(header.dropFirst(7).utf8), Array(key.utf8)) else {
            throw APIError.unauthorized
        }
        return try await next(request, context)
    }
}

/// Compares without stopping at the first difference, so the comparison's time does not tell how much matched.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff = UInt8(a.count == b.count ? 0 : 1)
    for i in 0..<max(a.count, b.count) { diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 1) }
    return diff == 0
}

/// CORS for browser clients of the listed origins ("*": any): preflight OPTIONS requests are answered 204 with the
/// methods and headers the API uses (before the API key is checked: browsers send no credentials there), and every
/// answer to an allowed origin carries Access-Control-Allow-Origin. Other origins get no CORS headers, so browsers
/// refuse the answer; non-browser clients are unaffected.
struct CORSOriginsMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: [String]

    func allowed(_ origin: String) -> String? {
        origins.contains("*") ? "*" : origins.contains(origin) ? origin : nil
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], let allow = allowed(origin) else { return try await next(request, context) }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers: HTTPFields = [.accessControlAllowOrigin: allow, .accessControlAllowMethods: "GET, POST, OPTIONS",
                                       .accessControlAllowHeaders: request.headers[.accessControlRequestHeaders] ?? "Authorization, Content-Type",
                                       .accessControlMaxAge: "600"]
            if allow != "*" { headers[.vary] = "Origin" }
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        response.headers[.accessControlAllowOrigin] = allow
        if allow != "*" { response.headers[.vary] = "Origin" }
        return response
    }
}

/// One log line per request through the request's logger (swift-log; Hummingbird gives each request an id, logged
/// as hb.request.id): method, path, status and milliseconds as metadata.
struct AccessLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var status = 500
        defer {
            let ms = (ContinuousClock.now - started).seconds * 1e3
            context.logger.info("request", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)",
                                                      "status": "\(status)", "ms": "\(String(format: "%.1f", ms))"])
        }
        let response = try await next(request, context)
        status = response.status.code
        return response
    }
}
