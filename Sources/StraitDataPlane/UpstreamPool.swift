import NIOCore
import NIOHTTP1
import NIOPosix

/// What came back from an instance.
enum UpstreamOutcome {
    case response(HTTPResponseHead, ByteBuffer)
    /// No connection could be made: nothing was sent, so another instance may take the call.
    case connectFailed
    /// The connection broke after the request was (perhaps) written: the call must not be repeated.
    case broken
    /// A kept-alive connection turned out closed by the instance before a byte of the answer came (the instance
    /// went away, or closed the idle connection as the request went out): treated like a failed connect.
    case staleConnection
    case timedOut
    /// The instance's answer is larger than SageMaker's payload limit.
    case responseTooLarge
}

/// Kept-alive HTTP/1.1 connections to instances, for one event loop: connections are made on that loop, so a
/// forwarded call never leaves it.
// Confined to `eventLoop` (owned by a LoopContext).
final class UpstreamPool {
    private let eventLoop: any EventLoop
    private var idle: [String: [any Channel]] = [:]
    /// Idle connections kept per instance.
    private let maximumIdlePerInstance = 64

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    /// Sends one request to `host:port` (or the instance's Unix socket) on a pooled or new connection and completes
    /// with the outcome.
    func send(
        host: String,
        port: Int,
        unixSocket: String? = nil,
        head: HTTPRequestHead,
        body: ByteBuffer,
        timeout: TimeAmount
    ) -> EventLoopFuture<UpstreamOutcome> {
        eventLoop.assertInEventLoop()
        let key = unixSocket ?? "\(host):\(port)"
        while var channels = idle[key], let channel = channels.popLast() {
            idle[key] = channels
            if channel.isActive {
                return exchange(channel, key: key, head: head, body: body, timeout: timeout, reused: true)
            }
        }
        let promise = eventLoop.makePromise(of: UpstreamOutcome.self)
        let pool = NIOLoopBound(self, eventLoop: eventLoop)
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Header names and values come from parsed requests or from Strait itself: no re-validation.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
        let connected: EventLoopFuture<any Channel>
        if let unixSocket {
            connected = bootstrap.connect(unixDomainSocketPath: unixSocket)
        } else {
            bootstrap = bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1)
            connected = bootstrap.connect(host: host, port: port)
        }
        connected
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    pool.value.exchange(channel, key: key, head: head, body: body, timeout: timeout, reused: false)
                        .cascade(
                            to: promise
                        )
                case .failure:
                    promise.succeed(.connectFailed)
                }
            }
        return promise.futureResult
    }

    private func exchange(
        _ channel: any Channel,
        key: String,
        head: HTTPRequestHead,
        body: ByteBuffer,
        timeout: TimeAmount,
        reused: Bool
    ) -> EventLoopFuture<UpstreamOutcome> {
        let promise = eventLoop.makePromise(of: UpstreamOutcome.self)
        guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
            channel.close(promise: nil)
            promise.succeed(.connectFailed)
            return promise.futureResult
        }
        handler.start(promise: promise, timeout: timeout, channel: channel, reused: reused)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if body.readableBytes > 0 { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let bound = NIOLoopBound((self, handler), eventLoop: eventLoop)
        return promise.futureResult.map { outcome in
            let (pool, handler) = bound.value
            if case .response(let response, _) = outcome, response.isKeepAlive, handler.reusable, channel.isActive {
                pool.release(channel, key: key)
            } else {
                channel.close(promise: nil)
            }
            return outcome
        }
    }

    private func release(_ channel: any Channel, key: String) {
        var channels = idle[key] ?? []
        guard channels.count < maximumIdlePerInstance else {
            channel.close(promise: nil)
            return
        }
        let firstIdle = !channels.contains { $0 === channel }
        channels.append(channel)
        idle[key] = channels
        if firstIdle, !forgetting.contains(ObjectIdentifier(channel)) {
            // When the instance closes the connection (or goes away), drop it and, with the last one, the key.
            forgetting.insert(ObjectIdentifier(channel))
            let pool = NIOLoopBound(self, eventLoop: eventLoop)
            channel.closeFuture.whenComplete { _ in pool.value.forget(channel, key: key) }
        }
    }

    private var forgetting: Set<ObjectIdentifier> = []

    private func forget(_ channel: any Channel, key: String) {
        forgetting.remove(ObjectIdentifier(channel))
        guard var channels = idle[key] else { return }
        channels.removeAll { $0 === channel }
        idle[key] = channels.isEmpty ? nil : channels
    }
}

/// Collects one response at a time on an upstream connection.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var promise: EventLoopPromise<UpstreamOutcome>?
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?
    private var timeout: Scheduled<Void>?
    private var receivedAnything = false
    private var reused = false
    private var sent = NIODeadline.now()
    /// False once the connection must not carry another request.
    private(set) var reusable = true

    func start(promise: EventLoopPromise<UpstreamOutcome>, timeout: TimeAmount, channel: any Channel, reused: Bool) {
        self.reused = reused
        self.sent = .now()
        self.promise = promise
        head = nil
        body = nil
        receivedAnything = false
        let bound = NIOLoopBound(self, eventLoop: channel.eventLoop)
        self.timeout = channel.eventLoop.scheduleTask(in: timeout) {
            bound.value.finish(.timedOut)
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receivedAnything = true
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(var chunk):
            if (body?.readableBytes ?? 0) + chunk.readableBytes > DataPlane.maximumPayloadSize {
                finish(.responseTooLarge)
                context.close(promise: nil)
                return
            }
            if body == nil {
                body = chunk
            } else {
                body?.writeBuffer(&chunk)
            }
        case .end:
            guard let head else {
                finish(.broken)
                return
            }
            finish(.response(head, body ?? context.channel.allocator.buffer(capacity: 0)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        reusable = false
        finish(closedAsStale ? .staleConnection : .broken)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        reusable = false
        finish(closedAsStale ? .staleConnection : .broken)
        context.close(promise: nil)
    }

    /// A kept-alive connection the instance had already closed shows it at once: no byte back, within a few
    /// milliseconds of the write. Later, the instance may have run the request, which must not be repeated.
    private var closedAsStale: Bool {
        reused && !receivedAnything && NIODeadline.now() - sent < .milliseconds(10)
    }

    private func finish(_ outcome: UpstreamOutcome) {
        timeout?.cancel()
        timeout = nil
        guard let promise else { return }
        self.promise = nil
        if case .response = outcome {} else { reusable = false }
        promise.succeed(outcome)
    }
}

@available(*, unavailable)
extension UpstreamHandler: Sendable {}
