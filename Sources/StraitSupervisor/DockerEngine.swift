import Foundation
public import NIOCore
public import NIOHTTP1
import NIOPosix
public import StraitCore
import Synchronization

/// A client of the Docker Engine HTTP API (API version 1.41, which dockerd and podman's Docker-compatible service
/// both speak) over the engine's unix socket, on raw NIO: one connection per request.
public final class DockerEngine: Sendable {
    public let socketPath: String
    let group: any EventLoopGroup
    /// The API version used: the engine's own, capped at the newest Strait was written against and refused below
    /// the oldest it needs (dockerd 20.10 speaks 1.41; Docker 29 accepts nothing older than 1.44).
    private let negotiated = Mutex<String?>(nil)
    static let oldestVersion = (1, 41)
    static let newestVersion = (1, 45)

    public init(socketPath: String, group: any EventLoopGroup) {
        self.socketPath = socketPath
        self.group = group
    }

    /// The socket named by `--docker-host`, `DOCKER_HOST` (`unix:///path` or an absolute path), else
    /// `/var/run/docker.sock` if present. Other schemes (tcp://, ssh://) are refused.
    public static func socketPath(option: String?, environment: [String: String]) throws(Failure) -> String? {
        for candidate in [option, environment["DOCKER_HOST"]] {
            guard let candidate, !candidate.isEmpty else { continue }
            let path = candidate.hasPrefix("unix://") ? String(candidate.dropFirst("unix://".count)) : candidate
            guard path.hasPrefix("/") else {
                throw Failure(
                    status: 0,
                    message:
                        "The Docker host \(candidate) is not supported: give the engine's unix socket, unix:///path."
                )
            }
            return path
        }
        return FileManager.default.fileExists(atPath: "/var/run/docker.sock") ? "/var/run/docker.sock" : nil
    }

    /// `/v<version>`, negotiated with the engine once (`GET /version`).
    private func versionPrefix() async throws -> String {
        if let known = negotiated.withLock({ $0 }) { return known }
        let answer = try await exchange(
            .GET,
            "/version",
            json: nil,
            body: nil,
            contentType: "",
            timeout: .seconds(10),
            onChunk: nil
        )
        guard answer.status == 200, let document = answer.json,
            let server = Self.parse(document["ApiVersion"]?.stringValue)
        else {
            throw Failure(
                status: answer.status,
                message: "The Docker engine at \(socketPath) did not say its API version."
            )
        }
        let minimum = Self.parse(document["MinAPIVersion"]?.stringValue) ?? Self.oldestVersion
        let chosen = server < Self.newestVersion ? server : Self.newestVersion
        guard chosen >= Self.oldestVersion, chosen >= minimum else {
            throw Failure(
                status: 0,
                message:
                    "The Docker engine at \(socketPath) speaks API \(server.0).\(server.1) (minimum \(minimum.0).\(minimum.1)); Strait needs 1.41 to 1.45."
            )
        }
        let prefix = "/v\(chosen.0).\(chosen.1)"
        negotiated.withLock { $0 = prefix }
        return prefix
    }

    static func parse(_ version: String?) -> (Int, Int)? {
        guard let parts = version?.split(separator: "."), parts.count == 2, let major = Int(parts[0]),
            let minor = Int(parts[1])
        else { return nil }
        return (major, minor)
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let status: Int
        public let message: String
        public var description: String { message }
    }

    public struct Response: Sendable {
        public let status: Int
        public let body: [UInt8]

        public var json: JSONValue? { try? JSONParser.parse(body) }

        /// The engine's `{"message": …}`, or the body as text.
        public var message: String {
            json?["message"]?.stringValue ?? String(decoding: body.prefix(500), as: UTF8.self)
        }
    }

    /// Sends one request and collects the whole answer. `timeout` bounds the exchange (nil: no bound, for `wait`).
    public func request(
        _ method: HTTPMethod,
        _ path: String,
        json: JSONValue? = nil,
        body: [UInt8]? = nil,
        contentType: String = "application/json",
        timeout: TimeAmount? = .seconds(60),
        onChunk: (@Sendable (ByteBuffer) -> Void)? = nil
    ) async throws -> Response {
        let prefix = try await versionPrefix()
        return try await exchange(
            method,
            prefix + path,
            json: json,
            body: body,
            contentType: contentType,
            timeout: timeout,
            onChunk: onChunk
        )
    }

    private func exchange(
        _ method: HTTPMethod,
        _ uri: String,
        json: JSONValue?,
        body: [UInt8]?,
        contentType: String,
        timeout: TimeAmount?,
        onChunk: (@Sendable (ByteBuffer) -> Void)?
    ) async throws -> Response {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: Response.self)
        let payload = body ?? json.map { Array($0.serialized().utf8) }
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(
                            EngineResponseHandler(promise: promise, onChunk: onChunk)
                        )
                    }
                }
                .connect(unixDomainSocketPath: socketPath).get()
        } catch {
            promise.fail(error)  // never completed otherwise: the handler was not added
            throw Failure(
                status: 0,
                message:
                    "Cannot reach the Docker engine at \(socketPath) (\(error)). Start dockerd or podman system service, or point strait serve --docker-host (or DOCKER_HOST) at its socket."
            )
        }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "docker")
        headers.add(name: "connection", value: "close")
        if payload != nil { headers.add(name: "content-type", value: contentType) }
        // Always a length: without one NIO would send a chunked (and so "non-empty") body, which dockerd refuses.
        headers.add(name: "content-length", value: String(payload?.count ?? 0))
        let head = HTTPRequestHead(
            version: .http1_1,
            method: method,
            uri: uri,
            headers: headers
        )
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let payload {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: payload))), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let deadline = timeout.map { timeout in
            eventLoop.scheduleTask(in: timeout) {
                promise.fail(Failure(status: 0, message: "The Docker engine did not answer \(method) \(uri) in time."))
                channel.close(promise: nil)
            }
        }
        defer { deadline?.cancel() }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// `request` that must answer 2xx (or one of `accept`); anything else throws with the engine's message.
    @discardableResult
    public func expect(
        _ method: HTTPMethod,
        _ path: String,
        json: JSONValue? = nil,
        accept: Set<Int> = [],
        timeout: TimeAmount? = .seconds(60)
    ) async throws -> Response {
        let response = try await request(method, path, json: json, timeout: timeout)
        guard (200..<300).contains(response.status) || accept.contains(response.status) else {
            throw Failure(status: response.status, message: response.message)
        }
        return response
    }

    /// Percent-encodes a query value (everything but ASCII letters, digits and `-._~`).
    static func query(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
}

/// Collects one HTTP answer; hands body chunks to `onChunk` as they come (for streams such as logs).
private final class EngineResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<DockerEngine.Response>
    private let onChunk: (@Sendable (ByteBuffer) -> Void)?
    private var status = 0
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<DockerEngine.Response>, onChunk: (@Sendable (ByteBuffer) -> Void)?) {
        self.promise = promise
        self.onChunk = onChunk
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(let chunk):
            if let onChunk, status == 200 {
                onChunk(chunk)
            } else if body.count < 16 << 20 {
                body.append(contentsOf: chunk.readableBytesView)
            }
        case .end:
            promise.succeed(DockerEngine.Response(status: status, body: body))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DockerEngine.Failure(status: 0, message: "The Docker engine closed the connection."))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension EngineResponseHandler: Sendable {}
