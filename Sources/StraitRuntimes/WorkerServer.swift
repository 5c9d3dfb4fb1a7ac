public import NIOCore
import NIOHTTP1
public import NIOPosix

/// A built-in model runtime: answers one invocation synchronously on the connection's event loop.
public protocol ModelRuntime: Sendable {
    /// The runtime's name in `strait worker --runtime NAME`.
    static var name: String { get }
    /// Whether the model is ready (the answer to `GET /ping`).
    var isReady: Bool { get }
    /// Runs one invocation. The returned status, content type and body are sent as they are.
    func invoke(
        body: ByteBuffer,
        contentType: String?,
        accept: String?,
        customAttributes: String?,
        allocator: ByteBufferAllocator
    ) -> InvocationResult
}

/// What a runtime answers to one invocation.
public struct InvocationResult: Sendable {
    public var status: HTTPResponseStatusCode
    public var contentType: String?
    public var body: ByteBuffer
    /// `X-Amzn-SageMaker-Custom-Attributes` for the caller.
    public var customAttributes: String?

    public init(status: HTTPResponseStatusCode, contentType: String?, body: ByteBuffer, customAttributes: String? = nil)
    {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.customAttributes = customAttributes
    }
}

/// An HTTP status code, kept free of NIOHTTP1 in the runtime API.
public typealias HTTPResponseStatusCode = Int

/// The worker side of the SageMaker container contract, on raw SwiftNIO: `GET /ping` and `POST /invocations` on
/// `SAGEMAKER_BIND_TO_PORT` (default 8080), answered on the event loop with no hop into Swift concurrency.
public struct WorkerServer: Sendable {
    /// The largest invocation body accepted: SageMaker's 6 MiB limit.
    public static let maximumBodySize = 6 * 1024 * 1024

    public let host: String
    public let port: Int
    public let runtime: any ModelRuntime

    public init(host: String, port: Int, runtime: any ModelRuntime) {
        self.host = host
        self.port = port
        self.runtime = runtime
    }

    /// Binds the TCP listener and returns its channel; close it to stop serving.
    public func start(group: MultiThreadedEventLoopGroup) async throws -> any Channel {
        try await bootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port).get()
    }

    /// Binds a Unix socket listener at `path` (replacing a stale socket file), readable and writable by this user
    /// only; close the channel to stop serving.
    public func start(group: MultiThreadedEventLoopGroup, unixSocket path: String) async throws -> any Channel {
        let channel = try await bootstrap(group: group)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        guard chmod(path, 0o600) == 0 else {
            channel.close(promise: nil)
            throw IOError(errnoCode: errno, reason: "chmod \(path)")
        }
        return channel
    }

    private func bootstrap(group: MultiThreadedEventLoopGroup) -> ServerBootstrap {
        let runtime = self.runtime
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(WorkerHandler(runtime: runtime))
                }
            }
    }
}

/// Buffers one request at a time and answers it from the runtime.
final class WorkerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let runtime: any ModelRuntime
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooLarge = false

    init(runtime: any ModelRuntime) { self.runtime = runtime }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = nil
            self.tooLarge = false
        case .body(var chunk):
            guard !tooLarge else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > WorkerServer.maximumBodySize {
                tooLarge = true
                body = nil
                return
            }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        switch (head.method, path) {
        case (.GET, "/ping"):
            let status: HTTPResponseStatus = runtime.isReady ? .ok : .serviceUnavailable
            write(context: context, head: head, status: status, contentType: nil, body: nil)
        case (.GET, "/execution-parameters"):
            // What batch transform asks a container: one request at a time per CPU, records in batches, 6 MB.
            var body = context.channel.allocator.buffer(capacity: 96)
            body.writeString(
                "{\"MaxConcurrentTransforms\": \(System.coreCount), \"BatchStrategy\": \"MULTI_RECORD\", \"MaxPayloadInMB\": 6}"
            )
            write(context: context, head: head, status: .ok, contentType: "application/json", body: body)
        case (.POST, "/invocations"):
            if tooLarge {
                var message = context.channel.allocator.buffer(capacity: 64)
                message.writeString("Request body exceeds \(WorkerServer.maximumBodySize) bytes.")
                write(context: context, head: head, status: .payloadTooLarge, contentType: "text/plain", body: message)
                return
            }
            let payload = body ?? context.channel.allocator.buffer(capacity: 0)
            body = nil
            let result = runtime.invoke(
                body: payload,
                contentType: head.headers.first(name: "content-type"),
                accept: head.headers.first(name: "accept"),
                customAttributes: head.headers.first(name: "x-amzn-sagemaker-custom-attributes"),
                allocator: context.channel.allocator
            )
            write(
                context: context,
                head: head,
                status: HTTPResponseStatus(statusCode: result.status),
                contentType: result.contentType,
                body: result.body,
                customAttributes: result.customAttributes
            )
        default:
            write(context: context, head: head, status: .notFound, contentType: nil, body: nil)
        }
    }

    private func write(
        context: ChannelHandlerContext,
        head: HTTPRequestHead,
        status: HTTPResponseStatus,
        contentType: String?,
        body: ByteBuffer?,
        customAttributes: String? = nil
    ) {
        var headers = HTTPHeaders()
        if let contentType { headers.add(name: "content-type", value: contentType) }
        if let customAttributes { headers.add(name: "x-amzn-sagemaker-custom-attributes", value: customAttributes) }
        headers.add(name: "content-length", value: String(body?.readableBytes ?? 0))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil
        )
        if let body, body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let done = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            let channel = context.channel
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

extension ChannelHandlerContext {
    fileprivate func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}

@available(*, unavailable)
extension WorkerHandler: Sendable {}
