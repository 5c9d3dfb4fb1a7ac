public import Logging
public import NIOCore
public import NIOHTTP1
public import NIOPosix
public import ServiceLifecycle
import Synchronization

/// A whole HTTP request: head, body, and who sent it.
public struct BufferedRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
    public var remoteAddress: SocketAddress?
}

/// A whole HTTP response.
public struct BufferedResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Answers buffered requests. The control plane is not latency-critical: one task per request is fine there.
public protocol BufferedResponder: Sendable {
    func respond(to request: BufferedRequest) async -> BufferedResponse
    /// The response for a body over the size limit.
    func bodyTooLarge(_ head: HTTPRequestHead) -> BufferedResponse
}

/// An HTTP/1.1 listener that buffers each request (up to a size bound) and hands it to a ``BufferedResponder``.
///
/// A `Service`: `run()` serves until graceful shutdown, then stops accepting, lets in-flight requests finish (for
/// at most `drainTimeout`) and closes the remaining connections.
public final class HTTPServer: Service {
    public let name: String
    private let host: String
    private let requestedPort: Int
    private let group: MultiThreadedEventLoopGroup
    private let responder: any BufferedResponder
    private let maximumBodySize: Int
    private let drainTimeout: Duration
    private let logger: Logger
    private let state = Mutex(State())
    private let boundPort = Mutex<Int?>(nil)

    struct State {
        var inFlight = 0
        var connections: [ObjectIdentifier: any Channel] = [:]
        var draining = false
    }

    public init(
        name: String,
        host: String,
        port: Int,
        group: MultiThreadedEventLoopGroup,
        responder: any BufferedResponder,
        maximumBodySize: Int,
        drainTimeout: Duration = .seconds(10),
        logger: Logger
    ) {
        self.name = name
        self.host = host
        self.requestedPort = port
        self.group = group
        self.responder = responder
        self.maximumBodySize = maximumBodySize
        self.drainTimeout = drainTimeout
        self.logger = logger
    }

    private let channel = Mutex<(any Channel)?>(nil)

    /// Binds the listening socket. Call before `run()`; the bound port is then in ``port``.
    public func bind() async throws {
        let server = self
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        BufferingHandler(server: server, maximumBodySize: server.maximumBodySize)
                    )
                }
            }
            .bind(host: host, port: requestedPort).get()
        self.channel.withLock { $0 = channel }
        boundPort.withLock { $0 = channel.localAddress?.port }
    }

    /// The port the listener is bound to (after ``bind()``).
    public var port: Int? { boundPort.withLock { $0 } }

    public func run() async throws {
        guard let channel = channel.withLock({ $0 }) else { throw CancellationError() }
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
        await drain()
    }

    /// Waits for in-flight requests to finish (bounded), then closes every connection.
    private func drain() async {
        state.withLock { $0.draining = true }
        let clock = ContinuousClock()
        let deadline = clock.now + drainTimeout
        while state.withLock({ $0.inFlight }) > 0, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let connections = state.withLock { Array($0.connections.values) }
        for connection in connections { try? await connection.close() }
        logger.info("listener stopped", metadata: ["listener": "\(name)"])
    }

    fileprivate func connectionOpened(_ channel: any Channel) {
        state.withLock { $0.connections[ObjectIdentifier(channel)] = channel }
    }

    fileprivate func connectionClosed(_ channel: any Channel) {
        _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    fileprivate func requestStarted() -> Bool {
        state.withLock { state in
            state.inFlight += 1
            return !state.draining
        }
    }

    fileprivate func requestFinished() { state.withLock { $0.inFlight -= 1 } }

    fileprivate func respond(to request: BufferedRequest) async -> BufferedResponse {
        await responder.respond(to: request)
    }

    fileprivate func bodyTooLarge(_ head: HTTPRequestHead) -> BufferedResponse { responder.bodyTooLarge(head) }
}

/// Collects a request's parts and answers it through the server's responder.
final class BufferingHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: HTTPServer
    private let maximumBodySize: Int
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(server: HTTPServer, maximumBodySize: Int) {
        self.server = server
        self.maximumBodySize = maximumBodySize
    }

    func channelActive(context: ChannelHandlerContext) {
        server.connectionOpened(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.connectionClosed(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            tooLarge = false
        case .body(let chunk):
            guard !tooLarge else { return }
            if body.count + chunk.readableBytes > maximumBodySize {
                tooLarge = true
                body = []
                return
            }
            body.append(contentsOf: chunk.readableBytesView)
        case .end:
            guard let head else { return }
            self.head = nil
            if tooLarge {
                write(server.bodyTooLarge(head), for: head, context: context, close: true)
                return
            }
            let request = BufferedRequest(head: head, body: body, remoteAddress: context.channel.remoteAddress)
            body = []
            let accepting = server.requestStarted()
            let server = self.server
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.makeFutureWithTask {
                await server.respond(to: request)
            }.whenComplete { result in
                let (handler, context) = loopBound.value
                server.requestFinished()
                switch result {
                case .success(let response):
                    handler.write(response, for: head, context: context, close: !accepting)
                case .failure:
                    handler.write(
                        BufferedResponse(status: .internalServerError),
                        for: head,
                        context: context,
                        close: true
                    )
                }
            }
        }
    }

    private func write(
        _ response: BufferedResponse,
        for head: HTTPRequestHead,
        context: ChannelHandlerContext,
        close: Bool
    ) {
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(response.body.count))
        let keepAlive = head.isKeepAlive && !close
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))),
            promise: nil
        )
        if !response.body.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                promise: nil
            )
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension BufferingHandler: Sendable {}
